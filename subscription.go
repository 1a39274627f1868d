package millrace

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/rediserr"
)

// entry is a stream entry on its way to a handler.
type entry struct {
	id     string
	values map[string]interface{} // nil when the entry was deleted while pending
	// deliveries is Redis's delivery counter of the entry, this delivery
	// included; 0 when unknown.
	deliveries int64
	// lastErr is the handler's error at the entry's last Nack in this
	// subscription, "" when none was left.
	lastErr string
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
	closeTimeout time.Duration
	logger       watermill.LoggerAdapter

	// soft stops taking new work; hard abandons messages still in handlers.
	soft, hard             context.Context
	cancelSoft, cancelHard context.CancelFunc

	out       chan *message.Message
	held      *holder // entries read and not yet acked (group only)
	reader    *reader
	workers   *workers
	orderer   *orderer // nil without an OrderingKey
	redeliver *redeliverer
	mover     *delayMover // nil when the Subscriber does not move delayed messages
	acker     *acker      // group only, like claimer and leaser
	claimer   *claimer
	leaser    *leaser
}

// subscriptionParams is what a subscription is built from.
type subscriptionParams struct {
	client   redis.UniversalClient
	config   SubscriberConfig
	logger   watermill.LoggerAdapter
	topic    string
	consumer string         // the name it reads as in its group
	lease    *consumerLease // holds consumer, renewed by the leaser; nil when off
	// values is Subscribe's context: messages' contexts carry its values.
	values  context.Context
	start   readStart
	news    *newsWaiter // nil: each read blocks on its own
	wakeups *wakeups    // nil: the mover polls, or no mover (NoDelayedMover)
	// held is shared by the subscriptions of the Subscriber that read the
	// topic as the same consumer; sibling is closed once the first of them
	// has read the consumer's own pending entries (nil for the first).
	held    *heldSet
	sibling <-chan struct{}
}

// newSubscription builds a subscription and all its components.
func newSubscription(p subscriptionParams) *subscription {
	cfg := p.config
	soft, cancelSoft := context.WithCancel(context.Background())
	hard, cancelHard := context.WithCancel(context.Background())
	stream := streamKey(p.topic)
	sub := &subscription{
		closeTimeout: cfg.CloseTimeout,
		logger: p.logger.With(watermill.LogFields{
			"topic":          p.topic,
			"consumer_group": cfg.ConsumerGroup,
			"consumer":       p.consumer,
		}),
		soft:       soft,
		hard:       hard,
		cancelSoft: cancelSoft,
		cancelHard: cancelHard,
		out:        make(chan *message.Message),
	}
	q := &queue{ch: make(chan *entry, cfg.Prefetch), stopping: soft.Done()}
	if cfg.ConsumerGroup != "" {
		sub.m = &member{client: p.client, stream: stream, group: cfg.ConsumerGroup, consumer: p.consumer}
		sub.held = p.held.holder()
	}
	quiet := new(atomic.Uint64)
	var paused *pauseWatch
	if sub.m != nil {
		paused = newPauseWatch(p.client, p.topic, cfg.ConsumerGroup, p.news, sub.logger)
	}
	sub.reader = newReader(readerParams{
		parent:   soft,
		client:   p.client,
		stream:   stream,
		m:        sub.m,
		newGroup: cfg.NewGroupStartID,
		prefetch: cfg.Prefetch,
		block:    cfg.BlockTime,
		start:    p.start,
		sibling:  p.sibling,
		held:     sub.held,
		queue:    q,
		news:     p.news,
		quiet:    quiet,
		pause:    paused,
		logger:   sub.logger,
	})
	work, redeliveries := q.ch, q
	var finished chan<- *entry
	if cfg.OrderingKey != "" {
		sub.orderer = newOrderer(ordererParams{
			parent:      soft,
			key:         cfg.OrderingKey,
			queue:       q,
			workers:     cfg.MaxInFlight,
			limit:       cfg.Prefetch,
			m:           sub.m,
			unmarshaler: cfg.Unmarshaler,
			logger:      sub.logger,
		})
		work, finished = sub.orderer.ready, sub.orderer.finished
		redeliveries = &queue{ch: sub.orderer.back, stopping: soft.Done()}
	}
	sub.redeliver = newRedeliverer(redelivererParams{parent: soft, claim: sub.m != nil, queue: redeliveries})
	if !cfg.NoDelayedMover {
		sub.mover = newDelayMover(delayMoverParams{parent: soft, client: p.client, topic: p.topic, wakeups: p.wakeups, logger: sub.logger})
	}
	if sub.m != nil {
		sub.acker = newAcker(ackerParams{m: sub.m, batch: cfg.AckBatch, interval: cfg.AckInterval, held: sub.held, logger: sub.logger})
		claimerQuiet := quiet
		if p.news == nil {
			claimerQuiet = nil
		}
		sub.claimer = newClaimer(claimerParams{
			parent:         soft,
			m:              sub.m,
			minIdle:        cfg.ClaimMinIdle,
			interval:       cfg.ClaimInterval,
			batch:          min(cfg.ClaimBatch, cfg.Prefetch),
			pruneAfter:     cfg.PruneConsumersAfter,
			ownPendingRead: sub.reader.ownPendingRead,
			quiet:          claimerQuiet,
			paused:         &paused.paused,
			held:           sub.held,
			queue:          q,
			logger:         sub.logger,
		})
		sub.leaser = newLeaser(leaserParams{m: sub.m, every: cfg.ClaimMinIdle / 6, held: sub.held, name: p.lease, logger: sub.logger})
	}
	var lastErrs *lastErrors
	if sub.m != nil {
		lastErrs = &lastErrors{client: p.client, topic: p.topic, group: cfg.ConsumerGroup, hard: hard, logger: sub.logger}
	}
	sub.workers = newWorkers(workersParams{
		n:      cfg.MaxInFlight,
		queue:  work,
		out:    sub.out,
		values: p.values,
		soft:   soft,
		hard:   hard,
		m:      sub.m,
		held:   sub.held,
		acker:  sub.acker,
		deadLetters: newDeadLetterer(deadLettererParams{
			client:     p.client,
			m:          sub.m,
			topic:      p.topic,
			config:     cfg,
			acker:      sub.acker,
			held:       sub.held,
			lastErrors: lastErrs,
			redeliver:  sub.redeliver,
			hard:       hard,
			logger:     sub.logger,
		}),
		redeliver:  sub.redeliver,
		lastErrors: lastErrs,
		finished:   finished,
		config:     cfg,
		logger:     sub.logger,
	})
	return sub
}

// prepareStart does what must be done before Subscribe returns: create the
// group and add the consumer to it, so that it is listed before it reads
// its first entry, or find the stream's end where a broadcast subscription
// starts. A group created at "$" is created at the stream's end, read
// first, so that a group recreated before the reader read anything starts
// there too, not at a later "$".
func prepareStart(ctx context.Context, client redis.UniversalClient, topic, consumer string, cfg SubscriberConfig, logger watermill.LoggerAdapter) (readStart, error) {
	stream := streamKey(topic)
	if cfg.ConsumerGroup == "" {
		id, err := lastEntryID(ctx, client, stream)
		return readStart{lastID: id}, err
	}
	var start readStart
	at := cfg.NewGroupStartID
	if at == StartNewest {
		if end, err := lastEntryID(ctx, client, stream); err == nil {
			at, start.knownEnd = end, end
		}
	}
	if err := createGroup(ctx, client, stream, cfg.ConsumerGroup, at); err != nil {
		return start, err
	}
	m := member{client: client, stream: stream, group: cfg.ConsumerGroup, consumer: consumer}
	if err := m.join(ctx); err != nil && !rediserr.IsUnknownCommand(err) {
		logger.Error("Cannot add the consumer to the group; it is listed once it reads an entry", err,
			watermill.LogFields{"topic": topic, "consumer_group": cfg.ConsumerGroup, "consumer": consumer})
	}
	return start, nil
}

// run delivers until ctx is cancelled or closing is closed, then shuts the
// subscription down in order: workers (up to CloseTimeout), output channel,
// feeders, final XACK, release of held entries. Everything after the wait
// for the workers shares one deadline, finalCallTimeout, which run returns:
// the caller's last call (the consumer name's release) keeps to it too.
func (sub *subscription) run(ctx context.Context, closing <-chan struct{}) (final context.Context, cancel context.CancelFunc) {
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

	final, cancel = context.WithTimeout(context.Background(), finalCallTimeout)
	if sub.acker != nil {
		// Acks and dead letters are in Redis before the channel closes:
		// a Router that saw it close finds nothing of theirs pending.
		sub.acker.sync(final)
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
		// Before the release: acknowledged entries are not released.
		if unsent := sub.acker.stop(final); unsent > 0 {
			sub.logger.Error("Cannot acknowledge entries before Close's deadline; they stay pending and are delivered again",
				nil, watermill.LogFields{"entries": unsent})
		}
		sub.releaseHeld(final)
	}
	sub.logger.Info("Subscription ended", nil)
	return final, cancel
}

// releaseHeld makes the entries this subscription read but did not finish
// claimable by other consumers at once, instead of after ClaimMinIdle, and
// by the other subscriptions of the same consumer.
func (sub *subscription) releaseHeld(ctx context.Context) {
	ids := sub.held.all()
	if len(ids) == 0 {
		return
	}
	defer sub.held.remove(ids...)
	fields := watermill.LogFields{"entries": len(ids)}
	if err := sub.m.release(ctx, ids); err != nil {
		sub.logger.Error("Cannot release unacknowledged entries; they stay pending, and others take them after ClaimMinIdle", err, fields)
		return
	}
	sub.logger.Debug("Released unacknowledged entries", fields)
}

// finalCallTimeout bounds what a subscription does after its handlers are
// done or abandoned (final XACK, release of held entries, the consumer
// name's release): Close returns within CloseTimeout plus this, whatever
// Redis does.
const finalCallTimeout = 5 * time.Second
