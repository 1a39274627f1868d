// Command brokers measures Millrace on a durable Redis (append-only file,
// appendfsync everysec) beside Watermill's AMQP adapter on RabbitMQ, both
// brokers started by this program on loopback: publish and consume
// throughput through the same Watermill Router and handler, latency, and
// what each broker costs (start-up time, RSS idle and with a backlog, CPU
// idle). The AMQP adapter runs twice: with NewDurableQueueConfig as users
// take it, and tuned (a channel pool, publisher confirms, prefetch 100).
//
// It needs Debian's rabbitmq-server package (make bench-brokers installs
// it). Run it from benchmarks/ with go run ./cmd/brokers [flags]; see -help.
// The default matrix takes about a quarter of an hour on two cores.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/matrix"
)

func main() {
	matrix.Main("brokers", parseFlags, func(ctx context.Context, opts options) error {
		matrix.QuietRedis()
		return run(ctx, opts)
	})
}

// run starts the brokers, measures the matrix and prints the report.
func run(ctx context.Context, opts options) error {
	ctx, cancel := context.WithTimeout(ctx, opts.Deadline)
	defer cancel()
	if opts.usesAMQP() {
		if err := harness.RabbitMQInstalled(); err != nil {
			return err
		}
	}
	b := &brokers{opts: opts, payloads: map[int][]byte{}, rep: newFigures(opts)}
	defer b.stop()
	if err := b.start(ctx); err != nil {
		return err
	}
	for _, size := range opts.Sizes {
		b.payloads[size] = harness.Payload(size)
	}
	impls := make([]harness.Impl, 0, len(opts.Impls))
	for _, name := range opts.Impls {
		impl, err := b.newImpl(name)
		if err != nil {
			return err
		}
		impls = append(impls, impl)
	}
	h := header{started: time.Now(), args: strings.Join(os.Args[1:], " ")}
	m := matrix.DescribeMachine(ctx, b.admin)
	h.rabbitmq = b.rabbitVersion()
	fmt.Fprintf(os.Stderr, "brokers: redis-server %s at %s, RabbitMQ %s\n", m.Redis, b.redis.Addr, h.rabbitmq)

	h.failures = b.measureBrokers(ctx, impls)
	h.failures += matrix.Run(ctx, b.cells(), impls, opts.Runs, os.Stderr)

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
