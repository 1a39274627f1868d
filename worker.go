package millrace

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/lasterror"
)

// workers are the MaxInFlight goroutines of a subscription that hand out
// messages: each takes an entry from the queue, hands it out on out and
// waits for its Ack or Nack before the next. A message's context carries the
// values of Subscribe's context and ends with its Ack, Nack or the
// subscription: the worker cancels it itself. They stop taking entries when
// soft ends and abandon the messages in handlers when hard ends.
type workers struct {
	n          int
	queue      <-chan *entry
	out        chan<- *message.Message
	values     context.Context
	soft, hard context.Context

	m             *member       // nil in broadcast mode
	held          *holder       // nil in broadcast mode
	acker         *acker        // nil in broadcast mode
	redeliver     *redeliverer  // Nacked entries and failed claims
	deadLetters   *deadLetterer // entries delivered too often or malformed
	lastErrors    *lastErrors   // nil in broadcast mode
	unmarshaler   Unmarshaler
	minIdle       time.Duration // ClaimMinIdle: a claim for delivery takes no entry another consumer holds
	maxDeliveries int
	nackBackoff   time.Duration
	nackMax       time.Duration
	logger        watermill.LoggerAdapter
	// finished, with an OrderingKey, gets every entry done with, so that the
	// next of its key can go; nil without one.
	finished chan<- *entry

	// skipped counts the replayed messages meant for another group that
	// were acknowledged without being handed out, logged at most every
	// errlog.Every.
	skipped struct {
		sync.Mutex
		count, logged int64
		last          time.Time
	}

	wg   sync.WaitGroup
	done chan struct{}
}

type workersParams struct {
	n           int // MaxInFlight
	queue       <-chan *entry
	out         chan<- *message.Message
	values      context.Context // Subscribe's: messages' contexts carry its values
	soft, hard  context.Context
	m           *member
	held        *holder
	acker       *acker
	redeliver   *redeliverer
	deadLetters *deadLetterer
	lastErrors  *lastErrors   // nil in broadcast mode
	finished    chan<- *entry // nil without an OrderingKey
	config      SubscriberConfig
	logger      watermill.LoggerAdapter
}

func newWorkers(p workersParams) *workers {
	return &workers{
		n:             p.n,
		queue:         p.queue,
		out:           p.out,
		values:        p.values,
		soft:          p.soft,
		hard:          p.hard,
		m:             p.m,
		held:          p.held,
		acker:         p.acker,
		redeliver:     p.redeliver,
		deadLetters:   p.deadLetters,
		lastErrors:    p.lastErrors,
		unmarshaler:   p.config.Unmarshaler,
		minIdle:       p.config.ClaimMinIdle,
		maxDeliveries: p.config.MaxDeliveries,
		nackBackoff:   p.config.NackBackoff,
		nackMax:       p.config.NackBackoffMax,
		logger:        p.logger,
		finished:      p.finished,
		done:          make(chan struct{}),
	}
}

func (w *workers) start() {
	w.wg.Add(w.n)
	for range w.n {
		go func() {
			defer w.wg.Done()
			w.work()
		}()
	}
	go func() {
		w.wg.Wait()
		close(w.done)
	}()
}

// stop waits for every worker; they end once soft ends and their message
// is finished, or once hard ends.
func (w *workers) stop() { <-w.done }

// stopped is closed once every worker has returned.
func (w *workers) stopped() <-chan struct{} { return w.done }

func (w *workers) work() {
	for w.soft.Err() == nil {
		var e *entry
		select {
		case e = <-w.queue:
		case <-w.soft.Done():
			return
		}
		if w.soft.Err() != nil {
			return // the entry stays held and is released
		}
		finished, stop := w.handle(e)
		if stop {
			return
		}
		if finished && w.finished != nil {
			select {
			case w.finished <- e:
			case <-w.soft.Done():
				return
			}
		}
	}
}

// handle hands e out and waits for its Ack or Nack. finished reports that
// e is done with here: acknowledged, dead-lettered, gone from the stream or
// no longer held; it is false when e was scheduled for another delivery.
// stop reports that the subscription ended meanwhile.
func (w *workers) handle(e *entry) (finished, stop bool) {
	if w.held != nil && !w.held.has(e.id) {
		return true, false // acknowledged meanwhile, or taken over by another consumer
	}
	if e.claim {
		if !w.acker.sync(w.soft) {
			return false, true // the entry stays held and is released
		}
		if ok, done := w.claimForDelivery(e); !ok {
			return done, false
		}
	}
	msg, ok, disposed := w.prepareMessage(e)
	if !ok {
		return disposed, false
	}
	// A PoisonQueue reason set during this delivery is the handler's error.
	poisoned := msg.Metadata.Get(middleware.ReasonForPoisonedKey)
	ctx, cancel := context.WithCancel(w.values)
	defer cancel()
	msg.SetContext(ctx)
	select {
	case w.out <- msg:
	case <-w.soft.Done():
		return false, true
	}
	select {
	case <-msg.Acked():
		cancel()
		w.acked(e)
		return true, false
	case <-msg.Nacked():
		cancel()
		w.nacked(e, handlerError(msg, poisoned))
		return false, false
	case <-w.hard.Done():
		return false, true
	}
}

// prepareMessage decodes e, or disposes of it when it must not be delivered:
// deleted while pending (cleared from the PEL), delivered too often or
// malformed (dead-lettered). disposed is false when the disposal failed and
// e was scheduled to be tried again.
func (w *workers) prepareMessage(e *entry) (msg *message.Message, ok, disposed bool) {
	if e.values == nil {
		w.logger.Debug("Clearing pending entry deleted from the stream", watermill.LogFields{"entry_id": e.id})
		w.acked(e)
		return nil, false, true
	}
	if limit := w.maxDeliveries; limit > 0 && e.deliveries > int64(limit) {
		reason := fmt.Sprintf("delivered %d times, more than MaxDeliveries %d", e.deliveries, limit)
		return nil, false, w.deadLetters.move(e, reason)
	}
	msg, e.decoded = e.decoded, nil
	if msg == nil {
		var err error
		if msg, err = w.unmarshaler.Unmarshal(e.values); err != nil {
			reason := fmt.Errorf("%w %s: %w", ErrMalformedEntry, e.id, err)
			w.logger.Error("Cannot decode stream entry", reason, nil)
			return nil, false, w.deadLetters.move(e, reason.Error())
		}
	}
	if msg.UUID == "" {
		msg.UUID = e.id
	}
	if msg.Metadata == nil {
		msg.Metadata = message.Metadata{}
	}
	if target := msg.Metadata[MetadataReplayGroup]; target != "" && (w.m == nil || target != w.m.group) {
		w.skippedReplay(e.id, target)
		w.acked(e)
		return nil, false, true
	}
	// An error kept with a dead letter is not this delivery's.
	delete(msg.Metadata, MetadataLastError)
	msg.Metadata[MetadataEntryID] = e.id
	msg.Metadata[MetadataDeliveryCount] = strconv.FormatInt(max(e.deliveries, 1), 10)
	return msg, true, true
}

// skippedReplay logs that entry id, replayed to group target only, is
// acknowledged here without being handed out: each at debug level, and
// their count at info level at most every errlog.Every.
func (w *workers) skippedReplay(id, target string) {
	w.logger.Debug("Acknowledging a replayed message meant for another group without handing it out",
		watermill.LogFields{"entry_id": id, "replay_group": target})
	w.skipped.Lock()
	defer w.skipped.Unlock()
	w.skipped.count++
	if time.Since(w.skipped.last) < errlog.Every {
		return
	}
	w.logger.Info("Acknowledged replayed messages meant for another group without handing them out",
		watermill.LogFields{"messages": w.skipped.count - w.skipped.logged, "total": w.skipped.count, "replay_group": target})
	w.skipped.logged, w.skipped.last = w.skipped.count, time.Now()
}

// claimForDelivery claims e back to this consumer, counting a delivery and
// reading its fields and delivery counter. An entry no longer pending
// (acknowledged meanwhile, or deleted from the stream, which the claim
// clears from the PEL) or taken over by another consumer is no longer held
// here: done reports that. When Redis fails, e is tried later.
func (w *workers) claimForDelivery(e *entry) (ok, done bool) {
	ctx, cancel := context.WithTimeout(w.hard, finalCallTimeout)
	defer cancel()
	outcome, err := w.m.claimForDelivery(ctx, e, w.minIdle)
	if err != nil {
		if w.hard.Err() == nil {
			w.logger.Error("Cannot claim entry for delivery; retrying later", err, watermill.LogFields{"entry_id": e.id})
			w.redeliver.schedule(e, retryMax)
		}
		return false, false
	}
	switch outcome {
	case claimGone:
		w.logger.Debug("Pending entry is gone", watermill.LogFields{"entry_id": e.id})
		w.held.remove(e.id)
		return false, true
	case claimTaken:
		w.logger.Info("Entry was taken over by another consumer; leaving it to that one", watermill.LogFields{"entry_id": e.id})
		w.held.remove(e.id)
		return false, true
	}
	e.claim = false
	return true, false
}

// acked finishes e: in a group its ID is queued for a batched XACK, and the
// acker stops holding it. The last error of an entry delivered before, the
// only kind that can have one, is deleted.
func (w *workers) acked(e *entry) {
	if w.acker != nil && !w.acker.add(w.hard, e.id) {
		w.logger.Info("Acknowledgement not sent: the subscription ended while acknowledgements waited for Redis; "+
			"the entry stays pending and is delivered again", watermill.LogFields{"entry_id": e.id})
		return
	}
	if w.lastErrors != nil && (e.deliveries > 1 || e.lastErr != "") {
		w.lastErrors.forget(e.id)
	}
}

// nacked schedules e for another delivery after its backoff. The entry stays
// pending in Redis meanwhile, and the other entries go on. The handler's
// error, when it left one, is kept with the entry.
func (w *workers) nacked(e *entry, handlerErr string) {
	if handlerErr != "" && w.lastErrors != nil {
		e.lastErr = lasterror.Cut(handlerErr)
		w.lastErrors.set(e.id, e.lastErr)
	}
	delay := expDelay(w.nackBackoff, w.nackMax, e.nacks)
	e.nacks++
	w.redeliver.schedule(e, delay)
}
