package harness

import (
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// newPeer returns watermill-redisstream with its default configuration.
// Note that the peer's Publisher.Close and Subscriber.Close close the client
// they were given.
func newPeer() *watermillImpl {
	return &watermillImpl{
		name: Peer,
		newPublisher: func(c redis.UniversalClient) (message.Publisher, error) {
			return redisstream.NewPublisher(redisstream.PublisherConfig{Client: c}, watermill.NopLogger{})
		},
		newSubscriber: func(c redis.UniversalClient, group string) (message.Subscriber, error) {
			return redisstream.NewSubscriber(redisstream.SubscriberConfig{Client: c, ConsumerGroup: group}, watermill.NopLogger{})
		},
		marshal: redisstream.DefaultMarshallerUnmarshaller{}.Marshal,
	}
}
