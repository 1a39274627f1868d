package benchmarks

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/internal/redistest"
)

// watermillImpls are the implementations the Go benchmarks compare.
var watermillImpls = []string{harness.Millrace, harness.Peer}

// startRedis starts one redis-server without persistence for a benchmark
// and its sub-benchmarks.
func startRedis(b *testing.B) *redistest.Server {
	b.Helper()
	return redistest.Start(b, redistest.Options{NoAOF: true})
}

// newClient returns a client closed when b ends. The peer's Close may have
// closed it already; that error is ignored.
func newClient(b *testing.B, addr string) *redis.Client {
	c := harness.NewClient(addr)
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkSubscriber is Watermill's tests.BenchSubscriber: b.N messages
// published one per Publish call while one subscriber reads and acks them;
// ns/op is end-to-end time per message.
func BenchmarkSubscriber(b *testing.B) {
	srv := startRedis(b)
	for _, name := range watermillImpls {
		b.Run(name, func(b *testing.B) {
			impl, err := harness.NewWatermillImpl(name)
			if err != nil {
				b.Fatal(err)
			}
			tests.BenchSubscriber(b, func(int) (message.Publisher, message.Subscriber) {
				// Separate clients: the peer's Close closes its client.
				pub, err := impl.NewPublisher(newClient(b, srv.Addr()))
				if err != nil {
					b.Fatal(err)
				}
				sub, err := impl.NewSubscriber(newClient(b, srv.Addr()), harness.NewGroup())
				if err != nil {
					b.Fatal(err)
				}
				// BenchSubscriber never closes them; cleanups run last
				// in first out, so these run before the clients close.
				b.Cleanup(func() { pub.Close() })
				b.Cleanup(func() { sub.Close() })
				return pub, sub
			})
		})
	}
}

// BenchmarkPublish publishes one message per Publish call from
// b.RunParallel goroutines sharing one publisher, with GOMAXPROCS and with
// 64 goroutines, 16 B and 1 KB payloads; Millrace also with PlainXAdd and
// with an Idempotency window.
func BenchmarkPublish(b *testing.B) {
	srv := startRedis(b)
	admin := newClient(b, srv.Addr())
	for _, name := range slices.Concat(watermillImpls, harness.PublishNames) {
		for _, size := range []int{16, 1024} {
			for _, goroutines := range []int{runtime.GOMAXPROCS(0), 64} {
				b.Run(fmt.Sprintf("%s/%dB/goroutines=%d", name, size, goroutines), func(b *testing.B) {
					benchPublish(b, name, srv.Addr(), admin, size, goroutines)
				})
			}
		}
	}
}

func benchPublish(b *testing.B, name, addr string, admin *redis.Client, size, goroutines int) {
	impl, err := harness.NewWatermillImpl(name)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := impl.NewPublisher(newClient(b, addr))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pub.Close() })
	topic := harness.NewTopic()
	b.Cleanup(func() { harness.DeleteTopic(context.Background(), admin, topic) })
	payload := harness.Payload(size)

	b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := pub.Publish(topic, message.NewMessage(ulid.Make().String(), payload)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
