// Delayed shows delayed messages with Watermill's delay component: a message
// whose delay metadata lies in the future waits in Redis, in the sorted set
// "{reminders}:delayed", until it is due, and is then moved into the stream
// "reminders" by the topic's subscribers. It is never delivered early, and it
// survives restarts of Redis and of the subscribers meanwhile.
//
// It publishes five reminders: one at once, three delayed in the three ways
// Watermill offers (delay.Message with delay.For, delay.Until, and
// delay.WithContext through delay.NewPublisher), and a "flaky" one whose
// handler fails on the first try: middleware.DelayOnError puts a delay on it
// and middleware.PoisonQueue publishes it back to its own topic, so it comes
// back 500ms later instead of at once.
//
// It prints when each reminder arrives, checks that none came early, and
// exits once all five are handled.
//
//	go run ./examples/delayed
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/delayed
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/examples/internal/exampleutil"
)

const (
	topic = "reminders"
	group = "reminder_senders"
	// retryDelay is how long a failed reminder waits before it comes back.
	retryDelay = 500 * time.Millisecond
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "delayed:", err)
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
		Consumer:      "delayed-1",
	}, logger)
	if err != nil {
		return fmt.Errorf("new subscriber: %w", err)
	}
	defer subscriber.Close()

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new router: %w", err)
	}
	// A failed message gets delay metadata from DelayOnError, then
	// PoisonQueue publishes it (delayed) back to its topic and acks the
	// original. The first middleware added is the outermost.
	poisonQueue, err := middleware.PoisonQueue(publisher, topic)
	if err != nil {
		return err
	}
	router.AddMiddleware(poisonQueue, (&middleware.DelayOnError{
		InitialInterval: retryDelay,
		MaxInterval:     5 * time.Second,
		Multiplier:      2,
	}).Middleware)

	start := time.Now()
	var mu sync.Mutex
	notBefore := map[string]time.Time{} // payload → earliest allowed delivery
	failedOnce := false
	var early []string
	handled := exampleutil.NewCountdown(5)
	router.AddConsumerHandler("send_reminders", topic, subscriber, func(msg *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		at := time.Since(start)
		payload := string(msg.Payload)
		if payload == "flaky" && !failedOnce {
			failedOnce = true
			notBefore[payload] = time.Now().Add(retryDelay)
			fmt.Printf("+%-6s %-28s fails; DelayOnError retries it in %s\n", at.Round(time.Millisecond), payload, retryDelay)
			return errors.New("SMTP server busy")
		}
		status := "on time"
		if time.Now().Before(notBefore[payload]) {
			status = "EARLY"
			early = append(early, payload)
		}
		fmt.Printf("+%-6s %-28s %s (_watermill_delayed_until=%s)\n", at.Round(time.Millisecond), payload, status,
			msg.Metadata.Get(delay.DelayedUntilKey))
		handled.Done(payload)
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}

	// 1. delay.Message with delay.For: the Publisher sees the metadata.
	inOneSecond := newReminder("in 1s (delay.For)")
	mu.Lock()
	notBefore[string(inOneSecond.Payload)] = time.Now().Add(time.Second)
	mu.Unlock()
	delay.Message(inOneSecond, delay.For(time.Second))

	// 2. delay.Until: an absolute time.
	until := time.Now().Add(2 * time.Second)
	inTwoSeconds := newReminder("in 2s (delay.Until)")
	delay.Message(inTwoSeconds, delay.Until(until))
	mu.Lock()
	notBefore[string(inTwoSeconds.Payload)] = until.Truncate(time.Second) // Until keeps whole seconds
	mu.Unlock()

	now := newReminder("now")
	flaky := newReminder("flaky")
	if err := publisher.Publish(topic, now, inOneSecond, inTwoSeconds, flaky); err != nil {
		return fmt.Errorf("publish: %w", err)
	}

	// 3. delay.WithContext through delay.NewPublisher, which turns the
	// context's delay into metadata.
	delayedPublisher, err := delay.NewPublisher(publisher, delay.PublisherConfig{AllowNoDelay: true})
	if err != nil {
		return err
	}
	viaContext := newReminder("in 1.5s (delay.WithContext)")
	mu.Lock()
	notBefore[string(viaContext.Payload)] = time.Now().Add(1500 * time.Millisecond)
	mu.Unlock()
	viaContext.SetContext(delay.WithContext(context.Background(), delay.For(1500*time.Millisecond)))
	if err := delayedPublisher.Publish(topic, viaContext); err != nil {
		return fmt.Errorf("publish: %w", err)
	}

	waiting, err := client.ZCard(ctx, millrace.DelayedKey(topic)).Result()
	if err != nil {
		return err
	}
	fmt.Printf("published 5 reminders; %d wait in the sorted set %s\n", waiting, millrace.DelayedKey(topic))

	if err := exampleutil.Wait(30*time.Second, routerDone, handled); err != nil {
		return err
	}
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
	mu.Lock()
	defer mu.Unlock()
	if len(early) > 0 {
		return fmt.Errorf("delivered early: %v", early)
	}
	fmt.Println("all 5 reminders handled, none early")
	return nil
}

func newReminder(text string) *message.Message {
	return message.NewMessage(watermill.NewUUID(), []byte(text))
}
