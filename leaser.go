package millrace

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/millrace/millrace/internal/errlog"
)

// leaser keeps the entries a subscription holds leased, and the key of its
// consumer name (when ConsumerLease is on) from expiring (the Subscriber's
// holder key, which it renews, keeps the name itself). It resets the idle
// time (XCLAIM ... JUSTID, which counts no delivery) before it reaches
// ClaimMinIdle, so no other consumer's XAUTOCLAIM takes them while a handler
// is slow, while the queue is full, or while Close waits for handlers. It
// has its own goroutine, from before the first read until the workers are
// done, so nothing else it waits for can delay a renewal.
type leaser struct {
	loop
	m *member
	// every is the renewal tick: entries not renewed for a tick are renewed
	// on the next, so an entry's idle time stays below two ticks, a third of
	// ClaimMinIdle, and below half of it after one failed renewal.
	every  time.Duration
	held   *holder
	name   *consumerLease // nil when ConsumerLease is off
	logger watermill.LoggerAdapter
}

type leaserParams struct {
	m      *member
	every  time.Duration // ClaimMinIdle/6
	held   *holder
	name   *consumerLease
	logger watermill.LoggerAdapter
}

// newLeaser builds a leaser that outlives the subscription's soft end: it
// renews until the workers are done.
func newLeaser(p leaserParams) *leaser {
	return &leaser{loop: newLoop(context.Background()), m: p.m, every: p.every, held: p.held, name: p.name, logger: p.logger}
}

func (l *leaser) start() { l.goRun(l.run) }

func (l *leaser) run(ctx context.Context) {
	tick := time.NewTicker(l.every)
	defer tick.Stop()
	var nameTick <-chan time.Time
	if l.name != nil {
		t := time.NewTicker(nameKeyTTL / 3)
		defer t.Stop()
		nameTick = t.C
	}
	log := errlog.New(l.logger)
	for {
		select {
		case <-tick.C:
			l.renew(ctx, &log)
		case <-nameTick:
			l.name.refresh(ctx)
		case <-ctx.Done():
			return
		}
	}
}

func (l *leaser) renew(ctx context.Context, log *errlog.Log) {
	ids := l.held.renewable(l.every)
	if len(ids) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, l.every)
	defer cancel()
	lost, err := l.m.claimOwned(rctx, ids, 0)
	if err != nil {
		if ctx.Err() == nil {
			log.Failure("Cannot extend the leases of held entries", err, nil)
		}
		return
	}
	l.held.renewed(ids, lost)
	if len(lost) > 0 {
		l.logger.Info("Entries held here were taken over by another consumer", watermill.LogFields{"entries": len(lost)})
	}
}
