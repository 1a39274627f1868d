package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
)

// figureNames are the figures -figures selects from, in report order.
var figureNames = []string{"publish", "consume", "busy", "latency", "idle", "delay", "rss"}

// options are the command-line settings of a run.
type options struct {
	n, runs         int
	sizes           []int
	pubs, subs      []int
	impls           []string
	figures         map[string]bool
	rate            int
	latencyDuration time.Duration
	idleDuration    time.Duration
	idleSettle      time.Duration
	idleRuns        int
	topics          []int
	busyTopics      int
	delays          []time.Duration
	delayTopics     int
	delayIdle       time.Duration
	delaySpread     time.Duration
	delayBusyRate   int
	rssN, rssSize   int
	rawBatch        int
	timeout         time.Duration
	deadline        time.Duration
	addr            string
	out             string
	cpuProfile      string
	redisLog        bool

	// Set only in the child process of the peak-RSS figure.
	child, topic, group string
}

// parseFlags parses args into options and checks them.
func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.n, "n", 100_000, "messages per publish and consume run")
	fs.IntVar(&o.runs, "runs", 3, "runs per cell and implementation; each cell is their median")
	sizes := fs.String("sizes", "16,1024", "payload sizes in bytes")
	pubs := fs.String("pubs", "1,8,64", "publisher goroutine counts")
	subs := fs.String("subs", "1,4", "subscriber counts (one consumer group)")
	impls := fs.String("impls", strings.Join(append(harness.Names, harness.ConsumeNames...), ","),
		"implementations, in the order they alternate ("+harness.GoChannel+" and "+harness.MillraceDirect+" consume only)")
	figures := fs.String("figures", strings.Join(figureNames, ","), "figures to measure")
	fs.IntVar(&o.rate, "rate", 1000, "latency figure: messages per second")
	fs.DurationVar(&o.latencyDuration, "latency-duration", 5*time.Second, "latency figure: how long to publish at -rate")
	fs.DurationVar(&o.idleDuration, "idle-duration", 5*time.Second, "idle figure: how long commands are counted")
	fs.DurationVar(&o.idleSettle, "idle-settle", 2*time.Second, "idle figure: quiet time after the warm-up messages before counting")
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
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "bound on every wait of one run (a run past it fails)")
	fs.DurationVar(&o.deadline, "deadline", 45*time.Minute, "bound on the whole program; the report then has what was measured")
	fs.StringVar(&o.addr, "addr", "", "use the redis-server at this address instead of starting one (it must be idle)")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (not of the RSS child) to this file")
	fs.BoolVar(&o.redisLog, "redis-log", false, "keep go-redis's internal log on stderr")
	fs.StringVar(&o.child, harness.ChildFlag, "", "internal: run as the drain child of the peak-RSS figure")
	fs.StringVar(&o.topic, "topic", "", "internal: the drain child's topic")
	fs.StringVar(&o.group, "group", "", "internal: the drain child's consumer group")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	o.sizes, err = parseInts("sizes", *sizes)
	collect(err)
	o.pubs, err = parseInts("pubs", *pubs)
	collect(err)
	o.subs, err = parseInts("subs", *subs)
	collect(err)
	o.topics, err = parseInts("topics", *topics)
	collect(err)
	o.delays, err = parseDurations("delays", *delays)
	collect(err)
	o.impls = splitList(*impls)
	for _, name := range o.impls {
		if !slices.Contains(harness.Names, name) && !slices.Contains(harness.ConsumeNames, name) {
			collect(fmt.Errorf("-impls: unknown %q (want some of %v %v)", name, harness.Names, harness.ConsumeNames))
		}
	}
	o.figures = map[string]bool{}
	for _, f := range splitList(*figures) {
		if !slices.Contains(figureNames, f) {
			collect(fmt.Errorf("-figures: unknown %q (want some of %v)", f, figureNames))
		}
		o.figures[f] = true
	}
	for name, v := range map[string]int{
		"n": o.n, "runs": o.runs, "rate": o.rate, "rss-n": o.rssN, "raw-batch": o.rawBatch, "idle-runs": o.idleRuns,
		"busy-topics": o.busyTopics, "delay-topics": o.delayTopics, "delay-busy-rate": o.delayBusyRate,
	} {
		if v < 1 {
			collect(fmt.Errorf("-%s must be at least 1, got %d", name, v))
		}
	}
	if o.child != "" && (o.addr == "" || o.topic == "" || o.group == "") {
		collect(errors.New("-" + harness.ChildFlag + " needs -addr, -topic and -group"))
	}
	return o, errors.Join(errs...)
}

// parseInts parses a comma-separated list of positive integers.
func parseInts(name, s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s: %q is not a positive integer", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseDurations parses a comma-separated list of positive durations.
func parseDurations(name, s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range splitList(s) {
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("-%s: %q is not a positive duration", name, f)
		}
		out = append(out, d)
	}
	return out, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
