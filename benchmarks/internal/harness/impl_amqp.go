package harness

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// Names of the AMQP implementations (Watermill's AMQP adapter on RabbitMQ),
// for cmd/brokers.
const (
	// AMQPDefault is NewDurableQueueConfig as users take it: a channel
	// opened and closed per Publish, no publisher confirms, prefetch 1.
	AMQPDefault = "amqp-default"
	// AMQPTuned is NewDurableQueueConfig with a pool of amqpTunedChannels
	// channels, publisher confirms and prefetch amqpTunedPrefetch.
	AMQPTuned = "amqp-tuned"
)

// AMQPNames lists the AMQP implementations.
var AMQPNames = []string{AMQPDefault, AMQPTuned}

// Settings of the tuned AMQP configuration.
const (
	amqpTunedChannels = 64 // as many as the most publishers of a run
	amqpTunedPrefetch = 100
)

// amqpImpl is Watermill's AMQP adapter with one durable queue per topic
// (the topic's name), each subscriber a competing consumer of it: the
// counterpart of one consumer group. It ignores the Redis clients the
// harness passes.
type amqpImpl struct {
	*watermillImpl
	config wamqp.Config
}

// NewAMQPImpl returns the AMQP implementation called name over the broker
// at uri.
func NewAMQPImpl(name, uri string) (Impl, error) {
	config := wamqp.NewDurableQueueConfig(uri)
	switch name {
	case AMQPDefault:
	case AMQPTuned:
		config.Publish.ChannelPoolSize = amqpTunedChannels
		config.Publish.ConfirmDelivery = true
		config.Consume.Qos.PrefetchCount = amqpTunedPrefetch
	default:
		return nil, fmt.Errorf("unknown AMQP implementation %q (want one of %v)", name, AMQPNames)
	}
	return &amqpImpl{
		watermillImpl: &watermillImpl{
			name: name,
			newPublisher: func(redis.UniversalClient) (message.Publisher, error) {
				return wamqp.NewPublisher(config, watermill.NopLogger{})
			},
			newSubscriber: func(redis.UniversalClient, string) (message.Subscriber, error) {
				return wamqp.NewSubscriber(config, watermill.NopLogger{})
			},
			marshal: func(string, *message.Message) (map[string]any, error) {
				return nil, fmt.Errorf("AMQP messages are no stream entries: %w", ErrNotApplicable)
			},
		},
		config: config,
	}, nil
}

// prepareTopic declares topic's queue as a subscriber would, so that
// messages published before any subscriber are kept, not dropped.
func (a *amqpImpl) prepareTopic(topic string) error {
	sub, err := wamqp.NewSubscriber(a.config, watermill.NopLogger{})
	if err != nil {
		return err
	}
	return errors.Join(sub.SubscribeInitialize(topic), sub.Close())
}

// prefill declares topic's queue and publishes n persistent messages into
// it, marshaled as the adapter's publisher does, on one channel with
// publisher confirms, and returns once the broker has confirmed them all.
func (a *amqpImpl) prefill(ctx context.Context, topic string, payload []byte, n int) error {
	if err := a.prepareTopic(topic); err != nil {
		return err
	}
	return a.withChannel(func(ch *amqp091.Channel) error {
		if err := ch.Confirm(false); err != nil {
			return err
		}
		confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, n))
		for range n {
			p, err := a.config.Marshaler.Marshal(newMessage(payload))
			if err != nil {
				return err
			}
			if err := ch.PublishWithContext(ctx, "", topic, false, false, p); err != nil {
				return fmt.Errorf("pre-fill %s: %w", topic, err)
			}
		}
		for range n {
			select {
			case c, ok := <-confirms:
				if !ok || !c.Ack {
					return fmt.Errorf("pre-fill %s: the broker did not confirm a message", topic)
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
}

// deleteTopic deletes topic's queue with whatever it holds.
func (a *amqpImpl) deleteTopic(_ context.Context, topic string) error {
	return a.withChannel(func(ch *amqp091.Channel) error {
		_, err := ch.QueueDelete(topic, false, false, false)
		return err
	})
}

// withChannel runs f on a channel of a connection of its own.
func (a *amqpImpl) withChannel(f func(*amqp091.Channel) error) error {
	conn, err := amqp091.Dial(a.config.Connection.AmqpURI)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	return errors.Join(f(ch), ch.Close())
}
