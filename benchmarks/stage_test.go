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

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/benchmarks/internal/harness"
)

// BenchmarkStage is what an effectively-once stage (millrace.Stage) costs:
// a Router handler consuming b.N inputs (published first, 100 per call)
// and producing 1 or 3 outputs each, on topics of one hash tag, through
// the plain Router (Publish, then a batched Ack) and through a Stage (one
// script adds the outputs and acknowledges the input), with MaxInFlight 1
// and 16. ns/op is time per input, until its outputs are in the output
// stream; client-µs/input is this process's CPU time per input (the
// Router, the subscriber and the commits), server-µs/input redis-server's
// (INFO cpu). Run without -race:
//
//	go test -run '^$' -bench Stage -benchtime 20000x .
func BenchmarkStage(b *testing.B) {
	srv := startRedis(b)
	for _, outputs := range []int{1, 3} {
		for _, inFlight := range []int{1, 16} {
			for _, stage := range []bool{false, true} {
				mode := "plain"
				if stage {
					mode = "stage"
				}
				b.Run(fmt.Sprintf("outputs=%d/inflight=%d/%s", outputs, inFlight, mode), func(b *testing.B) {
					benchStage(b, srv.Addr(), outputs, inFlight, stage)
				})
			}
		}
	}
}

func benchStage(b *testing.B, addr string, outputs, inFlight int, stage bool) {
	client := newClient(b, addr)
	tag := "{" + watermill.NewShortUUID() + "}"
	in, out := tag+".in", tag+".out"
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pub.Close() })
	for i := 0; i < b.N; i += 100 {
		msgs := make([]*message.Message, min(100, b.N-i))
		for j := range msgs {
			msgs[j] = message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i+j)))
		}
		if err := pub.Publish(in, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		ConsumerGroup: "g", MaxInFlight: inFlight, NewGroupStartID: millrace.StartOldest,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sub.Close() })
	var handled atomic.Int64
	done := make(chan struct{})
	count := func() {
		if handled.Add(1) == int64(b.N) {
			close(done)
		}
	}
	handle := func(msg *message.Message) ([]*message.Message, error) {
		msgs := make([]*message.Message, outputs)
		for i := range msgs {
			msgs[i] = message.NewMessage(watermill.NewUUID(), msg.Payload)
		}
		return msgs, nil
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	if stage {
		s, err := millrace.NewStage(sub, pub, millrace.StageConfig{})
		if err != nil {
			b.Fatal(err)
		}
		counted := func(h message.HandlerFunc) message.HandlerFunc {
			return func(msg *message.Message) ([]*message.Message, error) {
				msgs, err := h(msg)
				if err == nil {
					count()
				}
				return msgs, err
			}
		}
		router.AddHandler("stage", in, sub, out, pub, handle).AddMiddleware(counted, s.Middleware)
	} else {
		router.AddHandler("stage", in, sub, out, countingPublisher{pub, count}, handle)
	}
	server0, err := harness.ServerCPU(context.Background(), client)
	if err != nil {
		b.Fatal(err)
	}
	client0 := harness.CPUTime()
	b.ResetTimer()
	go func() { _ = router.Run(context.Background()) }()
	<-done
	b.StopTimer()
	clientCPU := harness.CPUTime() - client0
	server1, err := harness.ServerCPU(context.Background(), client)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inputs/s")
	b.ReportMetric(float64(clientCPU.Microseconds())/float64(b.N), "client-µs/input")
	b.ReportMetric(float64((server1-server0).Microseconds())/float64(b.N), "server-µs/input")
	<-router.Running()
	if err := router.Close(); err != nil {
		b.Fatal(err)
	}
}

// countingPublisher calls count after every Publish that succeeded.
type countingPublisher struct {
	message.Publisher
	count func()
}

func (p countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	err := p.Publisher.Publish(topic, msgs...)
	if err == nil {
		p.count()
	}
	return err
}
