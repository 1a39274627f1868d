package millrace

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"
)

// claimer takes over entries left idle at other consumers for ClaimMinIdle
// (XAUTOCLAIM) and extends the leases of the entries this subscription holds
// so that nobody takes them while a handler is slow. It runs beside the
// reader, so reclaimed entries are interleaved with new ones.
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

// leaseEvery is how often held entries get their idle time reset: a third
// of ClaimMinIdle, so two consecutive resets may fail before anyone claims.
func (c *claimer) leaseEvery() time.Duration { return c.sub.config.ClaimMinIdle / 3 }

func (c *claimer) run() {
	defer close(c.done)
	ctx := c.sub.soft
	claimTick := time.NewTicker(c.sub.config.ClaimInterval)
	defer claimTick.Stop()
	leaseTick := time.NewTicker(c.leaseEvery())
	defer leaseTick.Stop()
	var pruneTick <-chan time.Time
	if c.sub.config.PruneConsumersAfter > 0 {
		t := time.NewTicker(min(pruneEvery, max(c.sub.config.PruneConsumersAfter/2, 10*time.Millisecond)))
		defer t.Stop()
		pruneTick = t.C
	}
	log := errorLog{logger: c.sub.logger}

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
		case <-leaseTick.C:
			c.extendLeases(ctx, &log)
		case <-pruneTick:
			c.pruneConsumers(ctx, &log)
		case <-ctx.Done():
			return
		}
	}
}

// claimAll scans the group's PEL once, claiming idle entries page by page.
func (c *claimer) claimAll(ctx context.Context, log *errorLog) {
	sub := c.sub
	cursor := "0-0"
	for ctx.Err() == nil {
		msgs, next, deleted, err := sub.client.XAutoClaimWithDeleted(ctx, &redis.XAutoClaimArgs{
			Stream:   sub.stream,
			Group:    sub.group,
			Consumer: sub.config.Consumer,
			MinIdle:  sub.config.ClaimMinIdle,
			Start:    cursor,
			Count:    int64(sub.config.ClaimBatch),
		}).Result()
		if err != nil {
			if ctx.Err() == nil && !isNoGroup(err) {
				log.failure("Cannot claim idle entries; retrying", err, sub.fields)
			}
			return
		}
		log.recovered("Claiming idle entries again", sub.fields)
		if len(deleted) > 0 {
			sub.logger.Debug("Cleared pending entries deleted from the stream", sub.fields.Add(watermill.LogFields{"entries": len(deleted)}))
		}
		if len(msgs) > 0 && !c.deliver(ctx, msgs, log) {
			return
		}
		if next == "0-0" || next == "" {
			return
		}
		cursor = next
	}
}

// deliver queues claimed entries with their delivery counters, skipping
// those this subscription already holds; false when stopping.
func (c *claimer) deliver(ctx context.Context, msgs []redis.XMessage, log *errorLog) bool {
	sub := c.sub
	es := sub.held.add(toEntries(msgs, 0))
	if len(es) == 0 {
		return true
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.id
	}
	if counts, err := deliveryCounts(ctx, sub.client, sub.stream, sub.group, ids); err == nil {
		for _, e := range es {
			e.deliveries = counts.of(e.id)
		}
	} else if ctx.Err() == nil {
		log.failure("Cannot read delivery counters of claimed entries", err, sub.fields)
	}
	sub.logger.Debug("Claimed idle entries", sub.fields.Add(watermill.LogFields{"entries": len(es)}))
	for _, e := range es {
		if !sub.push(e) {
			return false
		}
	}
	return true
}

func (c *claimer) extendLeases(ctx context.Context, log *errorLog) {
	sub := c.sub
	ids := sub.held.stale(c.leaseEvery())
	if len(ids) == 0 {
		return
	}
	if err := extendLeases(ctx, sub.client, sub.stream, sub.group, sub.config.Consumer, ids); err != nil && ctx.Err() == nil {
		log.failure("Cannot extend the leases of held entries", err, sub.fields)
	}
}

// pruneConsumers removes consumers idle for PruneConsumersAfter that hold
// nothing.
func (c *claimer) pruneConsumers(ctx context.Context, log *errorLog) {
	sub := c.sub
	res, err := PruneConsumers(ctx, sub.client, sub.topic, sub.group, sub.config.PruneConsumersAfter)
	if err != nil {
		if ctx.Err() == nil {
			log.failure("Cannot prune idle consumers", err, sub.fields)
		}
		return
	}
	if len(res.Removed) > 0 {
		sub.logger.Info("Removed idle consumers without pending entries", sub.fields.Add(watermill.LogFields{"removed": res.Removed}))
	}
}
