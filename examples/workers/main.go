// Workers shows competing consumers: several subscribers in one consumer
// group ("image_resizers") share the work of the topic "images_uploaded".
// Each message goes to one of them, so adding consumers adds throughput.
//
// Each worker is its own Subscriber with its own Consumer name, as separate
// processes would be. Prefetch is 1 so that a worker takes a new job only
// when it is free; with the default (100), the first worker to read could
// take a whole small burst at once.
//
// It publishes 30 jobs, prints which worker handled which job and how many
// each worker handled, and exits once every job is done. It fails if a job
// was not handled exactly once, or if a single worker did all the work.
//
//	go run ./examples/workers
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/workers
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
	topic   = "images_uploaded"
	group   = "image_resizers"
	workers = 3
	jobs    = 30
	// jobTime stands for the work a handler does.
	jobTime = 20 * time.Millisecond
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
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

	done := exampleutil.NewCountdown(jobs)
	var mu sync.Mutex
	perWorker := make(map[string]int)
	perJob := make(map[string]int) // message UUID -> times handled

	var subscribers []*millrace.Subscriber
	for i := 1; i <= workers; i++ {
		name := fmt.Sprintf("worker-%d", i)
		subscriber, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
			ConsumerGroup: group, // the same group for all: they compete for the messages
			Consumer:      name,  // a different consumer name for each
			Prefetch:      1,
		}, logger)
		if err != nil {
			return fmt.Errorf("new subscriber: %w", err)
		}
		defer subscriber.Close()
		subscribers = append(subscribers, subscriber)

		router.AddConsumerHandler(name, topic, subscriber, func(msg *message.Message) error {
			time.Sleep(jobTime)
			mu.Lock()
			perJob[msg.UUID]++
			mu.Unlock()
			if done.Done(msg.UUID) {
				mu.Lock()
				perWorker[name]++
				mu.Unlock()
			}
			fmt.Printf("%s handled %s\n", name, msg.Payload)
			return nil
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}

	// One Publish call, one pipeline of XADDs.
	msgs := make([]*message.Message, jobs)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), fmt.Appendf(nil, `{"job":%d}`, i+1))
	}
	fmt.Printf("publish %d jobs\n", jobs)
	if err := publisher.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("publish: %w", err)
	}

	if err := exampleutil.Wait(60*time.Second, routerDone, done); err != nil {
		return err
	}

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

	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("all %d jobs done:\n", jobs)
	busy := 0
	for i := 1; i <= workers; i++ {
		name := fmt.Sprintf("worker-%d", i)
		fmt.Printf("  %s: %d jobs\n", name, perWorker[name])
		if perWorker[name] > 0 {
			busy++
		}
	}

	// Each job went to one worker of the group, once, and the group shared
	// the work. (Delivery is at-least-once: a job is handled again only
	// after a Nack or a crash, and this run has neither.)
	for _, msg := range msgs {
		if n := perJob[msg.UUID]; n != 1 {
			return fmt.Errorf("job %s handled %d times, want 1", msg.Payload, n)
		}
	}
	if busy < 2 {
		return fmt.Errorf("only %d of %d workers handled jobs", busy, workers)
	}
	pending, err := client.XPending(context.Background(), topic, group).Result()
	if err != nil {
		return fmt.Errorf("xpending: %w", err)
	}
	if pending.Count != 0 {
		return fmt.Errorf("%d entries still pending in %s", pending.Count, group)
	}
	return nil
}
