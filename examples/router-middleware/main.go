// Router-middleware shows Watermill's Router middleware working unchanged
// over Millrace, and user metadata (a W3C traceparent) surviving the trip:
//
//   - CorrelationID copies the correlation ID to the messages a handler
//     produces;
//   - Deduplicator, with Millrace's Redis-backed dedup.ExpiringKeyRepository
//     (SET NX PX), drops a message published twice, across processes;
//   - PoisonQueue moves a message that keeps failing to "payments_poison";
//   - Retry retries a failing handler in place, with backoff;
//   - Timeout cancels the message's context after a deadline;
//   - Recoverer turns a panic into an error (which Retry then retries).
//
// The handler "payments" consumes "payments" and produces a receipt on
// "receipts" for each payment; "receipts" and "payments_poison" have
// handlers of their own. Of the five payments, one panics once, one always
// fails (and ends in the poison queue) and one is published twice.
//
// It exits once the four receipts and the poisoned payment are handled.
//
//	go run ./examples/router-middleware
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/router-middleware
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/dedup"
	"github.com/millrace/millrace/examples/internal/exampleutil"
)

const (
	paymentsTopic = "payments"
	receiptsTopic = "receipts"
	poisonTopic   = "payments_poison"
	// traceparentKey is where the publisher puts its trace context; any
	// metadata key travels the same way.
	traceparentKey = "traceparent"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "router-middleware:", err)
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

	// Each handler consumes in a group of its own.
	newSubscriber := func(group string) (*millrace.Subscriber, error) {
		return millrace.NewSubscriber(client, millrace.SubscriberConfig{ConsumerGroup: group}, logger)
	}

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return fmt.Errorf("new router: %w", err)
	}
	dedupRepo, err := dedup.NewExpiringKeyRepository(client, dedup.Config{
		Window:    time.Hour,
		KeyPrefix: "router-middleware:dedup:",
	})
	if err != nil {
		return err
	}
	deduplicator := &middleware.Deduplicator{
		// Router middleware wraps every handler, and the poison queue's
		// handler gets the very message (same UUID) the payments handler
		// failed on: the key names the handler too.
		KeyFactory: func(msg *message.Message) (string, error) {
			return message.HandlerNameFromCtx(msg.Context()) + "/" + msg.UUID, nil
		},
		Repository: dedupRepo,
		Timeout:    time.Second,
	}
	poisonQueue, err := middleware.PoisonQueue(publisher, poisonTopic)
	if err != nil {
		return err
	}
	// The first middleware added is the outermost.
	router.AddMiddleware(
		middleware.CorrelationID,
		deduplicator.Middleware, // outside Retry: a retry is not a duplicate
		// Timeout bounds all attempts together. It sits outside PoisonQueue:
		// Timeout cancels the message's context when its handler returns,
		// and a Publisher (Millrace's, like others) refuses to publish a
		// message whose context is done, so a PoisonQueue outside Timeout
		// could never publish.
		middleware.Timeout(5*time.Second),
		poisonQueue, // gets the error once Retry gives up
		middleware.Retry{
			MaxRetries:      2,
			InitialInterval: 20 * time.Millisecond,
			Multiplier:      2,
		}.Middleware,
		middleware.Recoverer,
	)

	var mu sync.Mutex
	attempts := map[string]int{}
	receipts := exampleutil.NewCountdown(4)
	poisoned := exampleutil.NewCountdown(1)
	var problems []string

	paymentsSub, err := newSubscriber("payment_processors")
	if err != nil {
		return err
	}
	defer paymentsSub.Close()
	router.AddHandler("payments", paymentsTopic, paymentsSub, receiptsTopic, publisher,
		func(msg *message.Message) ([]*message.Message, error) {
			mu.Lock()
			attempts[msg.UUID]++
			n := attempts[msg.UUID]
			mu.Unlock()
			payment := string(msg.Payload)
			switch payment {
			case "card declined":
				return nil, errors.New("card declined by the bank")
			case "flaky gateway":
				if n == 1 {
					panic("gateway connection reset") // Recoverer → error → Retry
				}
			}
			if _, ok := msg.Context().Deadline(); !ok {
				return nil, errors.New("Timeout middleware set no deadline")
			}
			fmt.Printf("payment  %-16s attempt %d  correlation_id=%s\n", payment, n, middleware.MessageCorrelationID(msg))
			receipt := message.NewMessage(watermill.NewUUID(), []byte("receipt for "+payment))
			// CorrelationID copies the correlation ID; the trace context is
			// the handler's to pass on.
			receipt.Metadata.Set(traceparentKey, msg.Metadata.Get(traceparentKey))
			return []*message.Message{receipt}, nil
		})

	receiptsSub, err := newSubscriber("receipt_mailers")
	if err != nil {
		return err
	}
	defer receiptsSub.Close()
	router.AddConsumerHandler("receipts", receiptsTopic, receiptsSub, func(msg *message.Message) error {
		fmt.Printf("receipt  %-28s correlation_id=%s traceparent=%s\n",
			msg.Payload, middleware.MessageCorrelationID(msg), msg.Metadata.Get(traceparentKey))
		if middleware.MessageCorrelationID(msg) == "" || msg.Metadata.Get(traceparentKey) == "" {
			mu.Lock()
			problems = append(problems, "receipt without correlation ID or trace context: "+string(msg.Payload))
			mu.Unlock()
		}
		receipts.Done(string(msg.Payload))
		return nil
	})

	poisonSub, err := newSubscriber("poison_inspectors")
	if err != nil {
		return err
	}
	defer poisonSub.Close()
	router.AddConsumerHandler("poison", poisonTopic, poisonSub, func(msg *message.Message) error {
		fmt.Printf("poisoned %-16s reason=%q handler=%s\n", msg.Payload,
			msg.Metadata.Get(middleware.ReasonForPoisonedKey), msg.Metadata.Get(middleware.PoisonedHandlerKey))
		poisoned.Done(msg.UUID)
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}

	var payments []*message.Message
	for i, p := range []string{"coffee", "flaky gateway", "card declined", "books", "train ticket"} {
		msg := message.NewMessage(watermill.NewUUID(), []byte(p))
		middleware.SetCorrelationID(fmt.Sprintf("corr-%d", i+1), msg)
		msg.Metadata.Set(traceparentKey, fmt.Sprintf("00-%032x-%016x-01", i+1, i+1))
		payments = append(payments, msg)
	}
	payments = append(payments, payments[0].Copy()) // a producer's retry: the same message again
	if err := publisher.Publish(paymentsTopic, payments...); err != nil {
		return fmt.Errorf("publish: %w", err)
	}

	if err := exampleutil.Wait(30*time.Second, routerDone, receipts, poisoned); err != nil {
		return err
	}
	// Let a duplicate that slipped through show up before counting.
	time.Sleep(200 * time.Millisecond)

	if err := router.Close(); err != nil {
		return fmt.Errorf("close router: %w", err)
	}
	if err := <-routerDone; err != nil {
		return fmt.Errorf("router: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := attempts[payments[0].UUID]; n != 1 {
		problems = append(problems, fmt.Sprintf("the duplicated payment was handled %d times", n))
	}
	if n := attempts[payments[2].UUID]; n != 3 {
		problems = append(problems, fmt.Sprintf("the declined card was tried %d times, want 1 + 2 retries", n))
	}
	if len(problems) > 0 {
		return errors.New(fmt.Sprint(problems))
	}
	fmt.Println("4 receipts sent, 1 payment in the poison queue, the duplicate dropped")
	return nil
}
