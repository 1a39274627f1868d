package millrace

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
)

// entry is a stream entry on its way to a handler.
type entry struct {
	id     string
	values map[string]interface{} // nil when the entry was deleted while pending
	// deliveries is Redis's delivery counter of the entry, this delivery
	// included; 0 when unknown.
	deliveries int64
	// nacks counts the Nacks of the entry in this subscription; it sets the
	// backoff before the next delivery.
	nacks int
	// claim marks an entry that is pending at this consumer but not read
	// for this delivery (own pending entries after a restart, entries taken
	// over from others, Nacked entries): a worker claims it (XCLAIM, which
	// counts the delivery and returns its fields) just before handing it out,
	// so entries queued behind a crash are not charged for it.
	claim bool
	// With an OrderingKey: keyed is set once key, the entry's value of
	// it ("" for none), is known; decoded is the message decoded to learn
	// it, handed out by the next delivery instead of decoding again.
	keyed   bool
	key     string
	decoded *message.Message
}

// queue hands entries from the feeders (reader, claimer, redeliverer) to
// the workers.
type queue struct {
	ch       chan *entry
	stopping <-chan struct{} // the subscription's soft end
}

// push queues e; false when the subscription is stopping.
func (q *queue) push(e *entry) bool {
	select {
	case q.ch <- e:
		return true
	case <-q.stopping:
		return false
	}
}

// subscription is one Subscribe call: a reader (and, in a group, a claimer)
// feed a queue of entries that workers hand out on out, one message at a
// time each; in a group an acker batches the acknowledgements and a leaser
// keeps the held entries from being claimed by others. The run goroutine
// owns out and closes it.
type subscription struct {
	m            *member // nil in broadcast mode
	client       redis.UniversalClient
	stream       string
	newGroup     string
	closeTimeout time.Duration
	logger       watermill.LoggerAdapter

	// soft stops taking new work; hard abandons messages still in handlers.
	soft, hard             context.Context
	cancelSoft, cancelHard context.CancelFunc

	out       chan *message.Message
	held      *heldSet // entries read and not yet acked (group only)
	reader    *reader
	workers   *workers
	orderer   *orderer // nil without an OrderingKey
	redeliver *redeliverer
	mover     *delayMover // nil when the Subscriber does not move delayed messages
	acker     *acker      // group only, like claimer and leaser
	claimer   *claimer
	leaser    *leaser
}

// newSubscription builds a subscription of topic and all its components.
// values is Subscribe's context: messages' contexts carry its values.
// consumer is the name it reads as in its group; lease, when set, holds
// that name and is renewed by the leaser.
func newSubscription(s *Subscriber, topic, consumer string, lease *consumerLease, values context.Context) *subscription {
	cfg := s.config
	soft, cancelSoft := context.WithCancel(context.Background())
	hard, cancelHard := context.WithCancel(context.Background())
	sub := &subscription{
		client:       s.client,
		stream:       streamKey(topic),
		newGroup:     cfg.NewGroupStartID,
		closeTimeout: cfg.CloseTimeout,
		logger: s.logger.With(watermill.LogFields{
			"topic":          topic,
			"consumer_group": cfg.ConsumerGroup,
			"consumer":       consumer,
		}),
		soft:       soft,
		hard:       hard,
		cancelSoft: cancelSoft,
		cancelHard: cancelHard,
		out:        make(chan *message.Message),
	}
	q := &queue{ch: make(chan *entry, cfg.Prefetch), stopping: soft.Done()}
	if cfg.ConsumerGroup != "" {
		sub.m = &member{client: s.client, stream: sub.stream, group: cfg.ConsumerGroup, consumer: consumer}
		sub.held = newHeldSet()
	}
	sub.reader = &reader{
		loop:           newLoop(soft),
		client:         s.client,
		stream:         sub.stream,
		m:              sub.m,
		newGroup:       cfg.NewGroupStartID,
		prefetch:       cfg.Prefetch,
		block:          cfg.BlockTime,
		held:           sub.held,
		queue:          q,
		logger:         sub.logger,
		retry:          newRetryBackoff(),
		log:            errorLog{logger: sub.logger},
		ownPendingRead: make(chan struct{}),
		news:           s.waitForNews(),
		short:          true,
	}
	work, redeliveries := q.ch, q
	if cfg.OrderingKey != "" {
		sub.orderer = newOrderer(soft, cfg.OrderingKey, q, cfg.MaxInFlight, cfg.Prefetch, sub.m, cfg.Unmarshaler, sub.logger)
		work = sub.orderer.ready
		redeliveries = &queue{ch: sub.orderer.back, stopping: soft.Done()}
	}
	sub.redeliver = newRedeliverer(soft, sub.m != nil, redeliveries)
	if !cfg.NoDelayedMover {
		sub.mover = &delayMover{
			loop: newLoop(soft), client: s.client, delayed: keys.Delayed(topic), stream: sub.stream, topic: topic,
			logger: sub.logger, wakeups: s.listenWakeups(), safety: delaySafetyPoll,
		}
		if !singleNode(s.client) {
			sub.mover.safety = delaySafetyPollCluster
		}
	}
	if sub.m != nil {
		sub.acker = newAcker(sub.m, cfg.AckBatch, cfg.AckInterval, sub.held, hard, sub.logger)
		sub.claimer = &claimer{
			loop:           newLoop(soft),
			m:              sub.m,
			minIdle:        cfg.ClaimMinIdle,
			interval:       cfg.ClaimInterval,
			batch:          min(cfg.ClaimBatch, cfg.Prefetch),
			pruneAfter:     cfg.PruneConsumersAfter,
			ownPendingRead: sub.reader.ownPendingRead,
			held:           sub.held,
			queue:          q,
			logger:         sub.logger,
		}
		if sub.reader.news != nil {
			sub.claimer.quiet = &sub.reader.quiet
		}
		// The leaser outlives soft: it renews until the workers are done.
		sub.leaser = &leaser{loop: newLoop(context.Background()), m: sub.m, every: cfg.ClaimMinIdle / 6, held: sub.held, name: lease, logger: sub.logger}
	}
	sub.workers = &workers{
		n:      cfg.MaxInFlight,
		queue:  work,
		out:    sub.out,
		values: values,
		soft:   soft,
		hard:   hard,
		m:      sub.m,
		held:   sub.held,
		acker:  sub.acker,
		deadLetters: &deadLetterer{
			m:           sub.m,
			topic:       topic,
			deadLetter:  cfg.DeadLetterTopic(topic),
			unmarshaler: cfg.Unmarshaler,
			marshaler:   cfg.Marshaler,
			acker:       sub.acker,
			held:        sub.held,
			atomic:      deadLetterAtomic(s.client, topic, cfg.DeadLetterTopic(topic)),
			redeliver:   sub.redeliver,
			hard:        hard,
			logger:      sub.logger,
		},
		redeliver:     sub.redeliver,
		unmarshaler:   cfg.Unmarshaler,
		maxDeliveries: cfg.MaxDeliveries,
		nackBackoff:   cfg.NackBackoff,
		nackMax:       cfg.NackBackoffMax,
		logger:        sub.logger,
	}
	if sub.orderer != nil {
		sub.workers.finished = sub.orderer.finished
	}
	return sub
}

// deadLetterAtomic says whether the dead letters of topic can be written
// in one script with its XACK: always but on a client of several nodes,
// where both streams must hash to one slot.
func deadLetterAtomic(client redis.UniversalClient, topic, deadLetter string) bool {
	return singleNode(client) || keys.Slot(streamKey(topic)) == keys.Slot(streamKey(deadLetter))
}

// prepare does what must be done before Subscribe returns: create the group,
// or fix the broadcast start at the stream's current end.
func (sub *subscription) prepare(ctx context.Context) error {
	if sub.m != nil {
		// A group recreated before the reader read anything starts where
		// this one did, not at a later "$".
		start := sub.newGroup
		if start == StartNewest {
			if end, err := lastEntryID(ctx, sub.client, sub.stream); err == nil {
				start, sub.reader.knownEnd = end, end
			}
		}
		if err := createGroup(ctx, sub.client, sub.stream, sub.m.group, start); err != nil {
			return err
		}
		if err := sub.m.join(ctx); err != nil && !rediserr.IsUnknownCommand(err) {
			sub.logger.Error("Cannot add the consumer to the group; it is listed once it reads an entry", err, nil)
		}
		return nil
	}
	id, err := lastEntryID(ctx, sub.client, sub.stream)
	if err != nil {
		return err
	}
	sub.reader.lastID = id
	return nil
}

// run delivers until ctx is cancelled or closing is closed, then shuts the
// subscription down in order: workers, output channel, feeders, final XACK,
// release of held entries.
func (sub *subscription) run(ctx context.Context, closing <-chan struct{}) {
	defer sub.cancelHard()
	defer sub.cancelSoft()
	sub.logger.Info("Subscribed", nil)
	if sub.leaser != nil {
		sub.leaser.start()
	}
	sub.reader.start()
	if sub.orderer != nil {
		sub.orderer.start()
	}
	sub.redeliver.start()
	if sub.mover != nil {
		sub.mover.start()
	}
	if sub.acker != nil {
		sub.acker.start()
		sub.claimer.start()
	}
	sub.workers.start()

	// Cancelling Subscribe's context ends the subscription as gracefully as
	// Close: Watermill's Router does both at once when it closes.
	select {
	case <-ctx.Done():
	case <-closing:
	}
	sub.cancelSoft()
	grace := time.NewTimer(sub.closeTimeout)
	select {
	case <-sub.workers.stopped():
	case <-grace.C:
		sub.logger.Info("Timed out waiting for handlers to acknowledge; their messages stay pending", nil)
		sub.cancelHard()
	}
	grace.Stop()
	sub.workers.stop()
	if sub.acker != nil {
		// Acks and dead letters are in Redis before the channel closes:
		// a Router that saw it close finds nothing of theirs pending.
		sub.acker.sync()
	}
	if sub.leaser != nil {
		sub.leaser.stop()
	}
	close(sub.out)

	sub.reader.stop()
	if sub.orderer != nil {
		sub.orderer.stop()
	}
	if sub.mover != nil {
		sub.mover.stop()
	}
	sub.redeliver.stop()
	if sub.acker != nil {
		sub.claimer.stop()
		sub.acker.stop() // before the release: acknowledged entries are not released
		sub.releaseHeld()
	}
	sub.logger.Info("Subscription ended", nil)
}

// releaseHeld makes the entries this subscription read but did not finish
// claimable by other consumers at once, instead of after ClaimMinIdle.
func (sub *subscription) releaseHeld() {
	ids := sub.held.all()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), finalCallTimeout)
	defer cancel()
	fields := watermill.LogFields{"entries": len(ids)}
	if err := sub.m.release(ctx, ids); err != nil {
		sub.logger.Error("Cannot release unacknowledged entries; others take them after ClaimMinIdle", err, fields)
		return
	}
	sub.logger.Debug("Released unacknowledged entries", fields)
}

// finalCallTimeout bounds the Redis calls made while a subscription shuts
// down (release, final XACK), so Close returns even when Redis is gone.
const finalCallTimeout = 5 * time.Second
