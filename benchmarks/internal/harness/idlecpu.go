package harness

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// IdleCPUConfig is one run of the idle-CPU figure of cmd/brokers.
type IdleCPUConfig struct {
	Addr    string        // redis-server address (Redis implementations)
	Topic   string        // a fresh topic
	Group   string        // a fresh consumer group
	Broker  []int         // the broker's processes: see [TreeStats]
	Settle  time.Duration // quiet time after the warm-up message
	Window  time.Duration // how long CPU is counted
	Timeout time.Duration // bound on the warm-up message's delivery
}

// IdleCPU is CPU time per second of wall time while one subscription waits
// and nothing is published.
type IdleCPU struct {
	Client time.Duration // this process
	Broker time.Duration // the broker's processes
}

// IdleSubscriptionCPU starts one subscriber of impl on a topic, lets it
// handle one message, waits Settle, and measures the CPU this process and
// the broker use over Window.
func IdleSubscriptionCPU(ctx context.Context, impl Impl, cfg IdleCPUConfig) (IdleCPU, error) {
	client := NewClient(cfg.Addr)
	defer client.Close()
	got := make(chan struct{})
	var once sync.Once
	cons, err := impl.Consume(ctx, client, ConsumeSpec{Topics: []string{cfg.Topic}, Group: cfg.Group, Subscribers: 1}, func(int64) {
		once.Do(func() { close(got) })
	})
	if err != nil {
		return IdleCPU{}, fmt.Errorf("start consumer: %w", err)
	}
	defer cons.Close()
	if err := warmUp(ctx, impl, cfg.Addr, []string{cfg.Topic}); err != nil {
		return IdleCPU{}, err
	}
	if err := waitClosed(ctx, got, cfg.Timeout); err != nil {
		return IdleCPU{}, fmt.Errorf("warm-up: %w", err)
	}
	if err := Sleep(ctx, cfg.Settle); err != nil {
		return IdleCPU{}, err
	}
	return CPUOver(ctx, cfg.Window, cfg.Broker)
}

// CPUOver measures the CPU this process and the processes broker (with
// their descendants) use over window, per second.
func CPUOver(ctx context.Context, window time.Duration, broker []int) (IdleCPU, error) {
	b0, err := TreeStats(broker...)
	if err != nil {
		return IdleCPU{}, err
	}
	c0, t0 := CPUTime(), time.Now()
	if err := Sleep(ctx, window); err != nil {
		return IdleCPU{}, err
	}
	b1, err := TreeStats(broker...)
	if err != nil {
		return IdleCPU{}, err
	}
	c1, secs := CPUTime(), time.Since(t0).Seconds()
	perSec := func(d time.Duration) time.Duration { return time.Duration(float64(d) / secs) }
	return IdleCPU{Client: perSec(c1 - c0), Broker: perSec(b1.CPU - b0.CPU)}, nil
}
