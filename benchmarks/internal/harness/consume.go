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
	Addr    string // redis-server address
	Topic   string // a fresh topic
	Group   string // a fresh consumer group
	Payload []byte // carried by every message (Consume only)
	N       int    // messages in the backlog
	// Topics spreads the backlog evenly over this many topics
	// ([TopicNames] of Topic), every subscriber reading all of them; 0 and
	// 1 mean Topic alone.
	Topics      int
	Subscribers int           // consumers in the group
	Timeout     time.Duration // bound on the drain
}

// spec is what the consumers of cfg read.
func (cfg ConsumeConfig) spec() ConsumeSpec {
	return ConsumeSpec{Topics: TopicNames(cfg.Topic, cfg.Topics), Group: cfg.Group, Subscribers: cfg.Subscribers}
}

// Consume pre-fills the topics with N entries in all as impl writes them
// (untimed) and then measures [Drain]. The streams are left in place; the
// caller deletes them.
func Consume(ctx context.Context, impl Impl, cfg ConsumeConfig) (Throughput, error) {
	admin := NewClient(cfg.Addr)
	defer admin.Close()
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	topics := TopicNames(cfg.Topic, cfg.Topics)
	for i, topic := range topics {
		n := cfg.N / len(topics)
		if i < cfg.N%len(topics) {
			n++
		}
		if err := Prefill(pctx, admin, impl, topic, cfg.Payload, n); err != nil {
			return Throughput{}, err
		}
	}
	return Drain(ctx, impl, cfg)
}

// Drain consumes a backlog of N entries of the topics with Subscribers
// consumers of a new group reading from the start of the streams, and measures from
// just before the consumers start until the N-th message is handled. It
// fails unless all N are handled within Timeout.
func Drain(ctx context.Context, impl Impl, cfg ConsumeConfig) (Throughput, error) {
	// Room for a blocking read per topic and subscriber, and their acks.
	client := NewClientPool(cfg.Addr, max(128, 2*cfg.Topics*cfg.Subscribers+64))
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

	admin := NewClientPool(cfg.Addr, 1)
	defer admin.Close()
	server0, err := ServerCPU(ctx, admin)
	if err != nil {
		return Throughput{}, err
	}
	runtime.GC()
	cpu0, t0 := CPUTime(), time.Now()
	cons, err := impl.Consume(ctx, client, cfg.spec(), handle)
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
	server1, err := ServerCPU(ctx, admin)
	res.ServerCPU = server1 - server0
	if err := errors.Join(err, cons.Close()); err != nil {
		return Throughput{}, fmt.Errorf("close consumers: %w", err)
	}
	return res, nil
}
