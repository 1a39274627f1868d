package millrace

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// Subscriber reads messages from Redis streams, in a consumer group or, with
// no group, in broadcast mode. See [SubscriberConfig] for the semantics.
//
// Every Subscribe call starts one subscription with its own output channel,
// closed when the subscription ends: when Subscribe's context is cancelled
// or when the Subscriber is closed.
type Subscriber struct {
	client  redis.UniversalClient
	config  SubscriberConfig
	logger  watermill.LoggerAdapter
	version versionCheck

	token   string   // this Subscriber's mark on the consumer names it holds
	wakeups *wakeups // the client's, acquired with the first subscription that moves delayed messages
	// news is the client's news waiter, acquired with the first
	// subscription; nil on a client of several nodes (newsTried says so).
	news      *newsWaiter
	newsTried bool

	mu     sync.Mutex // guards closed, consumers, names and adding to running
	closed bool
	// consumers are the consumer names that running subscriptions read
	// topics as, by stream and name: what those subscriptions share.
	consumers map[consumerKey]*consumerShare
	names     map[string]int // running subscriptions per consumer lease key
	closing   chan struct{}
	shut      chan struct{} // closed once the first Close has finished
	running   sync.WaitGroup
}

type consumerKey struct{ stream, consumer string }

// consumerShare is what the subscriptions of one Subscriber that read a
// topic as the same consumer share: the entries they hold, and the signal
// that the first of them has read the consumer's own pending entries.
type consumerShare struct {
	held           *heldSet
	ownPendingRead <-chan struct{}
	subscriptions  int
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber returns a Subscriber over client. The client is borrowed:
// Close does not close it. A nil logger logs nothing.
//
// On a standalone or Sentinel client, every Subscriber over the client
// shares one connection waiting for new entries of all their topics. On
// Cluster every subscription keeps one connection in a blocking read: size
// the client's pool for one per subscription plus a few.
func NewSubscriber(client redis.UniversalClient, config SubscriberConfig, logger watermill.LoggerAdapter) (*Subscriber, error) {
	if client == nil {
		return nil, ErrNilClient
	}
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid subscriber config: %w", err)
	}
	if config.ConsumerGroup != "" && config.Consumer == "" {
		config.Consumer = generatedConsumerName()
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Subscriber{
		client:    client,
		config:    config,
		logger:    logger,
		token:     watermill.NewUUID(),
		consumers: map[consumerKey]*consumerShare{},
		names:     map[string]int{},
		closing:   make(chan struct{}),
		shut:      make(chan struct{}),
	}, nil
}

// generatedConsumerName is unique and says where the consumer runs.
func generatedConsumerName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), watermill.NewShortUUID())
}

// Consumer is the name this subscriber uses in its consumer group.
func (s *Subscriber) Consumer() string { return s.config.Consumer }

// SubscribeInitialize creates the consumer group of topic (and the stream,
// if missing) so that messages published from now on are kept for it.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if err := s.usable(topic); err != nil {
		return err
	}
	ctx := context.Background()
	if err := s.version.check(ctx, s.client, streamKey(topic)); err != nil {
		return err
	}
	if s.config.ConsumerGroup == "" {
		return nil
	}
	return createGroup(ctx, s.client, streamKey(topic), s.config.ConsumerGroup, s.config.NewGroupStartID)
}

// Subscribe starts a subscription to topic. With a consumer group, the group
// exists when Subscribe returns; in broadcast mode, every entry added after
// Subscribe returns is delivered.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.usable(topic); err != nil {
		return nil, err
	}
	if err := s.version.check(ctx, s.client, streamKey(topic)); err != nil {
		return nil, err
	}
	consumer, lease, err := s.claimConsumer(ctx, topic)
	if err != nil {
		return nil, err
	}
	start, err := prepareStart(ctx, s.client, topic, consumer, s.config, s.logger)
	if err != nil {
		s.unclaimNow(lease, false)
		return nil, err
	}
	p := subscriptionParams{
		client:   s.client,
		config:   s.config,
		logger:   s.logger,
		topic:    topic,
		consumer: consumer,
		lease:    lease,
		values:   context.WithoutCancel(ctx),
		start:    start,
		news:     s.waitForNews(),
	}
	if !s.config.NoDelayedMover {
		p.wakeups = s.listenWakeups()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.unclaimNow(lease, true)
		return nil, ErrSubscriberClosed
	}
	key := consumerKey{stream: streamKey(topic), consumer: consumer}
	share := s.consumers[key]
	if s.config.ConsumerGroup != "" {
		if share == nil {
			share = &consumerShare{held: newHeldSet()}
			s.consumers[key] = share
		}
		p.held, p.sibling = share.held, share.ownPendingRead
		share.subscriptions++
	}
	sub := newSubscription(p)
	if share != nil && share.ownPendingRead == nil {
		share.ownPendingRead = sub.reader.ownPendingRead
	}
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		final, cancel := sub.run(ctx, s.closing)
		defer cancel()
		s.mu.Lock()
		defer s.mu.Unlock()
		if share != nil {
			if share.subscriptions--; share.subscriptions == 0 {
				delete(s.consumers, key)
			}
		}
		s.unclaim(final, lease, true)
	}()
	return sub.out, nil
}

// listenWakeups returns the client's listener for announcements of
// delayed messages, acquired at the first call; nil once closed.
func (s *Subscriber) listenWakeups() *wakeups {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wakeups == nil && !s.closed {
		s.wakeups = acquireWakeups(s.client, s.logger)
	}
	return s.wakeups
}

// waitForNews returns the client's news waiter, nil on a client of
// several nodes or once closed.
func (s *Subscriber) waitForNews() *newsWaiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.newsTried && !s.closed {
		s.newsTried = true
		s.news = acquireNewsWaiter(s.client, s.config.BlockTime, s.logger)
	}
	return s.news
}

// unclaim ends one claim on a consumer name (counted in s.names from
// before its take) and gives the name up unless another claim of this
// Subscriber holds it. locked says whether s.mu is held.
func (s *Subscriber) unclaim(ctx context.Context, lease *consumerLease, locked bool) {
	if lease == nil {
		return
	}
	defer lease.done(ctx)
	if !locked {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	if s.names[lease.key]--; s.names[lease.key] > 0 {
		return
	}
	delete(s.names, lease.key)
	if err := lease.release(ctx); err != nil {
		s.logger.Error("Cannot release the consumer name; the client's holder gives it up once Redis is back, "+
			"or it is free once the holder key expires (ConsumerLease)", err,
			watermill.LogFields{"consumer": s.config.Consumer, "consumer_group": s.config.ConsumerGroup})
	}
}

// unclaimNow is unclaim for a Subscribe that fails: it tries for a second
// at most.
func (s *Subscriber) unclaimNow(lease *consumerLease, locked bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.unclaim(ctx, lease, locked)
}

func (s *Subscriber) usable(topic string) error {
	if topic == "" {
		return ErrEmptyTopic
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrSubscriberClosed
	}
	return nil
}

// Close ends every subscription. It stops handing out messages, waits up to
// CloseTimeout for the messages in handlers to be acknowledged, flushes the
// acknowledgements, and returns after every output channel is closed.
// Messages not acknowledged by then stay pending and are redelivered. Close
// is idempotent, safe to call concurrently (every call returns once the
// subscriber is closed) and does not close the Redis client.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	first := !s.closed
	if first {
		s.closed = true
		close(s.closing)
	}
	s.mu.Unlock()

	if !first {
		// Every call waits, so that a Close racing the Router's own Close
		// of this subscriber still returns only after the final XACK.
		<-s.shut
		return nil
	}
	defer close(s.shut)
	// The client's shared parts are released while the subscriptions end:
	// a wait for the news waiter's XREAD to end overlaps theirs.
	s.mu.Lock()
	w, news := s.wakeups, s.news
	s.mu.Unlock()
	var released sync.WaitGroup
	released.Go(func() {
		if w != nil {
			releaseWakeups(s.client)
		}
		if news != nil {
			releaseNewsWaiter(s.client)
		}
	})
	s.running.Wait()
	released.Wait()
	s.logger.Debug("Subscriber closed", watermill.LogFields{"consumer": s.config.Consumer})
	return nil
}
