// Fanout shows fan-out with consumer groups: every consumer group of a topic
// receives every message. The groups "billing" and "shipping" both consume
// the topic "orders_placed"; each group keeps its own position and its own
// pending entries in the stream, so one group falling behind or failing
// never affects the other.
//
// (Within one group, the consumers share the messages instead: see the
// workers example.)
//
// It publishes five orders, prints what each group handles, and exits once
// both groups have handled all five. It fails if a group missed an order or
// left one pending.
//
//	go run ./examples/fanout
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/fanout
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/examples/internal/exampleutil"
)

const (
	topic  = "orders_placed"
	orders = 5
)

var groups = []string{"billing", "shipping"}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

func run() error {
	client, closeClient, err := exampleutil.Redis()
	if err != nil {
		return err
	}
	defer closeClient()
	logger := exampleutil.Logger()

	publisher, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new publisher: %w", err)
	}
	defer publisher.Close()

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new router: %w", err)
	}
	router.AddMiddleware(middleware.Recoverer)

	// One subscriber per group; each group gets its own copy of every message.
	var subscribers []*millrace.Subscriber
	var countdowns []*exampleutil.Countdown
	var mu sync.Mutex
	handledBy := make(map[string]map[string]bool) // group -> UUIDs it handled
	for _, group := range groups {
		subscriber, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
			ConsumerGroup: group,
			Consumer:      group + "-1",
		}, logger)
		if err != nil {
			return fmt.Errorf("new subscriber: %w", err)
		}
		defer subscriber.Close()
		subscribers = append(subscribers, subscriber)

		handled := exampleutil.NewCountdown(orders)
		countdowns = append(countdowns, handled)
		handledBy[group] = make(map[string]bool)
		router.AddConsumerHandler(group, topic, subscriber, func(msg *message.Message) error {
			fmt.Printf("[%-8s] handled %s entry=%s\n", group, msg.Payload, msg.Metadata.Get(millrace.MetadataEntryID))
			mu.Lock()
			handledBy[group][msg.UUID] = true
			mu.Unlock()
			handled.Done(msg.UUID)
			return nil
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}

	var published []string
	for i := 1; i <= orders; i++ {
		msg := message.NewMessage(watermill.NewUUID(), fmt.Appendf(nil, `{"order_id":%d}`, i))
		published = append(published, msg.UUID)
		fmt.Printf("publish %s\n", msg.Payload)
		if err := publisher.Publish(topic, msg); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}

	if err := exampleutil.Wait(30*time.Second, routerDone, countdowns...); err != nil {
		return err
	}
	mu.Lock()
	for _, group := range groups {
		for _, id := range published {
			if !handledBy[group][id] {
				mu.Unlock()
				return fmt.Errorf("group %s did not handle order %s", group, id)
			}
		}
	}
	mu.Unlock()
	fmt.Printf("each of the %d groups handled all %d orders\n", len(groups), orders)

	if err := router.Close(); err != nil {
		return fmt.Errorf("close router: %w", err)
	}
	if err := <-routerDone; err != nil {
		return fmt.Errorf("router: %w", err)
	}
	for _, subscriber := range subscribers {
		if err := subscriber.Close(); err != nil {
			return fmt.Errorf("close subscriber: %w", err)
		}
	}
	if err := publisher.Close(); err != nil {
		return fmt.Errorf("close publisher: %w", err)
	}

	// Each group acknowledged its own copy of every order.
	for _, group := range groups {
		pending, err := client.XPending(context.Background(), topic, group).Result()
		if err != nil {
			return fmt.Errorf("xpending %s: %w", group, err)
		}
		if pending.Count != 0 {
			return fmt.Errorf("%d entries still pending in %s", pending.Count, group)
		}
	}
	return nil
}
