// Quickstart is the smallest complete Millrace program: a Watermill
// message.Router whose handler consumes the topic "orders" in the consumer
// group "order_processors", with Watermill's Recoverer and CorrelationID
// middleware, fed by a Millrace Publisher.
//
// It publishes ten orders, prints each order it publishes and each one the
// handler processes, and exits once all ten are handled, after closing the
// router, the subscriber, the publisher and the Redis client. It fails if an
// order was not handled, lost its correlation ID, or is still pending.
//
// It uses the Redis named by REDIS_URL, or an embedded miniredis when
// REDIS_URL is unset:
//
//	go run ./examples/quickstart
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/quickstart
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
	topic  = "orders"
	group  = "order_processors"
	orders = 10
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	// The client is borrowed by the publisher and the subscriber: closing
	// them does not close it. It is closed last, on return.
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

	subscriber, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		ConsumerGroup: group,          // the group shares the topic's messages among its consumers
		Consumer:      "quickstart-1", // this consumer's name in the group
		ClaimMinIdle:  30 * time.Second,
		MaxDeliveries: 5, // then a message goes to the dead-letter topic "{orders}:dlq"
	}, logger)
	if err != nil {
		return fmt.Errorf("new subscriber: %w", err)
	}
	defer subscriber.Close()

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return fmt.Errorf("new router: %w", err)
	}
	router.AddMiddleware(
		middleware.CorrelationID, // copies the correlation ID to the messages a handler produces
		middleware.Recoverer,     // turns a panic in the handler into an error, so the message is Nacked
	)

	handled := exampleutil.NewCountdown(orders)
	var mu sync.Mutex
	correlationIDs := make(map[string]string) // message UUID -> correlation ID the handler saw
	router.AddConsumerHandler("process_orders", topic, subscriber, func(msg *message.Message) error {
		fmt.Printf("handled   %s  %-16s correlation_id=%s delivery=%s\n",
			msg.UUID, msg.Payload, middleware.MessageCorrelationID(msg),
			msg.Metadata.Get(millrace.MetadataDeliveryCount))
		mu.Lock()
		correlationIDs[msg.UUID] = middleware.MessageCorrelationID(msg)
		mu.Unlock()
		handled.Done(msg.UUID)
		return nil // the router Acks the message: XACK
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}

	published := make(map[string]string) // message UUID -> correlation ID set on it
	for i := 1; i <= orders; i++ {
		msg := message.NewMessage(watermill.NewUUID(), fmt.Appendf(nil, `{"order_id":%d}`, i))
		middleware.SetCorrelationID(watermill.NewShortUUID(), msg)
		published[msg.UUID] = middleware.MessageCorrelationID(msg)
		fmt.Printf("publish   %s  %-16s correlation_id=%s\n",
			msg.UUID, msg.Payload, middleware.MessageCorrelationID(msg))
		if err := publisher.Publish(topic, msg); err != nil { // XADD orders * ...
			return fmt.Errorf("publish: %w", err)
		}
	}

	if err := exampleutil.Wait(30*time.Second, routerDone, handled); err != nil {
		return err
	}
	mu.Lock()
	for id, want := range published {
		got, ok := correlationIDs[id]
		if !ok {
			mu.Unlock()
			return fmt.Errorf("order %s was not handled", id)
		}
		if got != want {
			mu.Unlock()
			return fmt.Errorf("order %s: handler saw correlation_id=%q, published %q", id, got, want)
		}
	}
	mu.Unlock()
	fmt.Printf("all %d orders handled\n", orders)

	// Router.Close waits for the handlers and closes their subscribers too.
	// Close is idempotent, so closing the subscriber here is safe, and so
	// are the deferred closes that cover the error paths.
	if err := router.Close(); err != nil {
		return fmt.Errorf("close router: %w", err)
	}
	if err := <-routerDone; err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := subscriber.Close(); err != nil {
		return fmt.Errorf("close subscriber: %w", err)
	}
	if err := publisher.Close(); err != nil {
		return fmt.Errorf("close publisher: %w", err)
	}

	// Every handled order was acknowledged: nothing is left pending.
	pending, err := client.XPending(context.Background(), topic, group).Result()
	if err != nil {
		return fmt.Errorf("xpending: %w", err)
	}
	if pending.Count != 0 {
		return fmt.Errorf("%d entries still pending in %s", pending.Count, group)
	}
	return nil
}
