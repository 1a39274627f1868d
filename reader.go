package millrace

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/rediserr"
)

// reader feeds the queue from the stream. In a group it first reads this
// consumer's own pending entries (from "0": what a previous run with the same
// name left unacknowledged), then new ones (">") with a bounded BLOCK. In
// broadcast mode it follows the stream with XREAD from where Subscribe
// found its end. Errors never end it: it backs off and tries again.
type reader struct {
	sub    *subscription
	lastID string // last entry read, for broadcast and for recreating a group
	retry  backoff
	log    errorLog
	// ownPendingRead is closed once this consumer's own pending entries are
	// held (or were left to another subscription of the same consumer): from
	// then on XAUTOCLAIM cannot mistake them for a dead consumer's.
	ownPendingRead chan struct{}
}

func newReader(sub *subscription) *reader {
	return &reader{
		sub:            sub,
		retry:          newRetryBackoff(),
		log:            errorLog{logger: sub.logger},
		ownPendingRead: make(chan struct{}),
	}
}

func (r *reader) run() {
	if r.sub.group == "" {
		close(r.ownPendingRead)
		r.lastID = r.sub.lastReadID
		r.loop(r.readBroadcast)
		return
	}
	if !r.sub.sharesConsumer {
		r.loop(r.readOwnPending)
	}
	close(r.ownPendingRead)
	r.loop(r.readNew)
}

// loop calls read until it reports done or the subscription stops, pacing
// failures with backoff.
func (r *reader) loop(read func(context.Context) (done bool, err error)) {
	ctx := r.sub.soft
	for ctx.Err() == nil {
		done, err := read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.failed(ctx, err)
			continue
		}
		r.retry.reset()
		r.log.recovered("Reading from Redis again", r.sub.fields)
		if done {
			return
		}
	}
}

func (r *reader) failed(ctx context.Context, err error) {
	sub := r.sub
	if rediserr.IsNoGroup(err) && sub.group != "" {
		start := sub.config.NewGroupStartID
		if r.lastID != "" {
			start = r.lastID
		}
		sub.logger.Info("Consumer group or stream is gone; recreating it", sub.fields.Add(watermill.LogFields{"start_id": start}))
		if err = createGroup(ctx, sub.client, sub.stream, sub.group, start); err == nil {
			return
		}
	}
	r.log.failure("Cannot read from Redis; retrying", err, sub.fields)
	reloadOnNetworkError(sub.client, err)
	sleepCtx(ctx, r.retry.next())
}

// readOwnPending lists one page of this consumer's pending entries (what a
// previous run under the same name left unacknowledged) with XPENDING, which
// counts no delivery; each is claimed when a worker hands it out. Done when
// there are no more.
func (r *reader) readOwnPending(ctx context.Context) (bool, error) {
	sub := r.sub
	start := "-"
	if r.lastID != "" {
		start = "(" + r.lastID
	}
	pending, err := sub.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream:   sub.stream,
		Group:    sub.group,
		Start:    start,
		End:      "+",
		Count:    int64(sub.config.Prefetch),
		Consumer: sub.config.Consumer,
	}).Result()
	if err != nil || len(pending) == 0 {
		return err == nil, err
	}
	es := make([]*entry, len(pending))
	for i, p := range pending {
		es[i] = &entry{id: p.ID, deliveries: p.RetryCount, claim: true}
	}
	r.lastID = es[len(es)-1].id
	return !r.pushHeld(es), nil
}

// readNew waits up to BlockTime for entries never delivered to the group.
func (r *reader) readNew(ctx context.Context) (bool, error) {
	msgs, err := r.readGroup(ctx, ">", r.sub.config.BlockTime)
	if err != nil || len(msgs) == 0 {
		return false, err
	}
	es := toEntries(msgs, 1)
	r.lastID = es[len(es)-1].id
	return !r.pushHeld(es), nil
}

func (r *reader) readGroup(ctx context.Context, id string, block time.Duration) ([]redis.XMessage, error) {
	sub := r.sub
	streams, err := sub.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    sub.group,
		Consumer: sub.config.Consumer,
		Streams:  []string{sub.stream, id},
		Count:    int64(sub.config.Prefetch),
		Block:    block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil || len(streams) == 0 {
		return nil, err
	}
	return streams[0].Messages, nil
}

// readBroadcast waits up to BlockTime for entries after lastID.
func (r *reader) readBroadcast(ctx context.Context) (bool, error) {
	sub := r.sub
	streams, err := sub.client.XRead(ctx, &redis.XReadArgs{
		Streams: []string{sub.stream, r.lastID},
		Count:   int64(sub.config.Prefetch),
		Block:   sub.config.BlockTime,
	}).Result()
	if errors.Is(err, redis.Nil) || (err == nil && len(streams) == 0) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	es := toEntries(streams[0].Messages, 1)
	if len(es) == 0 {
		return false, nil
	}
	r.lastID = es[len(es)-1].id
	for _, e := range es {
		if !sub.push(e) {
			return true, nil
		}
	}
	return false, nil
}

// pushHeld records es as held and queues them; false when stopping.
func (r *reader) pushHeld(es []*entry) bool {
	for _, e := range r.sub.held.add(es) {
		if !r.sub.push(e) {
			return false
		}
	}
	return true
}

func toEntries(msgs []redis.XMessage, deliveries int64) []*entry {
	es := make([]*entry, len(msgs))
	for i, m := range msgs {
		es[i] = &entry{id: m.ID, values: m.Values, deliveries: deliveries}
	}
	return es
}
