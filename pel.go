package millrace

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Operations on a group's pending entries list (PEL): every XCLAIM and
// XPENDING Millrace sends is here.

// pelChunk caps the IDs of one XCLAIM.
const pelChunk = 1000

// releaseIdle is the idle time released entries get: far above any sensible
// ClaimMinIdle, so that every other consumer's next XAUTOCLAIM takes them.
const releaseIdleMillis = 24 * 60 * 60 * 1000

// claimForRedelivery claims es back to consumer (XCLAIM min-idle 0), which
// counts a delivery, and reads their delivery counters in the same round
// trip. Entries no longer pending, or deleted, are not returned.
func claimForRedelivery(ctx context.Context, client redis.UniversalClient, stream, group, consumer string, es []*entry) ([]*entry, error) {
	ids := make([]string, len(es))
	byID := make(map[string]*entry, len(es))
	for i, e := range es {
		ids[i] = e.id
		byID[e.id] = e
	}
	pipe := client.Pipeline()
	claim := pipe.XClaim(ctx, &redis.XClaimArgs{Stream: stream, Group: group, Consumer: consumer, Messages: ids})
	counts := queueDeliveryCounts(ctx, pipe, stream, group, ids)
	if _, err := pipe.Exec(ctx); err != nil && !isNil(err) {
		return nil, err
	}
	msgs, err := claim.Result()
	if err != nil && !isNil(err) {
		return nil, err
	}
	out := make([]*entry, 0, len(msgs))
	for _, m := range msgs {
		e := byID[m.ID]
		if e == nil {
			continue
		}
		e.values = m.Values
		e.deliveries = counts.of(m.ID)
		out = append(out, e)
	}
	return out, nil
}

// deliveryCounts reads the delivery counters of ids (0 when not pending).
func deliveryCounts(ctx context.Context, client redis.UniversalClient, stream, group string, ids []string) (pendingCounts, error) {
	pipe := client.Pipeline()
	counts := queueDeliveryCounts(ctx, pipe, stream, group, ids)
	if _, err := pipe.Exec(ctx); err != nil && !isNil(err) {
		return nil, err
	}
	return counts, nil
}

// pendingCounts holds one XPENDING reply per ID.
type pendingCounts map[string]*redis.XPendingExtCmd

func queueDeliveryCounts(ctx context.Context, pipe redis.Pipeliner, stream, group string, ids []string) pendingCounts {
	counts := make(pendingCounts, len(ids))
	for _, id := range ids {
		counts[id] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: id, End: id, Count: 1})
	}
	return counts
}

func (c pendingCounts) of(id string) int64 {
	cmd := c[id]
	if cmd == nil {
		return 0
	}
	pending, err := cmd.Result()
	if err != nil || len(pending) == 0 {
		return 0
	}
	return pending[0].RetryCount
}

// extendLeases resets the idle time of entries this consumer still holds,
// without counting a delivery (XCLAIM ... JUSTID), so that no other consumer
// claims them while a handler is slow.
func extendLeases(ctx context.Context, client redis.UniversalClient, stream, group, consumer string, ids []string) error {
	for len(ids) > 0 {
		n := min(len(ids), pelChunk)
		err := client.XClaimJustID(ctx, &redis.XClaimArgs{Stream: stream, Group: group, Consumer: consumer, Messages: ids[:n]}).Err()
		if err != nil && !isNil(err) {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// releaseEntries marks entries as long idle (XCLAIM ... IDLE JUSTID) so
// other consumers of the group claim them on their next scan. They stay in
// this consumer's PEL, so a restart under the same name reads them too.
func releaseEntries(ctx context.Context, client redis.UniversalClient, stream, group, consumer string, ids []string) error {
	for len(ids) > 0 {
		n := min(len(ids), pelChunk)
		args := make([]interface{}, 0, 9+n)
		args = append(args, "xclaim", stream, group, consumer, 0)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		args = append(args, "idle", releaseIdleMillis, "justid")
		if err := client.Do(ctx, args...).Err(); err != nil && !isNil(err) {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

func isNil(err error) bool { return errors.Is(err, redis.Nil) }
