//go:build brokers

package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/benchmarks/internal/harness"
)

// TestAMQP publishes and consumes through both AMQP configurations on a
// RabbitMQ of its own, and checks that it leaves no process behind. It is
// built with -tags brokers: make bench-brokers installs rabbitmq-server and
// runs it before the comparison; make test, which has no RabbitMQ, does not
// build it.
func TestAMQP(t *testing.T) {
	if err := harness.RabbitMQInstalled(); err != nil {
		t.Fatal(err)
	}
	r, err := harness.StartRabbitMQ(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pids := r.Pids()
	defer func() {
		r.Stop()
		if st, err := harness.TreeStats(pids...); err == nil {
			t.Errorf("%d RabbitMQ processes still run after Stop", st.N)
		}
	}()
	const n = 300
	for _, name := range harness.AMQPNames {
		t.Run(name, func(t *testing.T) {
			impl, err := harness.NewAMQPImpl(name, r.URI)
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			topic := harness.NewTopic()
			if _, err := harness.Publish(ctx, impl, harness.PublishConfig{
				Topic: topic, Payload: harness.Payload(16), N: n, Publishers: 4, Timeout: testTimeout,
			}); err != nil {
				t.Fatalf("publish: %v", err)
			}
			requireQueued(t, r.URI, topic, n)
			if _, err := harness.Drain(ctx, impl, harness.ConsumeConfig{
				Topic: topic, Group: harness.NewGroup(), N: n, Subscribers: 2, Timeout: testTimeout,
			}); err != nil {
				t.Fatalf("drain: %v", err)
			}
			requireQueued(t, r.URI, topic, 0)
			if _, err := harness.Consume(ctx, impl, harness.ConsumeConfig{
				Topic: topic, Group: harness.NewGroup(), Payload: harness.Payload(1024), N: n, Subscribers: 1, Timeout: testTimeout,
			}); err != nil {
				t.Fatalf("consume a pre-filled queue: %v", err)
			}
			lat, err := harness.Latency(ctx, impl, harness.LatencyConfig{
				Topic: harness.NewTopic(), Payload: harness.Payload(16), Rate: 1000, Duration: 100 * time.Millisecond, Timeout: testTimeout,
			})
			if err != nil || len(lat.Sorted) != 100 {
				t.Fatalf("latency: %d samples, %v", len(lat.Sorted), err)
			}
			if err := harness.DeleteImplTopic(ctx, nil, impl, topic); err != nil {
				t.Fatalf("delete the queue: %v", err)
			}
		})
	}
}

// requireQueued fails unless queue holds want messages ready for delivery
// (once the consumers closed, messages they did not acknowledge are back
// among them).
func requireQueued(t *testing.T, uri, queue string, want int) {
	t.Helper()
	conn, err := amqp091.Dial(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	// Acks and publishes are asynchronous in AMQP: the count settles.
	for {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q.Messages == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("queue %s holds %d messages, want %d", queue, q.Messages, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
