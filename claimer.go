package millrace

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
)

// claimer takes over entries left idle at other consumers for ClaimMinIdle
// (XAUTOCLAIM), a queue's worth at a time, and removes idle consumers that
// hold nothing. It runs beside the reader, so reclaimed
// entries are interleaved with new ones.
type claimer struct {
	sub  *subscription
	done chan struct{}
}

func newClaimer(sub *subscription) *claimer { return &claimer{sub: sub, done: make(chan struct{})} }

func (c *claimer) start() { go c.run() }

// stop waits for the goroutine, which ends with the subscription's soft
// context.
func (c *claimer) stop() { <-c.done }

// pruneEvery is how often idle consumers are looked for, at most.
const pruneEvery = time.Minute

func (c *claimer) run() {
	defer close(c.done)
	ctx := c.sub.soft
	claimTick := time.NewTicker(c.sub.config.ClaimInterval)
	defer claimTick.Stop()
	var pruneTick <-chan time.Time
	if c.sub.config.PruneConsumersAfter > 0 {
		t := time.NewTicker(min(pruneEvery, max(c.sub.config.PruneConsumersAfter/2, 10*time.Millisecond)))
		defer t.Stop()
		pruneTick = t.C
	}
	log := errorLog{logger: c.sub.logger}
	pruneLog := errorLog{logger: c.sub.logger}

	select {
	case <-c.sub.reader.ownPendingRead:
	case <-ctx.Done():
		return
	}
	c.claimAll(ctx, &log)
	for {
		select {
		case <-claimTick.C:
			c.claimAll(ctx, &log)
		case <-pruneTick:
			c.pruneConsumers(ctx, &pruneLog)
		case <-ctx.Done():
			return
		}
	}
}

// claimAll scans the group's PEL once, taking over idle entries page by page
// (XAUTOCLAIM ... JUSTID), each page no larger than the queue. Entries
// deleted from the stream are dropped from the PEL by Redis 7.
func (c *claimer) claimAll(ctx context.Context, log *errorLog) {
	sub := c.sub
	cursor := "0-0"
	for ctx.Err() == nil {
		// At most a queue's worth at a time: the claimed entries wait for
		// room in the queue beside the reader's, so new and reclaimed
		// entries are interleaved (the leaser keeps them leased meanwhile).
		room := min(sub.config.ClaimBatch, cap(sub.queue))
		ids, next, err := sub.client.XAutoClaimJustID(ctx, &redis.XAutoClaimArgs{
			Stream:   sub.stream,
			Group:    sub.group,
			Consumer: sub.config.Consumer,
			MinIdle:  sub.config.ClaimMinIdle,
			Start:    cursor,
			Count:    int64(room),
		}).Result()
		if err != nil {
			if ctx.Err() == nil && !rediserr.IsNoGroup(err) {
				log.failure("Cannot claim idle entries; retrying", err, sub.fields)
			}
			return
		}
		log.recovered("Claiming idle entries again", sub.fields)
		if len(ids) > 0 && !c.deliver(ids) {
			return
		}
		if next == "0-0" || next == "" {
			return
		}
		cursor = next
	}
}

// deliver queues the entries taken over, skipping those this subscription
// already holds; false when stopping. They were claimed with JUSTID, which
// counts no delivery: a worker counts one when it hands each out.
func (c *claimer) deliver(ids []string) bool {
	sub := c.sub
	es := make([]*entry, len(ids))
	for i, id := range ids {
		es[i] = &entry{id: id, claim: true}
	}
	es = sub.held.add(es)
	if len(es) == 0 {
		return true
	}
	sub.logger.Debug("Took over idle entries", sub.fields.Add(watermill.LogFields{"entries": len(es)}))
	for _, e := range es {
		if !sub.push(e) {
			return false
		}
	}
	return true
}

// pruneConsumers removes consumers idle for PruneConsumersAfter that hold
// nothing.
func (c *claimer) pruneConsumers(ctx context.Context, log *errorLog) {
	sub := c.sub
	removed, _, err := streams.PruneConsumers(ctx, sub.client, sub.stream, sub.group, sub.config.PruneConsumersAfter)
	if err != nil {
		if ctx.Err() == nil {
			log.failure("Cannot prune idle consumers", err, sub.fields)
		}
		return
	}
	if len(removed) > 0 {
		sub.logger.Info("Removed idle consumers without pending entries", sub.fields.Add(watermill.LogFields{"removed": removed}))
	}
}
