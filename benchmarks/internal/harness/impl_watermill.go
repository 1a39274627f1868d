package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// watermillImpl is an implementation made of a Watermill publisher and
// subscriber: Millrace or the peer. Consumption goes through a
// message.Router, one handler (and subscriber) per consumer, whose handler
// acks, as in watermill-benchmark.
type watermillImpl struct {
	name          string
	newPublisher  func(client redis.UniversalClient) (message.Publisher, error)
	newSubscriber func(client redis.UniversalClient, group string) (message.Subscriber, error)
	marshal       func(topic string, msg *message.Message) (map[string]any, error)
}

// WatermillImpl is an implementation made of a Watermill publisher and
// subscriber, for benchmarks that drive them directly.
type WatermillImpl interface {
	Impl
	// NewPublisher returns the implementation's publisher over client,
	// configured as in the figures.
	NewPublisher(client redis.UniversalClient) (message.Publisher, error)
	// NewSubscriber returns the implementation's subscriber in group.
	NewSubscriber(client redis.UniversalClient, group string) (message.Subscriber, error)
}

// NewWatermillImpl returns Millrace (in any configuration of [PublishNames])
// or the peer.
func NewWatermillImpl(name string) (WatermillImpl, error) {
	switch name {
	case Millrace:
		return newMillrace(), nil
	case MillracePlain:
		return newMillracePlain(), nil
	case MillraceIdempotent:
		return newMillraceIdempotent(), nil
	case Peer:
		return newPeer(), nil
	}
	return nil, fmt.Errorf("%q is not a Watermill implementation", name)
}

func (w *watermillImpl) Name() string { return w.name }

func (w *watermillImpl) NewPublisher(client redis.UniversalClient) (message.Publisher, error) {
	return w.newPublisher(client)
}

func (w *watermillImpl) NewSubscriber(client redis.UniversalClient, group string) (message.Subscriber, error) {
	return w.newSubscriber(client, group)
}

func (w *watermillImpl) Batch() int { return 1 }

func (w *watermillImpl) Encode(topic string, msg *message.Message) (map[string]any, error) {
	return w.marshal(topic, msg)
}

func (w *watermillImpl) NewSender(client *redis.Client) (Sender, error) {
	pub, err := w.newPublisher(client)
	if err != nil {
		return nil, err
	}
	return publisherSender{pub}, nil
}

// publisherSender sends through a message.Publisher.
type publisherSender struct{ pub message.Publisher }

func (s publisherSender) Send(_ context.Context, topic string, msgs []*message.Message) error {
	return s.pub.Publish(topic, msgs...)
}

func (s publisherSender) Close() error { return s.pub.Close() }

// routerStartTimeout bounds how long a router may take to start, plus
// startPerHandler for each of its handlers.
const (
	routerStartTimeout = 15 * time.Second
	startPerHandler    = 20 * time.Millisecond
)

// startTimeout bounds the start of a router of n handlers.
func startTimeout(n int) time.Duration { return routerStartTimeout + time.Duration(n)*startPerHandler }

// routerCloseTimeout bounds how long a router waits for its handlers on Close.
const routerCloseTimeout = 10 * time.Second

func (w *watermillImpl) Consume(ctx context.Context, client *redis.Client, spec ConsumeSpec, handle func(int64)) (Consumer, error) {
	var handlers []routerHandler
	var subs []message.Subscriber
	fail := func(err error) (Consumer, error) {
		for _, s := range subs {
			s.Close()
		}
		return nil, err
	}
	for _, r := range spec.Readers() {
		sub, err := w.newSubscriber(client, r.Group)
		if err != nil {
			return fail(err)
		}
		subs = append(subs, sub)
		for _, topic := range r.Topics {
			handlers = append(handlers, routerHandler{topic, sub})
		}
	}
	return runRouter(ctx, handlers, handle)
}

// routerHandler is one handler of a router: a subscriber and the topic it
// reads. A subscriber may serve several handlers.
type routerHandler struct {
	topic string
	sub   message.Subscriber
}

// runRouter runs a router with one handler per entry of handlers, each of
// which acks and then calls handle, and returns once the router runs.
func runRouter(ctx context.Context, handlers []routerHandler, handle func(int64)) (Consumer, error) {
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: routerCloseTimeout}, watermill.NopLogger{})
	if err != nil {
		return nil, err
	}
	rc := &routerConsumer{router: router, ran: make(chan error, 1)}
	tracked := map[message.Subscriber]*trackedSubscriber{}
	for i, h := range handlers {
		t, ok := tracked[h.sub]
		if !ok {
			t = &trackedSubscriber{Subscriber: h.sub, closed: make(chan struct{})}
			tracked[h.sub] = t
			rc.subs = append(rc.subs, t)
		}
		router.AddConsumerHandler(fmt.Sprintf("bench_%d", i), h.topic, t, func(msg *message.Message) error {
			// As in watermill-benchmark: ack, then count.
			msg.Ack()
			handle(parseSent(msg.Metadata.Get(SentKey)))
			return nil
		})
	}
	go func() { rc.ran <- router.Run(ctx) }()
	select {
	case <-router.Running():
		return rc, nil
	case err := <-rc.ran:
		return nil, fmt.Errorf("router stopped while starting: %w", err)
	case <-time.After(startTimeout(len(handlers))):
		rc.Close()
		return nil, errors.New("router did not start within " + startTimeout(len(handlers)).String())
	}
}

// routerConsumer is a running router.
type routerConsumer struct {
	router *message.Router
	ran    chan error // Run's result
	subs   []*trackedSubscriber
}

// Close closes the router and waits, bounded, for Run to return and for
// every subscriber's Close to return. The router closes its subscribers but
// does not wait for them, and a subscriber may still be flushing
// acknowledgements when Run has returned; closing the client then would
// lose them.
func (r *routerConsumer) Close() error {
	deadline := time.After(routerCloseTimeout + 5*time.Second)
	errs := []error{r.router.Close()}
	select {
	case err := <-r.ran:
		errs = append(errs, err)
	case <-deadline:
		return errors.Join(append(errs, errors.New("router did not stop"))...)
	}
	for _, s := range r.subs {
		select {
		case <-s.closed:
		case <-deadline:
			return errors.Join(append(errs, errors.New("subscriber Close did not return"))...)
		}
	}
	return errors.Join(errs...)
}

// trackedSubscriber tells when the router's call of Close has returned.
type trackedSubscriber struct {
	message.Subscriber
	once   sync.Once
	closed chan struct{}
}

func (t *trackedSubscriber) Close() error {
	err := t.Subscriber.Close()
	t.once.Do(func() { close(t.closed) })
	return err
}
