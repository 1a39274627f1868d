package harness

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// directImpl is Millrace consumed from the subscription channels directly,
// with no Router: one goroutine per subscription acks each message and
// counts it. Publishing is Millrace's.
type directImpl struct{ *watermillImpl }

func newMillraceDirect() *directImpl {
	w := newMillrace()
	w.name = MillraceDirect
	return &directImpl{w}
}

func (d *directImpl) Consume(ctx context.Context, client *redis.Client, spec ConsumeSpec, handle func(int64)) (Consumer, error) {
	ctx, cancel := context.WithCancel(ctx)
	c := &directConsumer{cancel: cancel}
	for _, r := range spec.Readers() {
		if err := c.subscribe(ctx, d.newSubscriber, client, r, handle); err != nil {
			return nil, errors.Join(err, c.Close())
		}
	}
	return c, nil
}

// directConsumer is the subscribers and their reading goroutines.
type directConsumer struct {
	cancel context.CancelFunc
	subs   []message.Subscriber
	wg     sync.WaitGroup
}

// subscribe starts a subscriber of r and one reading goroutine per topic.
func (c *directConsumer) subscribe(ctx context.Context, newSubscriber func(redis.UniversalClient, string) (message.Subscriber, error), client *redis.Client, r Reader, handle func(int64)) error {
	sub, err := newSubscriber(client, r.Group)
	if err != nil {
		return err
	}
	c.subs = append(c.subs, sub)
	for _, topic := range r.Topics {
		ch, err := sub.Subscribe(ctx, topic)
		if err != nil {
			return err
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for msg := range ch {
				msg.Ack()
				handle(parseSent(msg.Metadata.Get(SentKey)))
			}
		}()
	}
	return nil
}

// Close closes the subscribers, which flush their acks and close their
// channels, and waits (bounded) for the reading goroutines.
func (c *directConsumer) Close() error {
	c.cancel()
	var errs []error
	for _, s := range c.subs {
		errs = append(errs, s.Close())
	}
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(routerCloseTimeout):
		errs = append(errs, errors.New("subscription channels were not closed"))
	}
	return errors.Join(errs...)
}
