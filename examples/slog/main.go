// Slog shows structured logging with log/slog: the Router, the Publisher and
// the Subscriber log through watermill.NewSlogLogger into a JSON handler,
// and the message handler logs through the same slog.Logger with the trace
// context the publisher put in the message's metadata ("trace_id" and
// "span_id" here; any metadata key survives the trip through Redis), so the
// producer's and the consumer's log lines of one request share a trace_id.
//
// It publishes three orders, each under a trace of its own, and exits once
// they are handled. After the line that names the Redis in use, every line
// it prints is a JSON log record.
//
//	go run ./examples/slog
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/slog
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
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
	topic = "orders_slog"
	group = "order_loggers"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "slog:", err)
		os.Exit(1)
	}
}

func run() error {
	client, closeClient, err := exampleutil.Redis()
	if err != nil {
		return err
	}
	defer closeClient()

	// One slog.Logger for the application and for Watermill and Millrace.
	// Info shows the subscription lifecycle; Debug and Trace show more.
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	logger := watermill.NewSlogLogger(log)

	publisher, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new publisher: %w", err)
	}
	defer publisher.Close()
	subscriber, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		ConsumerGroup: group,
		Consumer:      "slog-1",
	}, logger)
	if err != nil {
		return fmt.Errorf("new subscriber: %w", err)
	}
	defer subscriber.Close()

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new router: %w", err)
	}
	router.AddMiddleware(middleware.Recoverer)

	var mu sync.Mutex
	sentTraces := map[string]string{} // message UUID → trace_id
	var lost []string
	handled := exampleutil.NewCountdown(3)
	router.AddConsumerHandler("log_orders", topic, subscriber, func(msg *message.Message) error {
		// The trace context arrives as it was published.
		l := log.With(
			"trace_id", msg.Metadata.Get("trace_id"),
			"span_id", msg.Metadata.Get("span_id"),
			"message_uuid", msg.UUID,
			"entry_id", msg.Metadata.Get(millrace.MetadataEntryID),
			"delivery", msg.Metadata.Get(millrace.MetadataDeliveryCount),
		)
		l.InfoContext(msg.Context(), "order handled", "order", string(msg.Payload))
		mu.Lock()
		if sentTraces[msg.UUID] != msg.Metadata.Get("trace_id") {
			lost = append(lost, msg.UUID)
		}
		mu.Unlock()
		handled.Done(msg.UUID)
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}

	for i := 1; i <= 3; i++ {
		traceID, spanID := randomHex(16), randomHex(8)
		msg := message.NewMessage(watermill.NewUUID(), fmt.Appendf(nil, `{"order_id":%d}`, i))
		msg.Metadata.Set("trace_id", traceID)
		msg.Metadata.Set("span_id", spanID)
		mu.Lock()
		sentTraces[msg.UUID] = traceID
		mu.Unlock()
		log.Info("publishing order", "trace_id", traceID, "span_id", spanID, "message_uuid", msg.UUID)
		if err := publisher.Publish(topic, msg); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}

	if err := exampleutil.Wait(30*time.Second, routerDone, handled); err != nil {
		return err
	}
	if err := router.Close(); err != nil {
		return fmt.Errorf("close router: %w", err)
	}
	if err := <-routerDone; err != nil {
		return fmt.Errorf("router: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lost) > 0 {
		return fmt.Errorf("trace context lost on %v", lost)
	}
	log.Info("all orders handled with their trace context")
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
