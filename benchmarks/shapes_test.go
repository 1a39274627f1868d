package benchmarks

import (
	"errors"
	"testing"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/internal/redistest"
)

// TestConsumeShapes drains tiny backlogs with every implementation of the
// consume figure: one topic with one subscriber, and (GoChannel aside,
// which has no groups) a backlog spread over several topics read by one
// subscriber, each entry handled once and acknowledged.
func TestConsumeShapes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	admin := srv.Client(t)
	for _, name := range append(harness.Names, harness.ConsumeNames...) {
		t.Run(name, func(t *testing.T) {
			impl, err := harness.NewImpl(name, 100)
			if err != nil {
				t.Fatal(err)
			}
			cfg := harness.ConsumeConfig{
				Addr: srv.Addr(), Topic: harness.NewTopic(), Group: harness.NewGroup(), Payload: harness.Payload(16),
				N: testN, Subscribers: 1, Timeout: testTimeout,
			}
			res, err := harness.Consume(t.Context(), impl, cfg)
			if err != nil || res.N != testN {
				t.Fatalf("consume one topic: %+v, %v", res, err)
			}
			if name != harness.GoChannel {
				requireAllAcked(t, admin, name, cfg.Topic, cfg.Group)
			}

			cfg.Topic, cfg.Group, cfg.Topics = harness.NewTopic(), harness.NewGroup(), 3
			_, err = harness.Consume(t.Context(), impl, cfg)
			if name == harness.GoChannel {
				if !errors.Is(err, harness.ErrNotApplicable) {
					t.Fatalf("GoChannel over 3 topics: %v, want ErrNotApplicable", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("consume 3 topics: %v", err)
			}
			for _, topic := range harness.TopicNames(cfg.Topic, cfg.Topics) {
				if n := admin.XLen(t.Context(), topic).Val(); n != testN/3 && n != testN/3+1 {
					t.Fatalf("%s holds %d entries, want a third of %d", topic, n, testN)
				}
				requireAllAcked(t, admin, name, topic, cfg.Group)
			}
		})
	}
}

// TestIdleTopics measures the idle cost of three topics in both shapes and
// checks what can be known without timing: every subscription holds a
// connection the pool counts, and the figure sees commands.
func TestIdleTopics(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	for _, name := range harness.Names {
		for _, perTopic := range []bool{false, true} {
			t.Run(name, func(t *testing.T) {
				impl, err := harness.NewImpl(name, 100)
				if err != nil {
					t.Fatal(err)
				}
				idle, err := harness.Idle(t.Context(), impl, harness.IdleConfig{
					Addr: srv.Addr(), Topic: harness.NewTopic(), Group: harness.NewGroup(), Topics: 3, PerTopic: perTopic,
					Settle: 100 * time.Millisecond, Duration: 1500 * time.Millisecond, Timeout: testTimeout,
				})
				if err != nil {
					t.Fatal(err)
				}
				if idle.PoolConns < 1 || idle.ServerConns < 1 || idle.PoolIdle > idle.PoolConns || idle.ByCommand["info"] != 0 {
					t.Fatalf("per topic %v: %d server connections, pool %d (%d idle), %.1f commands/s (%s)",
						perTopic, idle.ServerConns, idle.PoolConns, idle.PoolIdle, idle.PerSecond, idle)
				}
				t.Logf("per topic %v: %d server connections, pool %d, %.2f commands/s (%s)",
					perTopic, idle.ServerConns, idle.PoolConns, idle.PerSecond, idle)
			})
		}
	}
}

// TestDelayedLateness publishes delayed messages into idle and busy topics
// and checks that each reaches its handler once, never before it is due.
func TestDelayedLateness(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	impl, err := harness.NewImpl(harness.Millrace, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, busy := range []int{0, 50} {
		late, err := harness.DelayedLateness(t.Context(), impl, harness.DelayConfig{
			Addr: srv.Addr(), Topic: harness.NewTopic(), Group: harness.NewGroup(), Topics: 3,
			Delay: 100 * time.Millisecond, BusyRate: busy, Idle: 100 * time.Millisecond,
			Spread: 100 * time.Millisecond, Timeout: testTimeout,
		})
		if err != nil {
			t.Fatalf("busy rate %d: %v", busy, err)
		}
		if len(late.Sorted) != 3 || late.Sorted[0] < 0 {
			t.Fatalf("busy rate %d: lateness %v, want 3 samples, none negative", busy, late.Sorted)
		}
		t.Logf("busy rate %d: lateness %v", busy, late.Sorted)
	}
}
