package soak

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace"
)

// subscription is one open subscription of a slot and the goroutine that
// acknowledges what it delivers.
type subscription struct {
	sub    *millrace.Subscriber
	cancel context.CancelFunc
	done   chan struct{}
}

// subscriberConfig is the config of every subscriber of the run: fixed
// consumer names, so a slot's next subscription takes over what its last
// one left pending.
func subscriberConfig(group, consumer string) millrace.SubscriberConfig {
	return millrace.SubscriberConfig{
		ConsumerGroup: group,
		Consumer:      consumer,
		ClaimMinIdle:  5 * time.Second,
		BlockTime:     200 * time.Millisecond,
		CloseTimeout:  2 * time.Second,
	}
}

func (w *workload) openSubscription(slot int) *subscription {
	sub, err := millrace.NewSubscriber(w.client, subscriberConfig("soak", fmt.Sprintf("sub-%d", slot)), w.logger)
	if err != nil {
		w.tb.Fatalf("soak: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, topics[slot%len(topics)])
	if err != nil {
		cancel()
		w.tb.Fatalf("soak: subscribe slot %d: %v", slot, err)
	}
	s := &subscription{sub: sub, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for m := range ch {
			m.Ack()
			w.handled.Add(1)
		}
	}()
	return s
}

func (s *subscription) close(tb testing.TB) {
	s.cancel()
	if err := s.sub.Close(); err != nil {
		tb.Errorf("soak: close subscriber: %v", err)
	}
	<-s.done
}

// churnSubscription closes a random slot's subscription and opens a new one.
func (w *workload) churnSubscription() {
	i := w.rng.IntN(slots)
	w.subs[i].close(w.tb)
	w.subs[i] = w.openSubscription(i)
	w.churned++
}

// router is one running Router with one handler.
type router struct {
	r    *message.Router
	done chan error
}

func (w *workload) startRouter(i int) *router {
	sub, err := millrace.NewSubscriber(w.client, subscriberConfig("routers", fmt.Sprintf("router-%d", i)), w.logger)
	if err != nil {
		w.tb.Fatalf("soak: %v", err)
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 2 * time.Second}, w.logger)
	if err != nil {
		w.tb.Fatalf("soak: %v", err)
	}
	r.AddConsumerHandler("soak", topics[i%len(topics)], sub, func(*message.Message) error {
		w.handled.Add(1)
		return nil
	})
	rt := &router{r: r, done: make(chan error, 1)}
	go func() { rt.done <- r.Run(context.Background()) }()
	select {
	case <-r.Running():
	case err := <-rt.done:
		w.tb.Fatalf("soak: router %d: %v", i, err)
	}
	return rt
}

func (rt *router) close(tb testing.TB) {
	if err := rt.r.Close(); err != nil {
		tb.Errorf("soak: close router: %v", err)
	}
	if err := <-rt.done; err != nil {
		tb.Errorf("soak: router: %v", err)
	}
}

// churnRouter closes a random Router and starts it again.
func (w *workload) churnRouter() {
	i := w.rng.IntN(routers)
	w.routers[i].close(w.tb)
	w.routers[i] = w.startRouter(i)
	w.routerRestarts++
}
