package millrace

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
)

// claimer takes over entries left idle at other consumers for minIdle
// (XAUTOCLAIM), a queue's worth at a time, and removes idle consumers that
// hold nothing. It runs beside the reader, so reclaimed entries are
// interleaved with new ones.
type claimer struct {
	loop
	m          *member
	minIdle    time.Duration
	interval   time.Duration
	batch      int           // XAUTOCLAIM COUNT, at most the queue's size
	pruneAfter time.Duration // <= 0: no pruning
	// ownPendingRead is closed once the reader holds this consumer's own
	// pending entries; claiming before would take them as a dead
	// consumer's.
	ownPendingRead <-chan struct{}
	// quiet is the reader's quiet (nil without a news waiter). While the
	// reader waits in the same wait in which the group's PEL was found
	// empty (emptyIn), no entry was added, so none can have been delivered
	// and nothing is left to claim: the scan is skipped, except once every
	// quietLook. A restart or a failover, which may roll the PEL back to
	// before an XACK, fails the news waiter's read, which wakes every
	// reader: each then waits anew and its claimer looks. The rare look
	// covers what neither announces, at a cost flat enough for thousands of
	// quiet topics.
	quiet    *atomic.Uint64
	emptyIn  uint64
	nextLook time.Time
	// paused is set while an operator has paused the group: nothing is
	// taken over meanwhile (nil in tests).
	paused *atomic.Bool
	held   *holder
	queue  *queue
	logger watermill.LoggerAdapter
}

type claimerParams struct {
	parent         context.Context // the subscription's soft end
	m              *member
	minIdle        time.Duration // ClaimMinIdle
	interval       time.Duration // ClaimInterval
	batch          int
	pruneAfter     time.Duration // PruneConsumersAfter
	ownPendingRead <-chan struct{}
	quiet          *atomic.Uint64 // nil without a news waiter
	paused         *atomic.Bool
	held           *holder
	queue          *queue
	logger         watermill.LoggerAdapter
}

func newClaimer(p claimerParams) *claimer {
	return &claimer{
		loop:           newLoop(p.parent),
		m:              p.m,
		minIdle:        p.minIdle,
		interval:       p.interval,
		batch:          p.batch,
		pruneAfter:     p.pruneAfter,
		ownPendingRead: p.ownPendingRead,
		quiet:          p.quiet,
		paused:         p.paused,
		held:           p.held,
		queue:          p.queue,
		logger:         p.logger,
	}
}

// quietLook is how long a claimer waits before it looks again at a quiet
// group's PEL, found empty since its reader began waiting for news: ten
// times ClaimMinIdle on average (5 minutes by default), spread between 5
// and 15 times so that the looks of topics that went quiet together do not
// come together.
func quietLook(minIdle time.Duration) time.Duration {
	return 5*minIdle + rand.N(10*minIdle)
}

// pruneEvery is how often idle consumers are looked for, at most; within a
// quarter of PruneConsumersAfter otherwise.
const pruneEvery = 15 * time.Minute

func (c *claimer) start() { c.goRun(c.run) }

func (c *claimer) run(ctx context.Context) {
	claimTick := time.NewTicker(c.interval)
	defer claimTick.Stop()
	var pruneTick <-chan time.Time
	if c.pruneAfter > 0 {
		t := time.NewTicker(min(pruneEvery, max(c.pruneAfter/4, 10*time.Millisecond)))
		defer t.Stop()
		pruneTick = t.C
	}
	log := errlog.New(c.logger)
	pruneLog := errlog.New(c.logger)

	select {
	case <-c.ownPendingRead:
	case <-ctx.Done():
		return
	}
	c.claimAll(ctx, &log)
	for {
		select {
		case <-claimTick.C:
			c.claimAll(ctx, &log)
		case <-pruneTick:
			c.prune(ctx, &pruneLog)
		case <-ctx.Done():
			return
		}
	}
}

// claimAll scans the group's PEL once, taking over idle entries page by
// page, each page no larger than the queue: the claimed entries wait for
// room in the queue beside the reader's, so new and reclaimed entries are
// interleaved (the leaser keeps them leased meanwhile). Entries deleted
// from the stream are dropped from the PEL by Redis 7.
func (c *claimer) claimAll(ctx context.Context, log *errlog.Log) {
	if c.paused != nil && c.paused.Load() || c.nothingToClaim(ctx) {
		return
	}
	cursor := "0-0"
	for ctx.Err() == nil {
		ids, next, err := c.m.autoClaim(ctx, c.minIdle, cursor, c.batch)
		if err != nil {
			if ctx.Err() == nil && !rediserr.IsNoGroup(err) {
				log.Failure("Cannot claim idle entries; retrying", err, nil)
			}
			return
		}
		log.Recovered("Claiming idle entries again", nil)
		if len(ids) > 0 && !c.deliver(ids) {
			return
		}
		if next == "0-0" || next == "" {
			return
		}
		cursor = next
	}
}

// nothingToClaim reports whether the group's PEL is known to be empty: it
// was while the reader has been waiting for news since, or it is now (one
// XPENDING, sent only while the reader waits).
func (c *claimer) nothingToClaim(ctx context.Context) bool {
	if c.quiet == nil {
		return false
	}
	q := c.quiet.Load()
	if q == 0 {
		return false
	}
	if q == c.emptyIn && time.Now().Before(c.nextLook) {
		return true
	}
	n, err := c.m.pendingCount(ctx)
	if err != nil || n > 0 {
		return false
	}
	c.emptyIn, c.nextLook = q, time.Now().Add(quietLook(c.minIdle))
	return true
}

// deliver queues the entries taken over, skipping those this subscription
// already holds; false when stopping. They were claimed with JUSTID, which
// counts no delivery: a worker counts one when it hands each out.
func (c *claimer) deliver(ids []string) bool {
	es := make([]*entry, len(ids))
	for i, id := range ids {
		es[i] = &entry{id: id, claim: true}
	}
	es = c.held.add(es)
	if len(es) == 0 {
		return true
	}
	c.logger.Debug("Took over idle entries", watermill.LogFields{"entries": len(es)})
	for _, e := range es {
		if !c.queue.push(e) {
			return false
		}
	}
	return true
}

// prune removes consumers idle for pruneAfter that hold nothing.
func (c *claimer) prune(ctx context.Context, log *errlog.Log) {
	cctx, cancel := bounded(ctx, 0)
	defer cancel()
	removed, _, err := streams.PruneConsumers(cctx, c.m.client, c.m.stream, c.m.group, c.pruneAfter)
	if err != nil {
		if ctx.Err() == nil {
			log.Failure("Cannot prune idle consumers", err, nil)
		}
		return
	}
	if len(removed) > 0 {
		c.logger.Info("Removed idle consumers without pending entries", watermill.LogFields{"removed": removed})
	}
}
