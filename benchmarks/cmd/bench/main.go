// Command bench measures Millrace, watermill-redisstream v1.4.5 (the peer)
// and raw go-redis (the ceiling) in one run against one redis-server it
// starts itself, beside Watermill's in-memory GoChannel through the same
// Router (the Router's own ceiling) and Millrace read without a Router, and
// prints markdown tables of the medians with their ratios. Publishing
// measures Millrace in three configurations side by side (default
// retry-safe, PlainXAdd, Idempotency) and checks the cost of the default
// against its target.
//
// Run it from the repository root with
//
//	go -C benchmarks run ./cmd/bench [flags]
//
// or from benchmarks/ with go run ./cmd/bench. See -help for the flags; the
// default matrix takes about 16 minutes on two cores.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/matrix"
)

func main() {
	matrix.Main("bench", parseFlags, func(ctx context.Context, opts options) error {
		if !opts.redisLog {
			matrix.QuietRedis()
		}
		if opts.child != "" {
			return runChild(ctx, opts)
		}
		return run(ctx, opts)
	})
}

// run measures the matrix and prints the report.
func run(ctx context.Context, opts options) error {
	ctx, cancel := context.WithTimeout(ctx, opts.Deadline)
	defer cancel()
	if opts.cpuProfile != "" {
		f, err := os.Create(opts.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if opts.addr == "" {
		srv, err := harness.StartRedis(ctx, harness.RedisConfig{})
		if err != nil {
			return err
		}
		defer srv.Stop()
		opts.addr = srv.Addr
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	admin := harness.NewClient(opts.addr)
	defer admin.Close()

	b := &bench{opts: opts, admin: admin, payloads: map[int][]byte{}, rep: newFigures(opts), exe: exe}
	for _, size := range opts.Sizes {
		b.payloads[size] = harness.Payload(size)
	}
	impls := make([]harness.Impl, 0, len(opts.Impls))
	for _, name := range opts.Impls {
		impl, err := harness.NewImpl(name, opts.rawBatch)
		if err != nil {
			return err
		}
		impls = append(impls, impl)
	}
	h := header{started: time.Now(), args: strings.Join(os.Args[1:], " ")}
	m := matrix.DescribeMachine(ctx, admin)
	fmt.Fprintf(os.Stderr, "bench: redis-server %s at %s\n", m.Redis, opts.addr)

	h.failures = matrix.Run(ctx, b.cells(), impls, opts.Runs, os.Stderr)

	write := func(w io.Writer) { b.rep.write(w, m, opts, h) }
	chart := func(path string) error { return b.rep.writeSVG(path, m, h) }
	if err := opts.Emit(write, chart); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stopped early: %w", ctx.Err())
	}
	return nil
}

// runChild is the process of the peak-RSS figure: it drains a backlog and
// prints its report (see harness.ChildFlag).
func runChild(ctx context.Context, opts options) error {
	impl, err := harness.NewImpl(opts.child, opts.rawBatch)
	if err != nil {
		return err
	}
	return harness.RunChild(ctx, impl, harness.ConsumeConfig{
		Addr: opts.addr, Topic: opts.topic, Group: opts.group,
		N: opts.N, Subscribers: 1, Timeout: opts.Timeout,
	}, os.Stdout)
}
