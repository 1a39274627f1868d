package partition

import "errors"

var (
	// ErrSubscriberClosed is returned by [Subscriber.Subscribe] for a
	// partitioned topic after [Subscriber.Close]. A topic that is not
	// partitioned gets the wrapped subscriber's own error.
	ErrSubscriberClosed = errors.New("millrace: partitioned subscriber is closed")

	// ErrNilPublisher is returned by [NewPublisher] when the wrapped
	// publisher is nil.
	ErrNilPublisher = errors.New("millrace: publisher is nil")

	// ErrNilSubscriber is returned by [NewSubscriber] when the wrapped
	// subscriber is nil.
	ErrNilSubscriber = errors.New("millrace: subscriber is nil")

	// ErrEmptyTopic is returned by [Topics] (and so by the constructors'
	// validation) when a topic name is empty.
	ErrEmptyTopic = errors.New("millrace: topic is empty")

	// ErrNilMessage is returned by [Publisher.Publish] when a message of a
	// partitioned topic is nil.
	ErrNilMessage = errors.New("millrace: message is nil")

	// ErrNoneAssigned is returned by [Subscriber.Subscribe] when
	// [Config.Assigned] assigns no partition of the topic to the subscriber.
	ErrNoneAssigned = errors.New("millrace: no partition of the topic is assigned to this subscriber")
)
