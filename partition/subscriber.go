package partition

import (
	"context"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Subscriber subscribes to every assigned partition of a partitioned topic
// with the wrapped subscriber and merges them into one channel; other topics
// pass through.
type Subscriber struct {
	sub      message.Subscriber
	assigned func(topic string, partition int) bool
	topics   map[string][]string

	mu      sync.Mutex // guards closed and adding to running
	closed  bool
	closing chan struct{}  // closed when Close starts: stop handing out messages
	done    chan struct{}  // closed when the first Close has finished
	running sync.WaitGroup // one per merged subscription
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber wraps sub (usually a *millrace.Subscriber with a
// ConsumerGroup and MaxInFlight 1). Close closes sub.
func NewSubscriber(sub message.Subscriber, config Config) (*Subscriber, error) {
	if sub == nil {
		return nil, ErrNilSubscriber
	}
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid partition config: %w", err)
	}
	return &Subscriber{
		sub:      sub,
		assigned: config.Assigned,
		topics:   config.partitionTopics(),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// assignedTopics returns the partition topics of topic this subscriber
// consumes, and whether topic is partitioned.
func (s *Subscriber) assignedTopics(topic string) ([]string, bool) {
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
// topic (with a *millrace.Subscriber: creates its consumer group), or topic
// itself. It does nothing if the wrapped subscriber is not a
// message.SubscribeInitializer.
func (s *Subscriber) SubscribeInitialize(topic string) error {
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
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	parts, partitioned := s.assignedTopics(topic)
	if !partitioned {
		return s.sub.Subscribe(ctx, topic)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("topic %s: %w", topic, ErrNoneAssigned)
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
func (s *Subscriber) merge(ctx context.Context, ins []<-chan *message.Message, out chan<- *message.Message) {
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
// is closed. It is idempotent, and safe to call concurrently: every call
// returns only after the first has finished, and only the first returns the
// wrapped subscriber's error.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()

	err := s.sub.Close()
	s.running.Wait()
	close(s.done)
	return err
}
