package millrace

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/internal/rediserr"
)

var (
	// ErrPublisherClosed is returned by [Publisher.Publish] after [Publisher.Close].
	ErrPublisherClosed = errors.New("millrace: publisher is closed")

	// ErrSubscriberClosed is returned by [Subscriber.Subscribe] and
	// [Subscriber.SubscribeInitialize] after [Subscriber.Close].
	ErrSubscriberClosed = errors.New("millrace: subscriber is closed")

	// ErrEmptyTopic is returned when a topic name is empty.
	ErrEmptyTopic = errors.New("millrace: topic is empty")

	// ErrNilMessage is returned by [Publisher.Publish] when a message is nil.
	ErrNilMessage = errors.New("millrace: message is nil")

	// ErrNilClient is returned by the constructors when the Redis client is nil.
	ErrNilClient = errors.New("millrace: redis client is nil")

	// ErrUnsupportedRedis is returned when the server is older than Redis 6.2,
	// the first version with XAUTOCLAIM.
	ErrUnsupportedRedis = errors.New("millrace: redis 6.2 or newer is required")

	// ErrMalformedEntry wraps the reason a stream entry could not be decoded.
	// Such an entry is moved to the dead-letter stream, never delivered.
	ErrMalformedEntry = errors.New("millrace: malformed stream entry")

	// ErrRedisFull wraps a write Redis refused because it reached
	// maxmemory (an OOM reply: maxmemory-policy noeviction, or nothing left
	// to evict). Nothing of the refused messages was added; subscriptions
	// go on reading and acknowledging, which Redis still accepts.
	ErrRedisFull = errors.New("millrace: redis is full (maxmemory reached)")

	// ErrTopicFull is returned by [Publisher.Publish] when the topic's
	// stream is at its Retention.Ceiling with Overflow RefusePublish: a
	// consumer group has not acknowledged that many entries. None of the
	// call's messages was added; publishing again succeeds once the group
	// catches up (or is deleted, if abandoned).
	ErrTopicFull = errors.New("millrace: topic is at its ceiling of unacknowledged entries")

	// ErrConsumerInUse is returned by [Subscriber.Subscribe] when another
	// live Subscriber holds the same Consumer name in the same group and
	// topic (see SubscriberConfig.ConsumerLease).
	ErrConsumerInUse = errors.New("millrace: consumer name is in use by another live subscriber")

	// ErrOutcomeUnknown is returned by [Publisher.Publish] when the
	// connection failed after the messages were sent and Publish could not
	// learn whether Redis added them: with PlainXAdd, which never sends
	// again, or once PublisherConfig.Retries resends failed too. Publishing
	// the messages again may add them twice, unless Idempotency is on.
	ErrOutcomeUnknown = errors.New("millrace: cannot tell whether redis added the messages")
)

// PartialPublishError is returned by [Publisher.Publish] with PlainXAdd
// when Redis added some messages of the call and refused the others (OOM
// part-way through a pipeline): publish Refused again, not Added. Without
// PlainXAdd the messages of a call are added by one script, all or none.
type PartialPublishError struct {
	Added   []string           // UUIDs of the messages added, in call order
	Refused []*message.Message // the messages not added
	Err     error              // the first refusal
}

func (e *PartialPublishError) Error() string {
	return fmt.Sprintf("%d of %d messages added, %d refused, the first: %v", len(e.Added), len(e.Added)+len(e.Refused), len(e.Refused), e.Err)
}

func (e *PartialPublishError) Unwrap() error { return e.Err }

// redisError adds to err the sentinel of this package that says what a
// Redis reply means, where one does.
func redisError(err error) error {
	switch {
	case rediserr.IsOOM(err):
		return fmt.Errorf("%w: %w", ErrRedisFull, err)
	case rediserr.IsTopicFull(err):
		return fmt.Errorf("%w: %w", ErrTopicFull, err)
	}
	return err
}
