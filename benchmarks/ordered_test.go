package benchmarks

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/membership"
	"github.com/millrace/millrace/partition"
)

// orderedKeys is how many partition keys the ordered benchmarks spread
// their messages over.
const orderedKeys = 1000

// BenchmarkOrdered is ordered throughput on a topic of 12 partitions, with
// 1, 2 and 4 members of one group (partition.BalancedSubscriber, MaxInFlight
// 8 per partition, OrderingKey the partition key): the members share the
// partitions first, then b.N messages over 1,000 keys are published (100
// per Publish call, from one goroutine) while the members ack them at
// once. ns/op is end-to-end time per message. The members run in this
// process, so the figure is the cost of the mechanism on this machine, not
// the scaling of members on machines of their own. Run without -race:
//
//	go test -run '^$' -bench Ordered -benchtime 50000x .
func BenchmarkOrdered(b *testing.B) {
	srv := startRedis(b)
	for _, members := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			client := newClient(b, srv.Addr())
			topic := "ordered-" + watermill.NewShortUUID()
			const n = 12
			var handled atomic.Int64
			done := make(chan struct{})
			var names []string
			for i := range members {
				name := "m" + strconv.Itoa(i)
				names = append(names, name)
				sub, err := partition.NewBalancedSubscriber(client, partition.BalancedConfig{
					Topics:     map[string]int{topic: n},
					Subscriber: millrace.SubscriberConfig{ConsumerGroup: "g", MaxInFlight: 8, ConsumerLease: 2 * time.Second},
					Member:     name,
					Heartbeat:  100 * time.Millisecond,
				}, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { sub.Close() })
				ch, err := sub.Subscribe(context.Background(), topic)
				if err != nil {
					b.Fatal(err)
				}
				go ackAll(ch, &handled, int64(b.N), done)
			}
			awaitEvenShares(b, client, topic, n, names)
			b.ResetTimer()
			go publishKeyed(b, client, partition.Config{Topics: map[string]int{topic: n}}, topic, b.N)
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// BenchmarkPerKey compares one subscriber handing out one message at a
// time (MaxInFlight 1) with one handing out 16 at a time, one per key
// (OrderingKey), and with 16 at a time without order, on one topic: b.N
// messages over 1,000 keys are published first, then consumed by handlers
// that take work each (0 or 1ms, a call to another service) and ack. ns/op
// is time per message. Run without -race:
//
//	go test -run '^$' -bench PerKey -benchtime 5000x .
func BenchmarkPerKey(b *testing.B) {
	srv := startRedis(b)
	for _, work := range []time.Duration{0, time.Millisecond} {
		for _, mode := range []struct {
			name     string
			inFlight int
			key      string
		}{{"inflight=1", 1, ""}, {"inflight=16,ordered", 16, partition.MetadataKey}, {"inflight=16,unordered", 16, ""}} {
			b.Run(fmt.Sprintf("work=%s/%s", work, mode.name), func(b *testing.B) {
				client := newClient(b, srv.Addr())
				topic := "perkey-" + watermill.NewShortUUID()
				publishKeyed(b, client, partition.Config{}, topic, b.N)
				sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
					ConsumerGroup: "g", MaxInFlight: mode.inFlight, OrderingKey: mode.key,
				}, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { sub.Close() })
				b.ResetTimer()
				ch, err := sub.Subscribe(context.Background(), topic)
				if err != nil {
					b.Fatal(err)
				}
				var handled atomic.Int64
				done := make(chan struct{})
				go func() {
					for msg := range ch {
						go func() {
							time.Sleep(work)
							msg.Ack()
							if handled.Add(1) == int64(b.N) {
								close(done)
							}
						}()
					}
				}()
				<-done
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			})
		}
	}
}

// ackAll acks every message of ch; done is closed once the members have
// handled want messages between them.
func ackAll(ch <-chan *message.Message, handled *atomic.Int64, want int64, done chan struct{}) {
	for msg := range ch {
		msg.Ack()
		if handled.Add(1) == want {
			close(done)
		}
	}
}

// publishKeyed publishes n messages, 100 per call, with partition keys
// key-0 to key-999 in turn, through a partition.Publisher of cfg.
func publishKeyed(b *testing.B, client redis.UniversalClient, cfg partition.Config, topic string, n int) {
	inner, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, nil)
	if err != nil {
		b.Error(err)
		return
	}
	pub, err := partition.NewPublisher(inner, cfg)
	if err != nil {
		b.Error(err)
		return
	}
	defer pub.Close()
	for sent := 0; sent < n; {
		msgs := make([]*message.Message, 0, 100)
		for ; len(msgs) < cap(msgs) && sent < n; sent++ {
			msg := message.NewMessage(watermill.NewUUID(), []byte("0123456789abcdef"))
			msg.Metadata.Set(partition.MetadataKey, "key-"+strconv.Itoa(sent%orderedKeys))
			msgs = append(msgs, msg)
		}
		if err := pub.Publish(topic, msgs...); err != nil {
			b.Error(err)
			return
		}
	}
}

// awaitEvenShares polls the group until the members own the n partitions
// evenly between them.
func awaitEvenShares(b *testing.B, client redis.UniversalClient, topic string, n int, members []string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		v, err := membership.Read(context.Background(), client, topic, "g")
		if err != nil {
			b.Fatal(err)
		}
		owned := 0
		for _, m := range v.Members {
			if len(m.Owned) >= n/len(members) {
				owned += len(m.Owned)
			}
		}
		if len(v.Members) == len(members) && owned == n {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling the group's state: no event to wait for
	}
	b.Fatalf("%d members do not share %d partitions", len(members), n)
}
