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
var figureNames = []string{"publish", "consume", "latency", "idle", "rss"}

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
	impls := fs.String("impls", strings.Join(harness.Names, ","), "implementations, in the order they alternate")
	figures := fs.String("figures", strings.Join(figureNames, ","), "figures to measure")
	fs.IntVar(&o.rate, "rate", 1000, "latency figure: messages per second")
	fs.DurationVar(&o.latencyDuration, "latency-duration", 5*time.Second, "latency figure: how long to publish at -rate")
	fs.DurationVar(&o.idleDuration, "idle-duration", 5*time.Second, "idle figure: how long commands are counted")
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
	o.impls = splitList(*impls)
	for _, name := range o.impls {
		if !slices.Contains(harness.Names, name) {
			collect(fmt.Errorf("-impls: unknown %q (want some of %v)", name, harness.Names))
		}
	}
	o.figures = map[string]bool{}
	for _, f := range splitList(*figures) {
		if !slices.Contains(figureNames, f) {
			collect(fmt.Errorf("-figures: unknown %q (want some of %v)", f, figureNames))
		}
		o.figures[f] = true
	}
	for name, v := range map[string]int{"n": o.n, "runs": o.runs, "rate": o.rate, "rss-n": o.rssN, "raw-batch": o.rawBatch} {
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
