package harness

import (
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
)

// newMillrace returns Millrace with its default configuration: retry-safe
// publishing, each pipeline's messages of a topic added by one script that
// records the producer's sequence number.
func newMillrace() *watermillImpl {
	return &watermillImpl{
		name: Millrace,
		newPublisher: func(c redis.UniversalClient) (message.Publisher, error) {
			return millrace.NewPublisher(c, millrace.PublisherConfig{}, watermill.NopLogger{})
		},
		newSubscriber: func(c redis.UniversalClient, group string) (message.Subscriber, error) {
			return millrace.NewSubscriber(c, millrace.SubscriberConfig{ConsumerGroup: group}, watermill.NopLogger{})
		},
		marshal: millrace.DefaultMarshaler{}.Marshal,
	}
}

// newMillraceIdempotent is Millrace publishing with a 10-minute
// Idempotency window.
func newMillraceIdempotent() *watermillImpl {
	w := newMillrace()
	w.name = MillraceIdempotent
	w.newPublisher = func(c redis.UniversalClient) (message.Publisher, error) {
		return millrace.NewPublisher(c, millrace.PublisherConfig{
			Idempotency: millrace.Idempotency{Window: 10 * time.Minute},
		}, watermill.NopLogger{})
	}
	return w
}

// newMillracePlain is Millrace publishing with PlainXAdd: one plain XADD
// per message, as before retry-safe publishing became the default.
func newMillracePlain() *watermillImpl {
	w := newMillrace()
	w.name = MillracePlain
	w.newPublisher = func(c redis.UniversalClient) (message.Publisher, error) {
		return millrace.NewPublisher(c, millrace.PublisherConfig{PlainXAdd: true}, watermill.NopLogger{})
	}
	return w
}
