// Effectively-once shows a Router handler whose outputs and the Ack of its
// input commit together (millrace.Stage), so that running the handler
// again adds nothing twice.
//
// The handler "bill" consumes orders from "{shop}.orders" and produces two
// messages per order on "{shop}.billing": an invoice and a ledger entry.
// (The topics share the hash tag {shop}: on Redis Cluster a Stage commits
// in one script only for keys of one slot.) Two workers, A and B, consume
// the orders in one group. The worker that gets the order "desk" gets
// stuck in its handler and is cut off from the group (its Subscriber is
// closed, as a process that lost its connection to Redis would stop
// renewing its hold on the order); past ClaimMinIdle the other worker takes
// the order over and bills it. Then the stuck handler finishes too. Both
// runs produced an invoice and a ledger entry and both commits succeeded,
// but only the first added them: the second found the order committed.
// "{shop}.billing" holds each output once, and the consumer of the next
// stage sees each once.
//
// It exits once every order is billed, and fails if an output is missing
// or added twice.
//
//	go run ./examples/effectively-once
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/effectively-once
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/examples/internal/exampleutil"
)

const (
	ordersTopic  = "{shop}.orders"
	billingTopic = "{shop}.billing"
	slowOrder    = "desk"
	claimMinIdle = 500 * time.Millisecond
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "effectively-once:", err)
		os.Exit(1)
	}
}

func run() error {
	client, closeClient, err := exampleutil.Redis()
	if err != nil {
		return err
	}
	defer closeClient()
	// A fresh start when REDIS_URL names a server used before.
	if err := client.Del(context.Background(), ordersTopic, billingTopic).Err(); err != nil {
		return err
	}
	logger := exampleutil.Logger()

	publisher, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new publisher: %w", err)
	}
	defer publisher.Close()

	var mu sync.Mutex
	runs := map[string][]string{} // order → the workers that ran the handler
	stuck := make(chan string, 1) // the worker stuck on the slow order
	tookOver := make(chan struct{})
	release := sync.OnceFunc(func() { close(tookOver) })
	bill := func(worker string) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			order := string(msg.Payload)
			mu.Lock()
			runs[order] = append(runs[order], worker)
			n := len(runs[order])
			mu.Unlock()
			if order == slowOrder {
				if n == 1 {
					stuck <- worker
					<-tookOver // the other worker takes the order over meanwhile
				} else {
					defer release()
				}
			}
			fmt.Printf("worker %s bills %-6s (delivery %s)\n", worker, order, msg.Metadata.Get(millrace.MetadataDeliveryCount))
			invoice := message.NewMessage(watermill.NewUUID(), []byte("invoice for "+order))
			ledger := message.NewMessage(watermill.NewUUID(), []byte("ledger entry for "+order))
			return []*message.Message{invoice, ledger}, nil
		}
	}

	// slowDone counts the runs of the slow order's handler that returned,
	// commit included.
	slowDone := &returns{order: slowOrder, want: 2, all: make(chan struct{})}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return fmt.Errorf("new router: %w", err)
	}
	workers := map[string]*millrace.Subscriber{}
	for _, worker := range []string{"A", "B"} {
		sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
			ConsumerGroup: "billing",
			Consumer:      "worker-" + worker,
			ClaimMinIdle:  claimMinIdle,
			ClaimInterval: 100 * time.Millisecond,
			CloseTimeout:  100 * time.Millisecond,
		}, logger)
		if err != nil {
			return err
		}
		defer sub.Close()
		workers[worker] = sub
		pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, logger)
		if err != nil {
			return err
		}
		defer pub.Close()
		// The Router closes a handler's publisher as soon as its
		// subscription ends, with handlers still running: the Stage commits
		// with a publisher of its own, so that the stuck handler still
		// tries to commit, as it would in a process whose connection to
		// Redis came back.
		stage, err := millrace.NewStage(sub, publisher, millrace.StageConfig{})
		if err != nil {
			return err
		}
		// The one line that makes the handler effectively once:
		// AddMiddleware(stage.Middleware).
		router.AddHandler("bill-"+worker, ordersTopic, sub, billingTopic, pub, bill(worker)).
			AddMiddleware(slowDone.count, stage.Middleware)
	}

	// The next stage: a consumer of the billing topic.
	orders := []string{"chair", slowOrder, "lamp", "shelf"}
	billed := exampleutil.NewCountdown(2 * len(orders))
	var received []string
	accountsSub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{ConsumerGroup: "accounts"}, logger)
	if err != nil {
		return err
	}
	defer accountsSub.Close()
	router.AddConsumerHandler("accounts", billingTopic, accountsSub, func(msg *message.Message) error {
		mu.Lock()
		received = append(received, string(msg.Payload))
		mu.Unlock()
		billed.Done(msg.Metadata.Get(millrace.MetadataEntryID))
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}
	for _, order := range orders {
		if err := publisher.Publish(ordersTopic, message.NewMessage(watermill.NewUUID(), []byte(order))); err != nil {
			return err
		}
	}
	select {
	case worker := <-stuck:
		fmt.Printf("worker %s is stuck on %s and cut off from the group\n", worker, slowOrder)
		if err := workers[worker].Close(); err != nil {
			return err
		}
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no worker got %q", slowOrder)
	}
	if err := exampleutil.Wait(30*time.Second, routerDone, billed); err != nil {
		return err
	}
	// The stuck run's commit finds the order committed by the other.
	select {
	case <-slowDone.all:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the handler of %q did not return twice", slowOrder)
	}
	cancel()
	if err := <-routerDone; err != nil {
		return err
	}

	fmt.Printf("handler runs: %s by %v, with the commit's results %v\n", slowOrder, runs[slowOrder], slowDone.errs)
	for _, err := range slowDone.errs {
		if err != nil {
			return fmt.Errorf("a run of %q failed: %w", slowOrder, err)
		}
	}
	return check(client, orders, runs, received)
}

// returns is a middleware that closes all once the handler of order, and
// what the middleware inside it does, returned want times.
type returns struct {
	order string
	want  int
	mu    sync.Mutex
	n     int
	errs  []error // what each run returned
	all   chan struct{}
}

func (r *returns) count(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		msgs, err := h(msg)
		if string(msg.Payload) == r.order {
			r.mu.Lock()
			r.errs = append(r.errs, err)
			if r.n++; r.n == r.want {
				close(r.all)
			}
			r.mu.Unlock()
		}
		return msgs, err
	}
}

// check verifies that the billing topic, and its consumer, hold each order's
// two outputs once, although the slow order's handler ran twice.
func check(client redis.UniversalClient, orders []string, runs map[string][]string, received []string) error {
	if n := len(runs[slowOrder]); n != 2 {
		return fmt.Errorf("the handler of %q ran %d times, want 2 (the stuck worker, then the other after the take-over)", slowOrder, n)
	}
	entries, err := client.XRange(context.Background(), billingTopic, "-", "+").Result()
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, e := range entries {
		msg, err := millrace.DefaultMarshaler{}.Unmarshal(e.Values)
		if err != nil {
			return err
		}
		counts[string(msg.Payload)]++
	}
	fmt.Printf("%s holds %d entries:\n", billingTopic, len(entries))
	var lines []string
	for payload, n := range counts {
		lines = append(lines, fmt.Sprintf("  %-24s ×%d", payload, n))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	for _, order := range orders {
		for _, out := range []string{"invoice for " + order, "ledger entry for " + order} {
			if counts[out] != 1 {
				return fmt.Errorf("%q is in %s %d times, want once", out, billingTopic, counts[out])
			}
		}
	}
	if len(entries) != 2*len(orders) || len(received) != 2*len(orders) {
		return fmt.Errorf("%d entries in %s and %d received by its consumer, want %d", len(entries), billingTopic, len(received), 2*len(orders))
	}
	return nil
}
