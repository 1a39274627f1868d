// Forwarder shows Watermill's forwarder component (the outbox pattern) with
// Millrace. The application publishes through forwarder.NewPublisher, which
// wraps every message in an envelope naming its destination topic and
// publishes the envelope to the outbox topic "outbox". The Forwarder
// consumes the outbox (in its own consumer group), unwraps each envelope and
// publishes the message to its destination with another publisher, acking
// the envelope only once the message is out.
//
// In a real outbox the first publisher writes to the database in the
// application's transaction (watermill-sql) and Millrace is the destination;
// here both sides are Redis so the example runs on its own, which also shows
// a Millrace topic serving as a durable buffer in front of another Pub/Sub.
//
// It publishes three notifications to two destination topics and exits once
// the handlers of both topics have received them, metadata included.
//
//	go run ./examples/forwarder
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/forwarder
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/examples/internal/exampleutil"
)

const outboxTopic = "outbox"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "forwarder:", err)
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

	// The outbox side: Millrace here, the SQL publisher in a real outbox.
	outboxPublisher, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new publisher: %w", err)
	}
	defer outboxPublisher.Close()
	appPublisher := forwarder.NewPublisher(outboxPublisher, forwarder.PublisherConfig{ForwarderTopic: outboxTopic})

	// The destination side.
	destinationPublisher, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new publisher: %w", err)
	}
	defer destinationPublisher.Close()

	outboxSubscriber, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{ConsumerGroup: "forwarder"}, logger)
	if err != nil {
		return fmt.Errorf("new subscriber: %w", err)
	}
	defer outboxSubscriber.Close()
	fwd, err := forwarder.NewForwarder(outboxSubscriber, destinationPublisher, logger, forwarder.Config{
		ForwarderTopic: outboxTopic,
	})
	if err != nil {
		return fmt.Errorf("new forwarder: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fwdDone := make(chan error, 1)
	go func() { fwdDone <- fwd.Run(ctx) }()
	select {
	case <-fwd.Running():
	case err := <-fwdDone:
		return fmt.Errorf("forwarder stopped: %v", err)
	}

	// The consumers of the destination topics.
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new router: %w", err)
	}
	received := exampleutil.NewCountdown(3)
	var mu sync.Mutex
	var problems []string
	for _, topic := range []string{"emails", "sms"} {
		sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{ConsumerGroup: topic + "_senders"}, logger)
		if err != nil {
			return fmt.Errorf("new subscriber: %w", err)
		}
		defer sub.Close()
		router.AddConsumerHandler("send_"+topic, topic, sub, func(msg *message.Message) error {
			fmt.Printf("%-6s got %-32q tenant=%s (uuid %s)\n", topic, msg.Payload, msg.Metadata.Get("tenant"), msg.UUID)
			if msg.Metadata.Get("tenant") == "" {
				mu.Lock()
				problems = append(problems, "metadata lost on "+msg.UUID)
				mu.Unlock()
			}
			received.Done(msg.UUID)
			return nil
		})
	}
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}

	for _, n := range []struct{ topic, text string }{
		{"emails", "Your order has shipped"},
		{"sms", "Your code is 314159"},
		{"emails", "Your invoice is ready"},
	} {
		msg := message.NewMessage(watermill.NewUUID(), []byte(n.text))
		msg.Metadata.Set("tenant", "acme")
		// The message goes to "outbox" in an envelope naming n.topic.
		if err := appPublisher.Publish(n.topic, msg); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		fmt.Printf("app    published %q for %s via %s\n", n.text, n.topic, outboxTopic)
	}

	if err := exampleutil.Wait(30*time.Second, routerDone, received); err != nil {
		return err
	}
	if err := router.Close(); err != nil {
		return fmt.Errorf("close router: %w", err)
	}
	if err := <-routerDone; err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := fwd.Close(); err != nil {
		return fmt.Errorf("close forwarder: %w", err)
	}
	if err := <-fwdDone; err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		return fmt.Errorf("%v", problems)
	}
	fmt.Println("3 notifications forwarded from the outbox to their topics")
	return nil
}
