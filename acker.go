package millrace

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/millrace/millrace/internal/errlog"
)

// acker batches acknowledgements into XACKs: a batch goes out when it holds
// batch IDs or interval after its first ID, and always before stop returns.
// One goroutine owns the pending batch and retries a failed XACK (XACK is
// idempotent) until it succeeds or stop's deadline passes. Every
// acknowledgement of a subscription goes through it: Acks, entries deleted
// while pending, and dead letters that could not be acknowledged in their
// script.
type acker struct {
	m        *member
	batch    int
	interval time.Duration
	held     *holder
	logger   watermill.LoggerAdapter

	// ctx ends the retries: cancelled when stop's deadline passes. final,
	// set by stop before it closes ids, is that deadline: the XACKs sent
	// after ids is closed carry it, so that a call to an unresponsive Redis
	// ends with it too.
	ctx     context.Context
	cancel  context.CancelFunc
	final   context.Context
	ids     chan string
	flushes chan chan struct{}
	done    chan struct{}
	// unsent is how many acknowledgements were given up at stop: their
	// entries stay pending and are delivered again.
	unsent int
}

type ackerParams struct {
	m        *member
	batch    int           // AckBatch
	interval time.Duration // AckInterval
	held     *holder
	logger   watermill.LoggerAdapter
}

func newAcker(p ackerParams) *acker {
	ctx, cancel := context.WithCancel(context.Background())
	return &acker{
		m:        p.m,
		batch:    p.batch,
		interval: p.interval,
		held:     p.held,
		logger:   p.logger,
		ctx:      ctx,
		cancel:   cancel,
		ids:      make(chan string, 4*p.batch),
		flushes:  make(chan chan struct{}),
		done:     make(chan struct{}),
	}
}

func (a *acker) start() { go a.run() }

// stop sends what was added, retrying until deadline ends, and returns the
// number of acknowledgements it gave up. No add may follow.
func (a *acker) stop(deadline context.Context) int {
	a.final = deadline
	close(a.ids)
	select {
	case <-a.done:
	case <-deadline.Done():
		a.cancel()
		<-a.done
	}
	a.cancel()
	return a.unsent
}

// add queues id for acknowledgement and reports true. It blocks only while
// a full queue of acknowledgements waits for Redis, and gives up (false)
// when ctx ends first: the entry then stays pending and is delivered again.
func (a *acker) add(ctx context.Context, id string) bool {
	select {
	case a.ids <- id:
		return true
	case <-ctx.Done():
		return false
	}
}

// sync sends every acknowledgement added so far before it returns true;
// false when ctx ends first. Workers call it before handing out an entry
// being recovered: if that entry crashes the process again, the messages
// acknowledged just before it must not come back.
func (a *acker) sync(ctx context.Context) bool {
	flushed := make(chan struct{})
	select {
	case a.flushes <- flushed:
	case <-a.done:
		return true
	case <-ctx.Done():
		return false
	}
	select {
	case <-flushed:
		return true
	case <-ctx.Done():
		return false
	}
}

func (a *acker) run() {
	defer close(a.done)
	batch := make([]string, 0, a.batch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	retry := newRetryBackoff()
	log := errlog.New(a.logger)
	closed := false

	var flushed []chan struct{} // sync calls answered by the next flush
	for {
		if len(batch) == 0 && !closed {
			select {
			case id, ok := <-a.ids:
				if !ok {
					return
				}
				batch = append(batch, id)
				timer.Reset(a.interval)
			case f := <-a.flushes:
				batch, closed = a.drainQueued(batch)
				if len(batch) == 0 {
					close(f)
					continue
				}
				flushed = append(flushed, f)
			}
		}
	fill:
		for len(batch) < a.batch && len(flushed) == 0 && !closed {
			select {
			case id, ok := <-a.ids:
				if !ok {
					closed = true
					break fill
				}
				batch = append(batch, id)
			case f := <-a.flushes:
				batch, closed = a.drainQueued(batch)
				flushed = append(flushed, f)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		n := min(len(batch), a.batch)
		ctx := a.ctx
		if closed {
			ctx = a.final
		}
		if err := a.flush(ctx, batch[:n]); err != nil {
			if a.ctx.Err() != nil || ctx.Err() != nil {
				a.giveUp(batch)
				return
			}
			log.Failure("Cannot acknowledge entries; retrying", err, watermill.LogFields{"entries": n})
			if !sleepCtx(a.ctx, retry.next()) {
				a.giveUp(batch)
				return
			}
			timer.Reset(0) // send again now, not when the batch fills
			continue
		}
		retry.reset()
		log.Recovered("Acknowledging entries again", nil)
		batch = append(batch[:0], batch[n:]...)
		if len(batch) > 0 {
			continue
		}
		for _, f := range flushed {
			close(f)
		}
		flushed = flushed[:0]
		if closed {
			return
		}
	}
}

// drainQueued moves every ID already queued into batch; closed reports that
// no more will come.
func (a *acker) drainQueued(batch []string) (_ []string, closed bool) {
	for {
		select {
		case id, ok := <-a.ids:
			if !ok {
				return batch, true
			}
			batch = append(batch, id)
		default:
			return batch, false
		}
	}
}

// giveUp counts batch and whatever is still queued as unsent, at stop's
// deadline: those entries stay pending and are delivered again.
func (a *acker) giveUp(batch []string) {
	a.unsent = len(batch)
	for range a.ids {
		a.unsent++
	}
}

// flush acknowledges ids and stops holding them: they are no longer leased
// or released.
func (a *acker) flush(ctx context.Context, ids []string) error {
	if err := a.m.ack(ctx, ids...); err != nil {
		return err
	}
	a.held.remove(ids...)
	return nil
}
