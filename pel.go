package millrace

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/rediserr"
)

// member is a consumer in a consumer group of a stream: what every command
// on the group and its pending entries list (PEL) needs. Every XREADGROUP,
// XPENDING, XCLAIM, XAUTOCLAIM, XACK and XRANGE of a
// single entry Millrace sends is a method here.
type member struct {
	client                  redis.UniversalClient
	stream, group, consumer string
}

// pelChunk caps the IDs of one XCLAIM or script call.
const pelChunk = 1000

// releaseIdle is the idle time released entries get: far above any sensible
// ClaimMinIdle, so that every other consumer's next XAUTOCLAIM takes them.
const releaseIdle = 24 * time.Hour

// read reads up to count entries after id ("0" for this consumer's pending
// ones, ">" for new ones), waiting up to block for new ones (no BLOCK when
// negative).
func (m member) read(ctx context.Context, id string, count int, block time.Duration) ([]redis.XMessage, error) {
	streams, err := m.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    m.group,
		Consumer: m.consumer,
		Streams:  []string{m.stream, id},
		Count:    int64(count),
		Block:    block,
	}).Result()
	if rediserr.IsNil(err) {
		return nil, nil
	}
	if err != nil || len(streams) == 0 {
		return nil, err
	}
	return streams[0].Messages, nil
}

// readWithEnd is read of new entries without blocking, preceded in one
// round trip by the ID of the stream's last entry ("0-0" for none) before
// the read: when fewer than count entries come back, every entry up to
// that ID has been delivered to the group, so entries newer than the later
// of it and the last one read are all the group has not seen. Entries read
// are returned even when the end could not be learnt (then with its error).
func (m member) readWithEnd(ctx context.Context, count int) (string, []redis.XMessage, error) {
	var end *redis.XMessageSliceCmd
	var read *redis.XStreamSliceCmd
	_, _ = m.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		end = p.XRevRangeN(ctx, m.stream, "+", "-", 1)
		read = p.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group:    m.group,
			Consumer: m.consumer,
			Streams:  []string{m.stream, ">"},
			Count:    int64(count),
			Block:    -1,
		})
		return nil
	})
	if err := read.Err(); err != nil && !rediserr.IsNil(err) {
		return "", nil, err
	}
	var msgs []redis.XMessage
	if streams := read.Val(); len(streams) > 0 {
		msgs = streams[0].Messages
	}
	if err := end.Err(); err != nil && !rediserr.IsNil(err) {
		return "", msgs, err
	}
	last := "0-0"
	if e := end.Val(); len(e) > 0 {
		last = e[0].ID
	}
	if len(msgs) > 0 && entryid.Compare(msgs[len(msgs)-1].ID, last) > 0 {
		last = msgs[len(msgs)-1].ID
	}
	return last, msgs, nil
}

// join adds the consumer to the group (XGROUP CREATECONSUMER), so that it
// is listed before it reads its first entry: a read that finds nothing new
// does not add it.
func (m member) join(ctx context.Context) error {
	return m.client.XGroupCreateConsumer(ctx, m.stream, m.group, m.consumer).Err()
}

// deadLetterScript adds ARGV[3..] as an entry of the dead-letter stream
// KEYS[1] and acknowledges entry ARGV[2] of group ARGV[1] on KEYS[2], in
// one step: a failover keeps both or loses both (then the entry is still
// pending and is dead-lettered again), never the XACK alone. A refused XADD
// is returned and nothing is acknowledged.
var deadLetterScript = redis.NewScript(`
local id = redis.pcall('XADD', KEYS[1], '*', unpack(ARGV, 3))
if type(id) == 'table' and id.err then
  return id
end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
return id
`)

// deadLetter moves entry id to the dead-letter stream dlq and acknowledges
// it, atomically (deadLetterScript); values are the dead letter's fields.
func (m member) deadLetter(ctx context.Context, dlq string, values []interface{}, id string) error {
	args := make([]interface{}, 0, 2+len(values))
	args = append(args, m.group, id)
	args = append(args, values...)
	return deadLetterScript.Run(ctx, m.client, []string{dlq, m.stream}, args...).Err()
}

// pendingCount is the number of entries pending in the group (XPENDING
// summary form).
func (m member) pendingCount(ctx context.Context) (int64, error) {
	p, err := m.client.XPending(ctx, m.stream, m.group).Result()
	if err != nil {
		return 0, err
	}
	return p.Count, nil
}

// ownPending lists up to count of this consumer's pending entries after
// start ("-" for the first), with XPENDING, which counts no delivery.
func (m member) ownPending(ctx context.Context, start string, count int) ([]redis.XPendingExt, error) {
	return m.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream:   m.stream,
		Group:    m.group,
		Start:    start,
		End:      "+",
		Count:    int64(count),
		Consumer: m.consumer,
	}).Result()
}

// autoClaim takes over up to count entries idle at least minIdle from the
// PEL scan position cursor (XAUTOCLAIM ... JUSTID, which counts no
// delivery). next is "0-0" at the end of the scan.
func (m member) autoClaim(ctx context.Context, minIdle time.Duration, cursor string, count int) (ids []string, next string, err error) {
	return m.client.XAutoClaimJustID(ctx, &redis.XAutoClaimArgs{
		Stream:   m.stream,
		Group:    m.group,
		Consumer: m.consumer,
		MinIdle:  minIdle,
		Start:    cursor,
		Count:    int64(count),
	}).Result()
}

// peek reads the fields of es into them (XRANGE id id, pipelined), which
// counts no delivery. An entry deleted from the stream gets none.
func (m member) peek(ctx context.Context, es []*entry) error {
	pipe := m.client.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(es))
	for i, e := range es {
		cmds[i] = pipe.XRangeN(ctx, m.stream, e.id, e.id, 1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for i, cmd := range cmds {
		if msgs := cmd.Val(); len(msgs) == 1 {
			es[i].values = msgs[0].Values
		}
	}
	return nil
}

// ack acknowledges ids (XACK).
func (m member) ack(ctx context.Context, ids ...string) error {
	return m.client.XAck(ctx, m.stream, m.group, ids...).Err()
}

// claimCounted claims es to this consumer (XCLAIM min-idle 0), which counts
// a delivery, and reads their delivery counters in the same round trip.
// Entries no longer pending, or deleted, are not returned.
func (m member) claimCounted(ctx context.Context, es []*entry) ([]*entry, error) {
	ids := make([]string, len(es))
	byID := make(map[string]*entry, len(es))
	for i, e := range es {
		ids[i] = e.id
		byID[e.id] = e
	}
	pipe := m.client.Pipeline()
	claim := pipe.XClaim(ctx, &redis.XClaimArgs{Stream: m.stream, Group: m.group, Consumer: m.consumer, Messages: ids})
	counts := make(map[string]*redis.XPendingExtCmd, len(ids))
	for _, id := range ids {
		counts[id] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: m.stream, Group: m.group, Start: id, End: id, Count: 1})
	}
	if _, err := pipe.Exec(ctx); err != nil && !rediserr.IsNil(err) {
		return nil, err
	}
	msgs, err := claim.Result()
	if err != nil && !rediserr.IsNil(err) {
		return nil, err
	}
	out := make([]*entry, 0, len(msgs))
	for _, msg := range msgs {
		e := byID[msg.ID]
		if e == nil {
			continue
		}
		e.values = msg.Values
		if pending, err := counts[msg.ID].Result(); err == nil && len(pending) > 0 {
			e.deliveries = pending[0].RetryCount
		}
		out = append(out, e)
	}
	return out, nil
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

// claimOwned sets the idle time of ids that this consumer still owns to
// idle and returns those it does not own any more. An idle of 0 extends
// their lease; a long one releases them to the other consumers.
func (m member) claimOwned(ctx context.Context, ids []string, idle time.Duration) ([]string, error) {
	var lost []string
	for len(ids) > 0 {
		n := min(len(ids), pelChunk)
		args := make([]interface{}, 0, 3+n)
		args = append(args, m.group, m.consumer, idle.Milliseconds())
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		reply, err := claimOwnedScript.Run(ctx, m.client, []string{m.stream}, args...).StringSlice()
		if err != nil && !rediserr.IsNil(err) {
			return lost, err
		}
		lost = append(lost, reply...)
		ids = ids[n:]
	}
	return lost, nil
}

// release marks the entries this consumer still owns as long idle, so other
// consumers of the group claim them on their next scan. They stay in this
// consumer's PEL, so a restart under the same name reads them too.
func (m member) release(ctx context.Context, ids []string) error {
	_, err := m.claimOwned(ctx, ids, releaseIdle)
	return err
}
