package millrace

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/rediserr"
)

// Operations on a group's pending entries list (PEL): every XCLAIM and
// XPENDING Millrace sends is here.

// pelChunk caps the IDs of one XCLAIM or script call.
const pelChunk = 1000

// releaseIdle is the idle time released entries get: far above any sensible
// ClaimMinIdle, so that every other consumer's next XAUTOCLAIM takes them.
const releaseIdle = 24 * time.Hour

// claimCounted claims es to consumer (XCLAIM min-idle 0), which counts a
// delivery, and reads their delivery counters in the same round trip.
// Entries no longer pending, or deleted, are not returned.
func claimCounted(ctx context.Context, client redis.UniversalClient, stream, group, consumer string, es []*entry) ([]*entry, error) {
	ids := make([]string, len(es))
	byID := make(map[string]*entry, len(es))
	for i, e := range es {
		ids[i] = e.id
		byID[e.id] = e
	}
	pipe := client.Pipeline()
	claim := pipe.XClaim(ctx, &redis.XClaimArgs{Stream: stream, Group: group, Consumer: consumer, Messages: ids})
	counts := queueDeliveryCounts(ctx, pipe, stream, group, ids)
	if _, err := pipe.Exec(ctx); err != nil && !rediserr.IsNil(err) {
		return nil, err
	}
	msgs, err := claim.Result()
	if err != nil && !rediserr.IsNil(err) {
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

// claimOwnedScript resets the idle time of the entries that are still
// pending at this consumer, without counting a delivery, and skips the
// others: a plain XCLAIM with min-idle 0 would take an entry back from a
// consumer that legitimately claimed it.
//
// KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] idle time in ms
// to set, ARGV[4...] entry IDs. Returns the IDs not pending at the consumer.
var claimOwnedScript = redis.NewScript(`
local lost = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE', ARGV[3], 'JUSTID')
  else
    table.insert(lost, id)
  end
end
return lost
`)

// claimOwned sets the idle time of ids that consumer still owns to idle and
// returns those it does not own any more. An idle of 0 extends their lease;
// a long one releases them to the other consumers.
func claimOwned(ctx context.Context, client redis.UniversalClient, stream, group, consumer string, ids []string, idle time.Duration) ([]string, error) {
	var lost []string
	for len(ids) > 0 {
		n := min(len(ids), pelChunk)
		args := make([]interface{}, 0, 3+n)
		args = append(args, group, consumer, idle.Milliseconds())
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		reply, err := claimOwnedScript.Run(ctx, client, []string{stream}, args...).StringSlice()
		if err != nil && !rediserr.IsNil(err) {
			return lost, err
		}
		lost = append(lost, reply...)
		ids = ids[n:]
	}
	return lost, nil
}

// releaseEntries marks the entries consumer still owns as long idle, so
// other consumers of the group claim them on their next scan. They stay in
// this consumer's PEL, so a restart under the same name reads them too.
func releaseEntries(ctx context.Context, client redis.UniversalClient, stream, group, consumer string, ids []string) error {
	_, err := claimOwned(ctx, client, stream, group, consumer, ids, releaseIdle)
	return err
}
