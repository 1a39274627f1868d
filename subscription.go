package millrace

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
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
}

// subscription is one Subscribe call: a reader (and, in a group, a claimer
// and an acker) feed a queue of entries that MaxInFlight workers hand out on
// out, one message at a time each. The run goroutine owns out and closes it.
type subscription struct {
	*Subscriber
	topic  string
	stream string
	group  string
	fields watermill.LogFields

	// soft stops taking new work; hard abandons messages still in handlers.
	soft, hard             context.Context
	cancelSoft, cancelHard context.CancelFunc
	// values is Subscribe's context without its cancellation: messages'
	// contexts carry its values.
	values context.Context

	queue chan *entry
	out   chan *message.Message

	held       *heldSet // entries read and not yet acked (group only)
	leaser     *leaser
	acker      *acker
	claimer    *claimer
	redeliver  *redeliverer
	reader     *reader
	lastReadID string // broadcast: where the first XREAD starts
	// deadLetterLog rate-limits the failures of dead-lettering, which
	// workers retry every few seconds while they last.
	deadLetterLog lockedErrorLog
	// sharesConsumer is set when another subscription of the same Subscriber
	// reads the topic as the same consumer: that one holds the consumer's
	// pending entries, so this one does not read them again.
	sharesConsumer bool
}

func newSubscription(s *Subscriber, topic string) *subscription {
	soft, cancelSoft := context.WithCancel(context.Background())
	hard, cancelHard := context.WithCancel(context.Background())
	sub := &subscription{
		Subscriber: s,
		topic:      topic,
		stream:     streamKey(topic),
		group:      s.config.ConsumerGroup,
		soft:       soft,
		hard:       hard,
		cancelSoft: cancelSoft,
		cancelHard: cancelHard,
		queue:      make(chan *entry, s.config.Prefetch),
		out:        make(chan *message.Message),
		fields: watermill.LogFields{
			"topic":          topic,
			"consumer_group": s.config.ConsumerGroup,
			"consumer":       s.config.Consumer,
		},
	}
	if sub.group != "" {
		sub.held = newHeldSet()
		sub.leaser = newLeaser(sub)
		sub.acker = newAcker(sub)
		sub.claimer = newClaimer(sub)
	}
	sub.redeliver = newRedeliverer(sub)
	sub.reader = newReader(sub)
	return sub
}

// prepare does what must be done before Subscribe returns: create the group,
// or fix the broadcast start at the stream's current end.
func (sub *subscription) prepare(ctx context.Context) error {
	if sub.group != "" {
		return createGroup(ctx, sub.client, sub.stream, sub.group, sub.config.NewGroupStartID)
	}
	id, err := lastEntryID(ctx, sub.client, sub.stream)
	if err != nil {
		return err
	}
	sub.lastReadID = id
	return nil
}

// run delivers until ctx is cancelled or closing is closed, then shuts the
// subscription down in order: workers, output channel, feeders, release of
// held entries, final XACK.
func (sub *subscription) run(ctx context.Context, closing <-chan struct{}) {
	defer sub.cancelHard()
	defer sub.cancelSoft()
	sub.logger.Info("Subscribed", sub.fields)
	if sub.leaser != nil {
		sub.leaser.start()
	}

	var feeders sync.WaitGroup
	feeders.Add(1)
	go func() {
		defer feeders.Done()
		sub.reader.run()
	}()
	sub.redeliver.start()
	delayer := newDelayer(sub) // delay.go
	delayer.start()
	if sub.acker != nil {
		sub.acker.start()
		sub.claimer.start()
	}

	var workers sync.WaitGroup
	workers.Add(sub.config.MaxInFlight)
	for range sub.config.MaxInFlight {
		go func() {
			defer workers.Done()
			sub.work()
		}()
	}
	workersDone := make(chan struct{})
	go func() {
		workers.Wait()
		close(workersDone)
	}()

	// Cancelling Subscribe's context ends the subscription as gracefully as
	// Close: Watermill's Router does both at once when it closes.
	select {
	case <-ctx.Done():
	case <-closing:
	}
	sub.cancelSoft()
	grace := time.NewTimer(sub.config.CloseTimeout)
	select {
	case <-workersDone:
	case <-grace.C:
		sub.logger.Info("Timed out waiting for handlers to acknowledge; their messages stay pending", sub.fields)
		sub.cancelHard()
	}
	grace.Stop()
	<-workersDone
	if sub.leaser != nil {
		sub.leaser.stopAndWait()
	}
	close(sub.out)

	feeders.Wait()
	delayer.stop()
	sub.redeliver.stop()
	if sub.acker != nil {
		sub.claimer.stop()
		sub.acker.stop() // before the release: acknowledged entries are not released
		sub.releaseHeld()
	}
	sub.logger.Info("Subscription ended", sub.fields)
}

// push hands e to the workers; false when the subscription is stopping.
func (sub *subscription) push(e *entry) bool {
	select {
	case sub.queue <- e:
		return true
	case <-sub.soft.Done():
		return false
	}
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
	if err := releaseEntries(ctx, sub.client, sub.stream, sub.group, sub.config.Consumer, ids); err != nil {
		sub.logger.Error("Cannot release unacknowledged entries; others take them after ClaimMinIdle", err,
			sub.fields.Add(watermill.LogFields{"entries": len(ids)}))
		return
	}
	sub.logger.Debug("Released unacknowledged entries", sub.fields.Add(watermill.LogFields{"entries": len(ids)}))
}

// finalCallTimeout bounds the Redis calls made while a subscription shuts
// down (release, final XACK), so Close returns even when Redis is gone.
const finalCallTimeout = 5 * time.Second
