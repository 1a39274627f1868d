package millrace

import (
	"context"
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
	loop
	client   redis.UniversalClient
	stream   string
	m        *member // nil in broadcast mode
	newGroup string  // where a group recreated before any read starts
	prefetch int
	block    time.Duration
	// skipOwnPending is set when another subscription of the same Subscriber
	// reads the topic as the same consumer: that one holds the consumer's
	// pending entries, so this one does not read them again.
	skipOwnPending bool
	held           *heldSet
	queue          *queue
	logger         watermill.LoggerAdapter

	lastID string // last entry read: where broadcast goes on and a group is recreated
	retry  backoff
	log    errorLog
	// ownPendingRead is closed once this consumer's own pending entries are
	// held (or were left to another subscription of the same consumer): from
	// then on XAUTOCLAIM cannot mistake them for a dead consumer's.
	ownPendingRead chan struct{}
}

func (r *reader) start() { r.goRun(r.run) }

func (r *reader) run(ctx context.Context) {
	if r.m == nil {
		close(r.ownPendingRead)
		r.loopOn(ctx, r.readBroadcast)
		return
	}
	if !r.skipOwnPending {
		r.loopOn(ctx, r.readOwnPending)
	}
	close(r.ownPendingRead)
	r.loopOn(ctx, r.readNew)
}

// loopOn calls read until it reports done or ctx ends, pacing failures
// with backoff.
func (r *reader) loopOn(ctx context.Context, read func(context.Context) (done bool, err error)) {
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
		r.log.recovered("Reading from Redis again", nil)
		if done {
			return
		}
	}
}

func (r *reader) failed(ctx context.Context, err error) {
	if rediserr.IsNoGroup(err) && r.m != nil {
		start := r.newGroup
		if r.lastID != "" {
			start = r.lastID
		}
		r.logger.Info("Consumer group or stream is gone; recreating it", watermill.LogFields{"start_id": start})
		if err = createGroup(ctx, r.client, r.stream, r.m.group, start); err == nil {
			return
		}
	}
	r.log.failure("Cannot read from Redis; retrying", err, nil)
	reloadOnNetworkError(r.client, err)
	sleepCtx(ctx, r.retry.next())
}

// readOwnPending lists one page of this consumer's pending entries (what a
// previous run under the same name left unacknowledged); each is claimed,
// counting a delivery, when a worker hands it out. Done when there are no
// more.
func (r *reader) readOwnPending(ctx context.Context) (bool, error) {
	start := "-"
	if r.lastID != "" {
		start = "(" + r.lastID
	}
	pending, err := r.m.ownPending(ctx, start, r.prefetch)
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

// readNew waits up to the block time for entries never delivered to the
// group.
func (r *reader) readNew(ctx context.Context) (bool, error) {
	msgs, err := r.m.read(ctx, ">", r.prefetch, r.block)
	if err != nil || len(msgs) == 0 {
		return false, err
	}
	es := toEntries(msgs)
	r.lastID = es[len(es)-1].id
	return !r.pushHeld(es), nil
}

// readBroadcast waits up to the block time for entries after lastID.
func (r *reader) readBroadcast(ctx context.Context) (bool, error) {
	streams, err := r.client.XRead(ctx, &redis.XReadArgs{
		Streams: []string{r.stream, r.lastID},
		Count:   int64(r.prefetch),
		Block:   r.block,
	}).Result()
	if rediserr.IsNil(err) || (err == nil && len(streams) == 0) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	es := toEntries(streams[0].Messages)
	if len(es) == 0 {
		return false, nil
	}
	r.lastID = es[len(es)-1].id
	for _, e := range es {
		if !r.queue.push(e) {
			return true, nil
		}
	}
	return false, nil
}

// pushHeld records es as held and queues them; false when stopping.
func (r *reader) pushHeld(es []*entry) bool {
	for _, e := range r.held.add(es) {
		if !r.queue.push(e) {
			return false
		}
	}
	return true
}

// toEntries makes entries of messages just read, on their first delivery.
func toEntries(msgs []redis.XMessage) []*entry {
	es := make([]*entry, len(msgs))
	for i, m := range msgs {
		es[i] = &entry{id: m.ID, values: m.Values, deliveries: 1}
	}
	return es
}
