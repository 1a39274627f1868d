package main

import (
	"errors"
	"flag"
	"slices"
	"strings"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/matrix"
)

// figureNames are the figures -figures selects from, in report order.
var figureNames = []string{"publish", "consume", "busy", "latency", "idle", "delay", "rss"}

// allImpls are every implementation, in the order they alternate: the
// three configurations of Millrace's publishing side by side (default,
// PlainXAdd, Idempotency), then the peer and raw go-redis, then the
// consume-only ones.
var allImpls = slices.Concat([]string{harness.Millrace}, harness.PublishNames, harness.Names[1:], harness.ConsumeNames)

// options are the command-line settings of a run.
type options struct {
	matrix.Common
	idleDuration  time.Duration
	idleSettle    time.Duration
	idleRuns      int
	topics        []int
	busyTopics    int
	delays        []time.Duration
	delayTopics   int
	delayIdle     time.Duration
	delaySpread   time.Duration
	delayBusyRate int
	rssN, rssSize int
	rawBatch      int
	addr          string
	cpuProfile    string
	redisLog      bool

	// Set only in the child process of the peak-RSS figure.
	child, topic, group string
}

// parseFlags parses args into options and checks them.
func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o.Register(fs, matrix.Defaults{
		N: 100_000, Pubs: "1,8,64", Impls: allImpls,
		ImplsHelp: " (" + strings.Join(harness.PublishNames, " and ") + " publish and latency only, " +
			harness.GoChannel + " and " + harness.MillraceDirect + " consume only)",
		Figures: figureNames, Timeout: 2 * time.Minute, Deadline: 45 * time.Minute,
	})
	fs.DurationVar(&o.idleDuration, "idle-duration", 5*time.Second, "idle figure: how long commands are counted")
	fs.DurationVar(&o.idleSettle, "idle-settle", 8*time.Second, "idle figure: quiet time after the warm-up messages before counting (longer than a claim interval, 5s, so that what follows the last message is over)")
	fs.IntVar(&o.idleRuns, "idle-runs", 1, "idle figure: runs per cell and implementation (counts over a window vary little)")
	topics := fs.String("topics", "1,10,100,1000", "idle figure: topic counts")
	fs.IntVar(&o.busyTopics, "busy-topics", 100, "busy figure: topics the backlog of -n messages is spread over, read by one subscriber")
	delays := fs.String("delays", "200ms,1s,3s", "delay figure: delays of the delayed messages")
	fs.IntVar(&o.delayTopics, "delay-topics", 50, "delay figure: topics, one delayed message each per run")
	fs.DurationVar(&o.delayIdle, "delay-idle", 5*time.Second, "delay figure: how long idle topics see nothing before the delayed messages")
	fs.DurationVar(&o.delaySpread, "delay-spread", 2*time.Second, "delay figure: the delayed messages are published at random times over this span")
	fs.IntVar(&o.delayBusyRate, "delay-busy-rate", 20, "delay figure: plain messages a second to each busy topic")
	fs.IntVar(&o.rssN, "rss-n", 100_000, "peak-RSS figure: backlog size")
	fs.IntVar(&o.rssSize, "rss-size", 1024, "peak-RSS figure: payload size in bytes")
	fs.IntVar(&o.rawBatch, "raw-batch", 100, "raw go-redis publisher: XADDs per pipeline")
	fs.StringVar(&o.addr, "addr", "", "use the redis-server at this address instead of starting one (it must be idle)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (not of the RSS child) to this file")
	fs.BoolVar(&o.redisLog, "redis-log", false, "keep go-redis's internal log on stderr")
	fs.StringVar(&o.child, harness.ChildFlag, "", "internal: run as the drain child of the peak-RSS figure")
	fs.StringVar(&o.topic, "topic", "", "internal: the drain child's topic")
	fs.StringVar(&o.group, "group", "", "internal: the drain child's consumer group")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	errs := o.Check(map[string]int{
		"rss-n": o.rssN, "raw-batch": o.rawBatch, "idle-runs": o.idleRuns,
		"busy-topics": o.busyTopics, "delay-topics": o.delayTopics, "delay-busy-rate": o.delayBusyRate,
	})
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	o.topics, err = matrix.ParseInts("topics", *topics)
	collect(err)
	o.delays, err = matrix.ParseDurations("delays", *delays)
	collect(err)
	if o.child != "" && (o.addr == "" || o.topic == "" || o.group == "") {
		collect(errors.New("-" + harness.ChildFlag + " needs -addr, -topic and -group"))
	}
	return o, errors.Join(errs...)
}
