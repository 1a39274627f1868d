package benchmarks

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/internal/redistest"
)

// Sizes of the harness test: small enough for a few seconds in all.
const (
	testN       = 2000
	testTimeout = 30 * time.Second
)

// TestHarness runs a tiny cell of every figure with every implementation
// end to end, so that `go test ./...` exercises what cmd/bench measures.
// It asserts delivery, never speed.
func TestHarness(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	admin := srv.Client(t)
	for _, name := range harness.Names {
		t.Run(name, func(t *testing.T) {
			impl, err := harness.NewImpl(name, 100)
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()

			// Publish, then drain what was published with two subscribers.
			topic := harness.NewTopic()
			pub, err := harness.Publish(ctx, impl, harness.PublishConfig{
				Addr: srv.Addr(), Topic: topic, Payload: harness.Payload(16),
				N: testN, Publishers: 8, Timeout: testTimeout,
			})
			if err != nil {
				t.Fatalf("publish: %v", err)
			}
			if n := admin.XLen(ctx, topic).Val(); n != testN || pub.N != testN {
				t.Fatalf("published %d, stream holds %d, want %d", pub.N, n, testN)
			}
			group := harness.NewGroup()
			if _, err := harness.Drain(ctx, impl, harness.ConsumeConfig{
				Addr: srv.Addr(), Topic: topic, Group: group,
				N: testN, Subscribers: 2, Timeout: testTimeout,
			}); err != nil {
				t.Fatalf("drain: %v", err)
			}
			requireAllAcked(t, admin, name, topic, group)

			// A pre-filled backlog of 1 KB messages, one subscriber.
			topic, group = harness.NewTopic(), harness.NewGroup()
			if _, err := harness.Consume(ctx, impl, harness.ConsumeConfig{
				Addr: srv.Addr(), Topic: topic, Group: group, Payload: harness.Payload(1024),
				N: testN, Subscribers: 1, Timeout: testTimeout,
			}); err != nil {
				t.Fatalf("consume: %v", err)
			}
			requireAllAcked(t, admin, name, topic, group)

			lat, err := harness.Latency(ctx, impl, harness.LatencyConfig{
				Addr: srv.Addr(), Topic: harness.NewTopic(), Group: harness.NewGroup(),
				Payload: harness.Payload(16), Rate: 1000, Duration: 200 * time.Millisecond, Timeout: testTimeout,
			})
			if err != nil {
				t.Fatalf("latency: %v", err)
			}
			if len(lat.Sorted) != 200 || lat.P(50) <= 0 || lat.P(50) > lat.P(99.9) {
				t.Fatalf("latency: %d samples, p50 %s, p99.9 %s", len(lat.Sorted), lat.P(50), lat.P(99.9))
			}

			idle, err := harness.Idle(ctx, impl, harness.IdleConfig{
				Addr: srv.Addr(), Topic: harness.NewTopic(), Group: harness.NewGroup(),
				Duration: time.Second, Timeout: testTimeout,
			})
			if err != nil {
				t.Fatalf("idle: %v", err)
			}
			if idle.PerSecond > 100 || idle.PoolConns < 1 || idle.ServerConns < 1 || idle.PoolIdle > idle.PoolConns {
				t.Fatalf("idle subscription: %.1f commands/s (%s), %d server connections, pool %d (%d idle)",
					idle.PerSecond, idle, idle.ServerConns, idle.PoolConns, idle.PoolIdle)
			}
			t.Logf("publish %.0f msg/s; latency p50 %s; idle %.1f commands/s (%s)",
				pub.Rate(), lat.P(50), idle.PerSecond, idle)
		})
	}
}

// TestRunChild runs the peak-RSS child's side in this process.
func TestRunChild(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	impl, err := harness.NewImpl(harness.Millrace, 100)
	if err != nil {
		t.Fatal(err)
	}
	cfg := harness.ConsumeConfig{
		Addr: srv.Addr(), Topic: harness.NewTopic(), Group: harness.NewGroup(),
		N: testN, Subscribers: 1, Timeout: testTimeout,
	}
	if err := harness.Prefill(t.Context(), srv.Client(t), impl, cfg.Topic, harness.Payload(1024), cfg.N); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := harness.RunChild(t.Context(), impl, cfg, &out); err != nil {
		t.Fatal(err)
	}
	var rep harness.ChildReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report %q: %v", out.String(), err)
	}
	if rep.Err != "" || rep.VmHWM <= 0 || rep.ElapsedNs <= 0 {
		t.Fatalf("report %+v", rep)
	}
}

// requireAllAcked fails unless group has no pending entry left on topic.
// The peer is only logged: its subscriber drops an Ack that races its Close
// (it selects between the message's Ack and its closing channel, and its
// XACK runs under a context Close cancels), so the last entry of a drain is
// now and then left pending.
func requireAllAcked(t *testing.T, admin *redis.Client, impl, topic, group string) {
	t.Helper()
	p, err := admin.XPending(t.Context(), topic, group).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	switch {
	case p.Count == 0:
	case impl == harness.Peer:
		t.Logf("%d entries still pending after the peer's consumers closed (an Ack racing Close)", p.Count)
	default:
		t.Fatalf("%d entries still pending after the consumers closed", p.Count)
	}
}
