package partition

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Publisher publishes the messages of partitioned topics to their partitions
// and the others unchanged.
type Publisher struct {
	pub         message.Publisher
	keyMetadata string
	topics      map[string][]string
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher wraps pub (usually a *millrace.Publisher). Close closes pub.
func NewPublisher(pub message.Publisher, config Config) (*Publisher, error) {
	if pub == nil {
		return nil, ErrNilPublisher
	}
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid partition config: %w", err)
	}
	return &Publisher{pub: pub, keyMetadata: config.KeyMetadata, topics: config.partitionTopics()}, nil
}

// Publish sends each message of a partitioned topic to the partition of its
// key, keeping the order of the messages of each partition (so of each key);
// the partitions of one call are published concurrently. On failure some
// partitions may have their messages and others not; the error says which
// failed.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	parts, ok := p.topics[topic]
	if !ok {
		return p.pub.Publish(topic, msgs...)
	}
	groups := make(map[int][]*message.Message)
	var order []int
	for i, msg := range msgs {
		if msg == nil {
			return fmt.Errorf("message %d of %d: %w", i, len(msgs), ErrNilMessage)
		}
		key := msg.Metadata.Get(p.keyMetadata)
		if key == "" {
			key = msg.UUID
		}
		part := Of(key, len(parts))
		if _, seen := groups[part]; !seen {
			order = append(order, part)
		}
		groups[part] = append(groups[part], msg)
	}
	if len(order) <= 1 {
		if len(order) == 0 {
			return p.pub.Publish(parts[0])
		}
		return p.pub.Publish(parts[order[0]], groups[order[0]]...)
	}
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, part := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.pub.Publish(parts[part], groups[part]...); err != nil {
				errs[i] = fmt.Errorf("partition %s: %w", parts[part], err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close closes the wrapped publisher.
func (p *Publisher) Close() error { return p.pub.Close() }
