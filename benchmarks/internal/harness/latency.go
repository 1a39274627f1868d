package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/benchmarks/internal/report"
)

// latencyWarmup is how many messages go through before any is measured.
const latencyWarmup = 50

// LatencyConfig is one latency run.
type LatencyConfig struct {
	Addr     string        // redis-server address
	Topic    string        // a fresh topic
	Group    string        // a fresh consumer group
	Payload  []byte        // carried by every message
	Rate     int           // messages per second
	Duration time.Duration // how long to publish at Rate
	Timeout  time.Duration // bound on waiting for the last message after publishing
}

// Latencies are end-to-end latencies of one run: from just before Publish
// to the handler, through one subscriber.
type Latencies struct {
	Sorted []time.Duration
	// CPU is this process's user+sys CPU (publisher and subscriber) from
	// the first measured Publish until the last message was handled.
	CPU time.Duration
}

// CPUPerMessage is client CPU per measured message.
func (l Latencies) CPUPerMessage() time.Duration {
	if len(l.Sorted) == 0 {
		return 0
	}
	return l.CPU / time.Duration(len(l.Sorted))
}

// P returns the p-th percentile.
func (l Latencies) P(p float64) time.Duration { return report.Percentile(l.Sorted, p) }

// Latency publishes at a fixed Rate for Duration from one goroutine, each
// message stamped with its publish time in metadata ([SentKey]), and records
// in the handler of one subscriber how long each took to arrive. Messages
// are sent on a fixed schedule; a late one goes at once, without skipping.
func Latency(ctx context.Context, impl Impl, cfg LatencyConfig) (Latencies, error) {
	pubClient, subClient := NewClient(cfg.Addr), NewClient(cfg.Addr)
	defer pubClient.Close()
	defer subClient.Close()
	total := latencyWarmup + int(float64(cfg.Rate)*cfg.Duration.Seconds())
	var (
		mu      sync.Mutex
		lat     = make([]time.Duration, 0, total)
		handled int
		warm    = make(chan struct{})
		done    = make(chan struct{})
	)
	handle := func(sent int64) {
		now := time.Now().UnixNano()
		mu.Lock()
		defer mu.Unlock()
		if sent > 0 {
			lat = append(lat, time.Duration(now-sent))
		}
		handled++
		switch handled {
		case latencyWarmup:
			close(warm)
		case total:
			close(done)
		}
	}
	cons, err := impl.Consume(ctx, subClient, ConsumeSpec{Topics: []string{cfg.Topic}, Group: cfg.Group, Subscribers: 1}, handle)
	if err != nil {
		return Latencies{}, fmt.Errorf("start consumer: %w", err)
	}
	defer cons.Close()
	sender, err := impl.NewSender(pubClient)
	if err != nil {
		return Latencies{}, err
	}
	defer sender.Close()

	send := func(stamp bool) error {
		msg := newMessage(cfg.Payload)
		if stamp {
			msg.Metadata.Set(SentKey, strconv.FormatInt(time.Now().UnixNano(), 10))
		}
		return sender.Send(ctx, cfg.Topic, []*message.Message{msg})
	}
	for range latencyWarmup {
		if err := send(false); err != nil {
			return Latencies{}, fmt.Errorf("publish: %w", err)
		}
	}
	if err := waitClosed(ctx, warm, cfg.Timeout); err != nil {
		return Latencies{}, fmt.Errorf("warm-up: %w", err)
	}
	interval := time.Second / time.Duration(cfg.Rate)
	cpu0, t0 := CPUTime(), time.Now()
	for i := range total - latencyWarmup {
		if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if err := send(true); err != nil {
			return Latencies{}, fmt.Errorf("publish: %w", err)
		}
		if ctx.Err() != nil {
			return Latencies{}, ctx.Err()
		}
	}
	if err := waitClosed(ctx, done, cfg.Timeout); err != nil {
		return Latencies{}, err
	}
	cpu := CPUTime() - cpu0
	mu.Lock()
	defer mu.Unlock()
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	return Latencies{Sorted: sorted, CPU: cpu}, nil
}

// waitClosed waits for ch to be closed, at most timeout.
func waitClosed(ctx context.Context, ch <-chan struct{}, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return errors.New("messages not all handled within " + timeout.String())
	case <-ctx.Done():
		return ctx.Err()
	}
}
