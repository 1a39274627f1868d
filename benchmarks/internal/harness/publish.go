package harness

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// Throughput is the result of one publish or consume run.
type Throughput struct {
	N       int           // messages published or handled
	Elapsed time.Duration // wall time from start to the N-th message
	CPU     time.Duration // this process's user+sys CPU over the same span
	// ServerCPU is redis-server's user+sys CPU over about the same span
	// (INFO cpu before and after).
	ServerCPU time.Duration
}

// Rate is messages per second.
func (t Throughput) Rate() float64 { return float64(t.N) / t.Elapsed.Seconds() }

// CPUPerMessage is client CPU per message.
func (t Throughput) CPUPerMessage() time.Duration { return t.CPU / time.Duration(t.N) }

// ServerCPUPerMessage is redis-server CPU per message.
func (t Throughput) ServerCPUPerMessage() time.Duration { return t.ServerCPU / time.Duration(t.N) }

// PublishConfig is one publish run.
type PublishConfig struct {
	Addr       string        // redis-server address
	Topic      string        // a fresh topic
	Payload    []byte        // carried by every message
	N          int           // messages to publish
	Publishers int           // goroutines sharing one publisher
	Timeout    time.Duration // bound on the whole run
}

// Publish publishes N messages to a fresh topic from Publishers goroutines
// sharing one publisher of impl, each Send carrying impl.Batch() messages,
// and measures until the last Send has returned. The stream is left in
// place; the caller deletes it.
func Publish(ctx context.Context, impl Impl, cfg PublishConfig) (Throughput, error) {
	if p, ok := impl.(topicPreparer); ok {
		if err := p.prepareTopic(cfg.Topic); err != nil {
			return Throughput{}, fmt.Errorf("prepare topic: %w", err)
		}
	}
	client := NewClient(cfg.Addr)
	defer client.Close()
	sender, err := impl.NewSender(client)
	if err != nil {
		return Throughput{}, err
	}
	defer sender.Close()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	batch := impl.Batch()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		firstEr error
	)
	server0, err := ServerCPU(ctx, client)
	if err != nil {
		return Throughput{}, err
	}
	runtime.GC()
	cpu0, t0 := CPUTime(), time.Now()
	for range cfg.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := int(next.Add(int64(batch))) - batch
				if start >= cfg.N {
					return
				}
				msgs := make([]*message.Message, 0, batch)
				for range min(batch, cfg.N-start) {
					msgs = append(msgs, newMessage(cfg.Payload))
				}
				if err := sender.Send(ctx, cfg.Topic, msgs); err != nil {
					errOnce.Do(func() { firstEr = err; cancel() })
					return
				}
			}
		}()
	}
	if !waitGroup(ctx, &wg) {
		// Closing the client makes Sends that ignore ctx return.
		client.Close()
		return Throughput{}, fmt.Errorf("publish: not done within %s", cfg.Timeout)
	}
	res := Throughput{N: cfg.N, Elapsed: time.Since(t0), CPU: CPUTime() - cpu0}
	if firstEr != nil {
		return Throughput{}, fmt.Errorf("publish: %w", firstEr)
	}
	if ctx.Err() != nil {
		return Throughput{}, fmt.Errorf("publish: %w", ctx.Err())
	}
	server1, err := ServerCPU(ctx, client)
	if err != nil {
		return Throughput{}, err
	}
	res.ServerCPU = server1 - server0
	return res, nil
}

// ServerCPU is the user+sys CPU redis-server has used so far, every thread
// of it (INFO cpu: used_cpu_user and used_cpu_sys, getrusage of the
// process, in microseconds).
func ServerCPU(ctx context.Context, c *redis.Client) (time.Duration, error) {
	text, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, fmt.Errorf("INFO cpu: %w", err)
	}
	var total time.Duration
	found := 0
	for line := range strings.Lines(text) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k != "used_cpu_user" && k != "used_cpu_sys" {
			continue
		}
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu: %s: %w", k, err)
		}
		total += time.Duration(secs * float64(time.Second))
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("INFO cpu lacks used_cpu_user or used_cpu_sys:\n%s", text)
	}
	return total, nil
}

// waitGroup waits for wg until ctx is done; it reports whether wg finished.
// The wait also ends when ctx is cancelled because a goroutine failed.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		select {
		case <-done:
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}
}
