package partition

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
)

// BalancedSubscriber subscribes to a partitioned topic as a member of its
// consumer group: the live members share the partitions evenly, and move
// them when a member joins, leaves or dies. See the package documentation.
// Topics that are not partitioned are subscribed as they are.
type BalancedSubscriber struct {
	client redis.UniversalClient
	config BalancedConfig
	logger watermill.LoggerAdapter
	topics map[string][]string
	// plain subscribes the topics that are not partitioned and creates the
	// group on every partition.
	plain *millrace.Subscriber

	mu      sync.Mutex // guards closed, members and adding to running
	closed  bool
	members map[string]int // subscriptions per topic, to name their members
	closing chan struct{}  // closed when Close starts
	done    chan struct{}  // closed when the first Close has finished
	running sync.WaitGroup // one per member
}

var (
	_ message.Subscriber           = (*BalancedSubscriber)(nil)
	_ message.SubscribeInitializer = (*BalancedSubscriber)(nil)
)

// NewBalancedSubscriber returns a BalancedSubscriber over client. The
// client is borrowed: Close does not close it. A nil logger logs nothing.
//
// Size the client's pool for one connection per owned partition plus a
// few: every partition's subscription keeps one in a blocking read.
func NewBalancedSubscriber(client redis.UniversalClient, config BalancedConfig, logger watermill.LoggerAdapter) (*BalancedSubscriber, error) {
	if client == nil {
		return nil, millrace.ErrNilClient
	}
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid balanced subscriber config: %w", err)
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	plain, err := millrace.NewSubscriber(client, config.Subscriber, logger)
	if err != nil {
		return nil, err
	}
	return &BalancedSubscriber{
		client:  client,
		config:  config,
		logger:  logger,
		topics:  Config{Topics: config.Topics}.partitionTopics(),
		plain:   plain,
		members: map[string]int{},
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// Member is the name of this subscriber's first member of each topic.
func (s *BalancedSubscriber) Member() string { return s.config.Member }

// SubscribeInitialize creates the consumer group on every partition of a
// partitioned topic (and the partitions' streams), or on topic itself.
func (s *BalancedSubscriber) SubscribeInitialize(topic string) error {
	parts, ok := s.topics[topic]
	if !ok {
		return s.plain.SubscribeInitialize(topic)
	}
	for _, pt := range parts {
		if err := s.plain.SubscribeInitialize(pt); err != nil {
			return fmt.Errorf("partition %s: %w", pt, err)
		}
	}
	return nil
}

// Subscribe joins the group on a partitioned topic and returns one channel
// carrying the messages of the partitions this member owns, as ownership
// moves. The group exists on every partition when it returns. The channel
// is closed once the member has handed every partition over and left
// (ctx cancelled, or Close). A topic that is not partitioned is subscribed
// as it is.
func (s *BalancedSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	parts, ok := s.topics[topic]
	if !ok {
		return s.plain.Subscribe(ctx, topic)
	}
	if err := s.SubscribeInitialize(topic); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSubscriberClosed
	}
	s.members[topic]++
	name := s.config.Member
	if n := s.members[topic]; n > 1 {
		name += "-" + strconv.Itoa(n)
	}
	m := newMember(s, name, topic, parts, context.WithoutCancel(ctx))
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		m.run(ctx, s.closing)
	}()
	return m.out, nil
}

// Close makes every member hand its partitions over and leave: each
// partition's subscription stops handing out messages, waits up to
// Subscriber.CloseTimeout for the handlers to acknowledge what they hold
// and releases the rest, and its lease is released, so the other members
// take it over at once. Close returns once every channel is closed. It is
// idempotent and safe to call concurrently: every call returns only after
// the first has finished.
func (s *BalancedSubscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()

	s.running.Wait()
	err := s.plain.Close()
	close(s.done)
	return err
}
