package main

import (
	"errors"
	"flag"
	"slices"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/matrix"
)

// figureNames are the figures -figures selects from, in the order they run.
var figureNames = []string{"startup", "idle", "backlog", "publish", "consume", "latency"}

// implNames are the implementations -impls selects from.
var implNames = append([]string{harness.Millrace}, harness.AMQPNames...)

// options are the command-line settings of a run.
type options struct {
	matrix.Common
	backlogN, backlogSize int
	settle, window        time.Duration
	startups              int
}

// parseFlags parses args into options and checks them.
func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("brokers", flag.ContinueOnError)
	o.Register(fs, matrix.Defaults{
		N: 20_000, Pubs: "1,64", Impls: implNames,
		ImplsHelp: " (AMQP: competing consumers of one durable queue stand for one consumer group)",
		Figures:   figureNames, Timeout: 5 * time.Minute, Deadline: 90 * time.Minute,
	})
	fs.IntVar(&o.backlogN, "backlog-n", 100_000, "backlog figure: messages")
	fs.IntVar(&o.backlogSize, "backlog-size", 1024, "backlog figure: payload size in bytes")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "idle and backlog figures: quiet time before measuring")
	fs.DurationVar(&o.window, "window", 20*time.Second, "idle figures: how long CPU is counted")
	fs.IntVar(&o.startups, "startups", 3, "start-up figure: starts of each broker (the last one is measured on)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	errs := o.Check(map[string]int{"backlog-n": o.backlogN, "backlog-size": o.backlogSize, "startups": o.startups})
	if o.window <= 0 {
		errs = append(errs, errors.New("-window must be positive"))
	}
	return o, errors.Join(errs...)
}

// usesAMQP reports whether the run needs RabbitMQ.
func (o options) usesAMQP() bool {
	return slices.ContainsFunc(o.Impls, func(name string) bool { return slices.Contains(harness.AMQPNames, name) })
}
