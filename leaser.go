package millrace

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/millrace/millrace/internal/errlog"
)

// leaser keeps the entries a subscription holds leased, and the lease on
// its consumer name (when ConsumerLease is on) renewed. It resets the idle
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
		t := time.NewTicker(l.name.ttl / 3)
		defer t.Stop()
		nameTick = t.C
	}
	log := errlog.New(l.logger)
	nameLog := errlog.New(l.logger)
	for {
		select {
		case <-tick.C:
			l.renew(ctx, &log)
		case <-nameTick:
			l.renewName(ctx, &nameLog)
		case <-ctx.Done():
			return
		}
	}
}

// renewName extends the lease on the consumer name. A lease found held by
// another Subscriber (taken after this one could not renew it in time)
// is reported: both now read as the same consumer.
func (l *leaser) renewName(ctx context.Context, log *errlog.Log) {
	ok, refused, err := l.name.renew(ctx)
	if refused != nil {
		l.logger.Error("Cannot renew the lease on the consumer name in one command (ACL: +getex); renewing it with a script", refused, nil)
	}
	switch {
	case err != nil:
		if ctx.Err() == nil {
			log.Failure("Cannot renew the lease on the consumer name", err, nil)
		}
	case !ok:
		log.Failure("Another live subscriber took this consumer name; both read the same pending entries", ErrConsumerInUse, nil)
	default:
		log.Recovered("Holding the consumer name again", nil)
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
