package millrace

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// acker batches acknowledgements into XACKs: a batch goes out when it holds
// batch IDs or interval after its first ID, and always before stop returns.
// One goroutine owns the pending batch. Every acknowledgement of a
// subscription goes through it: Acks, entries deleted while pending, and
// dead-lettered entries.
type acker struct {
	m        *member
	batch    int
	interval time.Duration
	held     *heldSet
	// hard ends with the subscription's abandonment: sends are cut short
	// then, and stop makes one last bounded attempt.
	hard   context.Context
	logger watermill.LoggerAdapter

	ids     chan string
	flushes chan chan struct{}
	done    chan struct{}
}

func newAcker(m *member, batch int, interval time.Duration, held *heldSet, hard context.Context, logger watermill.LoggerAdapter) *acker {
	return &acker{
		m:        m,
		batch:    batch,
		interval: interval,
		held:     held,
		hard:     hard,
		logger:   logger,
		ids:      make(chan string, 4*batch),
		flushes:  make(chan chan struct{}),
		done:     make(chan struct{}),
	}
}

func (a *acker) start() { go a.run() }

// stop flushes what was added and returns. No add may follow.
func (a *acker) stop() {
	close(a.ids)
	<-a.done
}

// add queues id for acknowledgement. It blocks only while a full queue of
// acknowledgements waits for Redis.
func (a *acker) add(id string) { a.ids <- id }

// sync sends every acknowledgement added so far before it returns (or
// gives up when the subscription is abandoned). Workers call it before
// handing out an entry being recovered: if that entry crashes the process
// again, the messages acknowledged just before it must not come back.
func (a *acker) sync() {
	flushed := make(chan struct{})
	select {
	case a.flushes <- flushed:
	case <-a.done:
		return
	case <-a.hard.Done():
		return
	}
	select {
	case <-flushed:
	case <-a.hard.Done():
	}
}

func (a *acker) run() {
	defer close(a.done)
	batch := make([]string, 0, a.batch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	retry := newRetryBackoff()
	log := errorLog{logger: a.logger}

	var flushed []chan struct{} // sync calls answered by the next flush
	for {
		if len(batch) == 0 {
			select {
			case id, ok := <-a.ids:
				if !ok {
					return
				}
				batch = append(batch, id)
				timer.Reset(a.interval)
			case f := <-a.flushes:
				batch = a.drainQueued(batch)
				if len(batch) == 0 {
					close(f)
					continue
				}
				flushed = append(flushed, f)
			}
		}
	fill:
		for len(batch) < a.batch && len(flushed) == 0 {
			select {
			case id, ok := <-a.ids:
				if !ok {
					a.final(batch)
					return
				}
				batch = append(batch, id)
			case f := <-a.flushes:
				batch = a.drainQueued(batch)
				flushed = append(flushed, f)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		if err := a.flush(a.hard, batch); err != nil {
			if a.hard.Err() == nil {
				log.failure("Cannot acknowledge entries; retrying", err, watermill.LogFields{"entries": len(batch)})
			}
			if sleepCtx(a.hard, retry.next()) {
				timer.Reset(0)
				continue
			}
			a.final(batch)
			a.drain()
			return
		}
		retry.reset()
		log.recovered("Acknowledging entries again", nil)
		batch = batch[:0]
		for _, f := range flushed {
			close(f)
		}
		flushed = flushed[:0]
	}
}

// drainQueued moves every ID already queued into batch.
func (a *acker) drainQueued(batch []string) []string {
	for {
		select {
		case id, ok := <-a.ids:
			if !ok {
				return batch
			}
			batch = append(batch, id)
		default:
			return batch
		}
	}
}

// drain acknowledges what is still queued, at shutdown.
func (a *acker) drain() {
	var rest []string
	for id := range a.ids {
		rest = append(rest, id)
	}
	a.final(rest)
}

// final makes one last bounded attempt at shutdown.
func (a *acker) final(batch []string) {
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), finalCallTimeout)
	defer cancel()
	if err := a.flush(ctx, batch); err != nil {
		a.logger.Error("Cannot acknowledge entries at close; they will be redelivered", err, watermill.LogFields{"entries": len(batch)})
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
