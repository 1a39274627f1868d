// Command bench measures Millrace, watermill-redisstream v1.4.5 (the peer)
// and raw go-redis (the ceiling) in one run against one redis-server it
// starts itself, beside Watermill's in-memory GoChannel through the same
// Router (the Router's own ceiling) and Millrace read without a Router, and
// prints markdown tables of the medians with their ratios.
//
// Run it from the repository root with
//
//	go -C benchmarks run ./cmd/bench [flags]
//
// or from benchmarks/ with go run ./cmd/bench. See -help for the flags; the
// default matrix takes about ten minutes on two cores.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/benchmarks/internal/harness"
)

func main() {
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if !opts.redisLog {
		redis.SetLogger(discardLogger{})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if opts.child != "" {
		err = runChild(ctx, opts)
	} else {
		err = run(ctx, opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

// run measures the matrix and prints the report.
func run(ctx context.Context, opts options) error {
	ctx, cancel := context.WithTimeout(ctx, opts.deadline)
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
		srv, err := harness.StartRedis(ctx)
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
	for _, size := range opts.sizes {
		b.payloads[size] = harness.Payload(size)
	}
	impls := make([]harness.Impl, 0, len(opts.impls))
	for _, name := range opts.impls {
		impl, err := harness.NewImpl(name, opts.rawBatch)
		if err != nil {
			return err
		}
		impls = append(impls, impl)
	}
	h := header{started: time.Now(), args: strings.Join(os.Args[1:], " ")}
	m := describeMachine(ctx, admin)
	fmt.Fprintf(os.Stderr, "bench: redis-server %s at %s\n", m.redis, opts.addr)

	h.failures = measure(ctx, b.cells(), impls, opts.runs)

	var out bytes.Buffer
	b.rep.write(&out, m, opts, h)
	os.Stdout.Write(out.Bytes())
	if opts.out != "" {
		if err := os.WriteFile(opts.out, out.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stopped early: %w", ctx.Err())
	}
	return nil
}

// measure runs every cell its runs times for each implementation it
// applies to, alternating the implementations within each run, logs
// progress to stderr and returns how many measurements failed. It stops
// early when ctx is done.
func measure(ctx context.Context, cells []cell, impls []harness.Impl, runs int) (failures int) {
	runsOf := func(c cell) int {
		if c.runs > 0 {
			return c.runs
		}
		return runs
	}
	total, i := 0, 0
	for _, c := range cells {
		for _, impl := range impls {
			if c.applies(impl.Name()) {
				total += runsOf(c)
			}
		}
	}
	for _, c := range cells {
		for run := 1; run <= runsOf(c); run++ {
			for _, impl := range impls {
				if !c.applies(impl.Name()) {
					continue
				}
				if ctx.Err() != nil {
					return failures
				}
				i++
				t0 := time.Now()
				summary, err := c.measure(ctx, impl)
				if err != nil {
					failures++
					summary = "FAILED: " + err.Error()
				}
				fmt.Fprintf(os.Stderr, "[%d/%d] %s · %s · run %d/%d: %s [%s]\n",
					i, total, c.label, impl.Name(), run, runsOf(c), summary, time.Since(t0).Round(100*time.Millisecond))
			}
		}
	}
	return failures
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
		N: opts.n, Subscribers: 1, Timeout: opts.timeout,
	}, os.Stdout)
}

// discardLogger drops go-redis's internal log, which otherwise reports the
// connections that the peer's Close and the end of each run cut off.
type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}
