package millrace

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Partitions split one hot topic over several streams, so that it can grow
// past one Redis Cluster node (one stream lives in one slot of one master).
//
// Partitioning is opt-in per topic: [PartitionConfig.Topics] lists the
// partitioned topics and their number of partitions N. Partition i of topic
// "orders" is the ordinary topic "{orders#i}" (see [PartitionTopics]): its own
// stream with its own hash tag, so the partitions hash to different slots and
// Cluster spreads them over its masters, while each partition's dead-letter
// stream shares its slot.
//
// A [PartitionedPublisher] sends each message to the partition of its
// partition key (metadata [MetadataPartitionKey] by default, see
// [PartitionOf]); a [PartitionedSubscriber] subscribes to every partition
// with the wrapped subscriber, in one consumer group, and merges them into
// one channel. Messages of one key go to one partition, and a subscription
// with MaxInFlight 1 hands out a partition's messages one at a time, in
// stream order: per-key order holds as long as each partition is consumed by
// one subscriber at a time. To share the work between several consumers and
// keep per-key order, give each consumer a disjoint set of partitions
// ([PartitionConfig.Assigned]); consumers that all subscribe to every
// partition share each partition's entries and trade order for availability,
// as they do on an unpartitioned topic.
//
// Topics not listed in PartitionConfig.Topics pass through both wrappers
// unchanged. Changing N moves keys to other partitions: messages of one key
// published before and after the change may be handled out of order, so
// drain the topic (or start a new one) to change N.

// MetadataPartitionKey is the default metadata key of a message's partition
// key ([PartitionConfig.KeyMetadata]).
const MetadataPartitionKey = "partition_key"

// PartitionConfig says which topics are partitioned and how messages are
// assigned to partitions. Publishers and subscribers of a topic must agree on
// Topics and KeyMetadata.
type PartitionConfig struct {
	// Topics maps each partitioned topic to its number of partitions (at
	// least 1). Topics not listed are published and subscribed as they are.
	Topics map[string]int
	// KeyMetadata is the metadata key holding a message's partition key:
	// messages with the same key go to the same partition, in the order they
	// were published. A message without a key goes to the partition of its
	// UUID (spread evenly, no order). Default: MetadataPartitionKey.
	KeyMetadata string
	// Assigned, for a subscriber, picks the partitions of a topic it
	// consumes; nil means all of them. Give each consumer of a group a
	// disjoint set (e.g. partition%consumers == index) to keep per-key order
	// with several consumers; every partition must be assigned to some
	// consumer, or its messages wait. Publishers ignore it.
	Assigned func(topic string, partition int) bool
}

func (c *PartitionConfig) setDefaults() {
	if c.KeyMetadata == "" {
		c.KeyMetadata = MetadataPartitionKey
	}
}

// Validate reports every invalid topic. It does not change c.
func (c PartitionConfig) Validate() error {
	var errs []error
	for topic, n := range c.Topics {
		if _, err := PartitionTopics(topic, n); err != nil {
			errs = append(errs, fmt.Errorf("Topics[%q]: %w", topic, err))
		}
	}
	return errors.Join(errs...)
}

// partitionTopics returns the partition topics of every partitioned topic.
func (c PartitionConfig) partitionTopics() map[string][]string {
	topics := make(map[string][]string, len(c.Topics))
	for topic, n := range c.Topics {
		topics[topic], _ = PartitionTopics(topic, n) // validated
	}
	return topics
}

// PartitionTopics returns the topics of the n partitions of topic:
// "{topic#0}" to "{topic#n-1}". Each is an ordinary topic whose stream key is
// a Redis Cluster hash tag of its own, so the partitions hash to different
// slots (and, with enough of them, to different masters), and each keeps its
// auxiliary keys (dead letters) in its own slot.
//
// topic must not contain '}': Redis would end the hash tag there, and every
// partition would land in the same slot.
func PartitionTopics(topic string, n int) ([]string, error) {
	if topic == "" {
		return nil, ErrEmptyTopic
	}
	if n < 1 {
		return nil, fmt.Errorf("a partitioned topic needs at least 1 partition, got %d", n)
	}
	if strings.ContainsRune(topic, '}') {
		return nil, fmt.Errorf("topic %q contains '}': its partitions would share one Cluster hash tag", topic)
	}
	topics := make([]string, n)
	for i := range topics {
		topics[i] = "{" + topic + "#" + strconv.Itoa(i) + "}"
	}
	return topics, nil
}

// PartitionOf returns the partition, 0 to n-1, of a partition key: the
// 32-bit FNV-1a hash of key, modulo n. Producers written in other languages
// compute the same to share partitioned topics. It panics if n < 1.
func PartitionOf(key string, n int) int {
	if n < 1 {
		panic("millrace: PartitionOf needs n >= 1")
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// PartitionedPublisher publishes the messages of partitioned topics to their
// partitions and the others unchanged. It implements message.Publisher.
type PartitionedPublisher struct {
	pub         message.Publisher
	keyMetadata string
	topics      map[string][]string
}

var _ message.Publisher = (*PartitionedPublisher)(nil)

// NewPartitionedPublisher wraps pub (usually a *Publisher). Close closes pub.
func NewPartitionedPublisher(pub message.Publisher, config PartitionConfig) (*PartitionedPublisher, error) {
	if pub == nil {
		return nil, errors.New("millrace: publisher is nil")
	}
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid partition config: %w", err)
	}
	return &PartitionedPublisher{pub: pub, keyMetadata: config.KeyMetadata, topics: config.partitionTopics()}, nil
}

// Publish sends each message of a partitioned topic to the partition of its
// key, keeping the order of the messages of each partition (so of each key);
// the partitions of one call are published concurrently. On failure some
// partitions may have their messages and others not; the error says which
// failed.
func (p *PartitionedPublisher) Publish(topic string, msgs ...*message.Message) error {
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
		part := PartitionOf(key, len(parts))
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
func (p *PartitionedPublisher) Close() error { return p.pub.Close() }

// PartitionedSubscriber subscribes to every assigned partition of a
// partitioned topic with the wrapped subscriber and merges them into one
// channel; other topics pass through. It implements message.Subscriber and
// message.SubscribeInitializer.
type PartitionedSubscriber struct {
	sub      message.Subscriber
	assigned func(topic string, partition int) bool
	topics   map[string][]string

	mu      sync.Mutex // guards closed and adding to running
	closed  bool
	closing chan struct{}
	running sync.WaitGroup
}

var (
	_ message.Subscriber           = (*PartitionedSubscriber)(nil)
	_ message.SubscribeInitializer = (*PartitionedSubscriber)(nil)
)

// NewPartitionedSubscriber wraps sub (usually a *Subscriber with a
// ConsumerGroup and MaxInFlight 1). Close closes sub.
func NewPartitionedSubscriber(sub message.Subscriber, config PartitionConfig) (*PartitionedSubscriber, error) {
	if sub == nil {
		return nil, errors.New("millrace: subscriber is nil")
	}
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid partition config: %w", err)
	}
	return &PartitionedSubscriber{
		sub:      sub,
		assigned: config.Assigned,
		topics:   config.partitionTopics(),
		closing:  make(chan struct{}),
	}, nil
}

// assignedTopics returns the partition topics of topic this subscriber
// consumes, and whether topic is partitioned.
func (s *PartitionedSubscriber) assignedTopics(topic string) ([]string, bool) {
	parts, ok := s.topics[topic]
	if !ok || s.assigned == nil {
		return parts, ok
	}
	var mine []string
	for i, pt := range parts {
		if s.assigned(topic, i) {
			mine = append(mine, pt)
		}
	}
	return mine, true
}

// SubscribeInitialize initializes every assigned partition of a partitioned
// topic (with a *Subscriber: creates its consumer group), or topic itself.
func (s *PartitionedSubscriber) SubscribeInitialize(topic string) error {
	init, ok := s.sub.(message.SubscribeInitializer)
	if !ok {
		return nil
	}
	parts, partitioned := s.assignedTopics(topic)
	if !partitioned {
		return init.SubscribeInitialize(topic)
	}
	for _, pt := range parts {
		if err := init.SubscribeInitialize(pt); err != nil {
			return fmt.Errorf("partition %s: %w", pt, err)
		}
	}
	return nil
}

// Subscribe subscribes to every assigned partition of a partitioned topic
// and returns one channel carrying the messages of all of them; it is closed
// once every partition's subscription has ended (ctx cancelled or Close). A
// topic that is not partitioned is subscribed as it is.
func (s *PartitionedSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	parts, partitioned := s.assignedTopics(topic)
	if !partitioned {
		return s.sub.Subscribe(ctx, topic)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("millrace: no partition of topic %s is assigned to this subscriber", topic)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSubscriberClosed
	}
	s.running.Add(1)
	s.mu.Unlock()

	subCtx, cancel := context.WithCancel(ctx)
	ins := make([]<-chan *message.Message, len(parts))
	for i, pt := range parts {
		ch, err := s.sub.Subscribe(subCtx, pt)
		if err != nil {
			cancel() // ends the partitions subscribed so far
			s.running.Done()
			return nil, fmt.Errorf("partition %s: %w", pt, err)
		}
		ins[i] = ch
	}
	out := make(chan *message.Message)
	go func() {
		defer s.running.Done()
		defer cancel()
		s.merge(subCtx, ins, out)
	}()
	return out, nil
}

// merge forwards the messages of ins to out until every in is closed, then
// closes out; it is the only goroutine that sends on or closes out. Once the
// subscription stops (ctx done or Close), a message taken from a partition
// but not handed out is nacked, so its partition's subscription does not wait
// for it; it stays pending in Redis and is redelivered.
func (s *PartitionedSubscriber) merge(ctx context.Context, ins []<-chan *message.Message, out chan<- *message.Message) {
	defer close(out)
	merged := make(chan *message.Message)
	var forwarders sync.WaitGroup
	for _, in := range ins {
		forwarders.Add(1)
		go func() {
			defer forwarders.Done()
			for msg := range in {
				select {
				case merged <- msg:
				case <-ctx.Done():
					msg.Nack()
				case <-s.closing:
					msg.Nack()
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		forwarders.Wait()
		close(done)
	}()
	for {
		select {
		case msg := <-merged:
			select {
			case out <- msg:
			case <-ctx.Done():
				msg.Nack()
			case <-s.closing:
				msg.Nack()
			}
		case <-done:
			return
		}
	}
}

// Close stops handing out messages, closes the wrapped subscriber (which
// ends every partition's subscription) and returns once every merged channel
// is closed. It is idempotent.
func (s *PartitionedSubscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	err := s.sub.Close()
	s.running.Wait()
	return err
}
