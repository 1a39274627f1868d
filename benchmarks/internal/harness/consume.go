package harness

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// ConsumeConfig is one consume run.
type ConsumeConfig struct {
	Addr        string        // redis-server address
	Topic       string        // a fresh topic
	Group       string        // a fresh consumer group
	Payload     []byte        // carried by every message (Consume only)
	N           int           // messages in the backlog
	Subscribers int           // consumers in the group
	Timeout     time.Duration // bound on the drain
}

// Consume pre-fills topic with N entries as impl writes them (untimed) and
// then measures [Drain]. The stream is left in place; the caller deletes it.
func Consume(ctx context.Context, impl Impl, cfg ConsumeConfig) (Throughput, error) {
	admin := NewClient(cfg.Addr)
	defer admin.Close()
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := Prefill(pctx, admin, impl, cfg.Topic, cfg.Payload, cfg.N); err != nil {
		return Throughput{}, err
	}
	return Drain(ctx, impl, cfg)
}

// Drain consumes a backlog of N entries of topic with Subscribers consumers
// of a new group reading from the start of the stream, and measures from
// just before the consumers start until the N-th message is handled. It
// fails unless all N are handled within Timeout.
func Drain(ctx context.Context, impl Impl, cfg ConsumeConfig) (Throughput, error) {
	client := NewClient(cfg.Addr)
	defer client.Close()
	var handled atomic.Int64
	done := make(chan struct{})
	handle := func(int64) {
		if handled.Add(1) == int64(cfg.N) {
			close(done)
		}
	}
	timeout := time.NewTimer(cfg.Timeout)
	defer timeout.Stop()

	runtime.GC()
	cpu0, t0 := CPUTime(), time.Now()
	cons, err := impl.Consume(ctx, client, cfg.Topic, cfg.Group, cfg.Subscribers, handle)
	if err != nil {
		return Throughput{}, fmt.Errorf("start consumers: %w", err)
	}
	select {
	case <-done:
	case <-timeout.C:
		return Throughput{}, errors.Join(
			fmt.Errorf("drain: handled %d of %d within %s", handled.Load(), cfg.N, cfg.Timeout),
			cons.Close())
	case <-ctx.Done():
		return Throughput{}, errors.Join(ctx.Err(), cons.Close())
	}
	res := Throughput{N: cfg.N, Elapsed: time.Since(t0), CPU: CPUTime() - cpu0}
	if err := cons.Close(); err != nil {
		return Throughput{}, fmt.Errorf("close consumers: %w", err)
	}
	return res, nil
}
