// DLQ shows Millrace's dead-letter topic. The subscriber of "invoices" has
// MaxDeliveries 3: an entry that Redis has delivered more than three times
// (Nacks, crashed consumers and restarts all count, by Redis's own
// counter) is moved to the dead-letter topic "{invoices}:dlq", with metadata
// saying why, and acknowledged in the same MULTI/EXEC. The dead-letter topic
// is an ordinary topic: a second handler consumes it.
//
// The handler rejects the invoice "corrupt" every time (it returns an error,
// so the Router Nacks it, and Millrace redelivers it after NackBackoff). The
// other invoices go through.
//
// It exits once the good invoices are handled and the corrupt one has been
// read from the dead-letter topic.
//
//	go run ./examples/dlq
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/dlq
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/examples/internal/exampleutil"
)

const (
	topic = "invoices"
	group = "invoice_processors"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dlq:", err)
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

	subscriber, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		ConsumerGroup: group,
		Consumer:      "dlq-1",
		MaxDeliveries: 3,                     // the 4th delivery goes to the dead-letter topic instead
		NackBackoff:   50 * time.Millisecond, // wait before redelivering a Nacked message (doubles each time)
	}, logger)
	if err != nil {
		return fmt.Errorf("new subscriber: %w", err)
	}
	defer subscriber.Close()

	dlqTopic := millrace.DeadLetterTopic(topic) // "{invoices}:dlq", in the same Cluster slot as "invoices"
	dlqSubscriber, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		ConsumerGroup: "invoice_auditors",
		Consumer:      "dlq-auditor-1",
	}, logger)
	if err != nil {
		return fmt.Errorf("new subscriber: %w", err)
	}
	defer dlqSubscriber.Close()

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new router: %w", err)
	}

	good := exampleutil.NewCountdown(2)
	dead := exampleutil.NewCountdown(1)
	router.AddConsumerHandler("process_invoices", topic, subscriber, func(msg *message.Message) error {
		delivery := msg.Metadata.Get(millrace.MetadataDeliveryCount)
		if string(msg.Payload) == "corrupt" {
			fmt.Printf("invoice %-8s delivery %s: rejected\n", msg.Payload, delivery)
			return errors.New("cannot parse invoice") // the Router Nacks it
		}
		fmt.Printf("invoice %-8s delivery %s: processed\n", msg.Payload, delivery)
		good.Done(msg.UUID)
		return nil
	})
	router.AddConsumerHandler("audit_dead_letters", dlqTopic, dlqSubscriber, func(msg *message.Message) error {
		md := msg.Metadata
		fmt.Printf("dead letter %q from %s: reason=%q deliveries=%s entry=%s group=%s\n",
			msg.Payload, md.Get(middleware.PoisonedTopicKey), md.Get(middleware.ReasonForPoisonedKey),
			md.Get(millrace.MetadataDeadLetterDeliveries), md.Get(millrace.MetadataDeadLetterEntryID),
			md.Get(millrace.MetadataDeadLetterGroup))
		dead.Done(msg.UUID)
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}
	for _, invoice := range []string{"INV-1", "corrupt", "INV-2"} {
		if err := publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(invoice))); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}

	if err := exampleutil.Wait(30*time.Second, routerDone, good, dead); err != nil {
		return err
	}
	if err := router.Close(); err != nil {
		return fmt.Errorf("close router: %w", err)
	}
	if err := <-routerDone; err != nil {
		return fmt.Errorf("router: %w", err)
	}
	pending, err := client.XPending(context.Background(), topic, group).Result()
	if err != nil {
		return err
	}
	if pending.Count != 0 {
		return fmt.Errorf("%d entries still pending in %s", pending.Count, group)
	}
	fmt.Printf("2 invoices processed, 1 in %s, nothing pending\n", dlqTopic)
	return nil
}
