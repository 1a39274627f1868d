package millrace

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// leaser keeps the entries a subscription holds leased: it resets their idle
// time (XCLAIM ... JUSTID, which counts no delivery) before it reaches
// ClaimMinIdle, so no other consumer's XAUTOCLAIM takes them while a handler
// is slow, while the queue is full, or while Close waits for handlers. It
// has its own goroutine, from before the first read until the workers are
// done, so nothing else it waits for can delay a renewal.
type leaser struct {
	sub  *subscription
	stop chan struct{}
	done chan struct{}
}

func newLeaser(sub *subscription) *leaser {
	return &leaser{sub: sub, stop: make(chan struct{}), done: make(chan struct{})}
}

func (l *leaser) start() { go l.run() }

// stopAndWait ends the renewals; call it once no handler holds an entry.
func (l *leaser) stopAndWait() {
	close(l.stop)
	<-l.done
}

// renewEvery is the renewal tick: entries not renewed for a tick are renewed
// on the next, so an entry's idle time stays below two ticks, a third of
// ClaimMinIdle, and below half of it after one failed renewal.
func (l *leaser) renewEvery() time.Duration { return l.sub.config.ClaimMinIdle / 6 }

func (l *leaser) run() {
	defer close(l.done)
	tick := time.NewTicker(l.renewEvery())
	defer tick.Stop()
	log := errorLog{logger: l.sub.logger}
	for {
		select {
		case <-tick.C:
			l.renew(&log)
		case <-l.stop:
			return
		}
	}
}

func (l *leaser) renew(log *errorLog) {
	sub := l.sub
	ids := sub.held.renewable(l.renewEvery())
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.renewEvery())
	defer cancel()
	lost, err := claimOwned(ctx, sub.client, sub.stream, sub.group, sub.config.Consumer, ids, 0)
	if err != nil {
		log.failure("Cannot extend the leases of held entries", err, sub.fields)
		return
	}
	sub.held.renewed(ids, lost)
	if len(lost) > 0 {
		sub.logger.Info("Entries held here were taken over by another consumer", sub.fields.Add(watermill.LogFields{"entries": len(lost)}))
	}
}
