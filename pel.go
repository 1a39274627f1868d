package millrace

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/noretry"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/reply"
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
	ctx, cancel := bounded(ctx, block)
	defer cancel()
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
// of it and the last one read are all the group has not seen. err is the
// read's error; endErr says the end could not be learnt (then the entries
// read are returned all the same).
func (m member) readWithEnd(ctx context.Context, count int) (end string, msgs []redis.XMessage, endErr, err error) {
	ctx, cancel := bounded(ctx, 0)
	defer cancel()
	var rev *redis.XMessageSliceCmd
	var read *redis.XStreamSliceCmd
	_, _ = m.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		rev = p.XRevRangeN(ctx, m.stream, "+", "-", 1)
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
		return "", nil, nil, err
	}
	if streams := read.Val(); len(streams) > 0 {
		msgs = streams[0].Messages
	}
	if err := rev.Err(); err != nil && !rediserr.IsNil(err) {
		return "", msgs, err, nil
	}
	end = "0-0"
	if e := rev.Val(); len(e) > 0 {
		end = e[0].ID
	}
	if len(msgs) > 0 && entryid.Compare(msgs[len(msgs)-1].ID, end) > 0 {
		end = msgs[len(msgs)-1].ID
	}
	return end, msgs, nil, nil
}

// join adds the consumer to the group (XGROUP CREATECONSUMER), so that it
// is listed before it reads its first entry: a read that finds nothing new
// does not add it.
func (m member) join(ctx context.Context) error {
	return m.client.XGroupCreateConsumer(ctx, m.stream, m.group, m.consumer).Err()
}

// deadLetterScript adds ARGV[4..] as an entry of the dead-letter stream
// KEYS[1] and acknowledges entry ARGV[2] of group ARGV[1] on KEYS[2], and
// deletes the entry's last error KEYS[3] (unless the ACL refuses DEL: then
// it expires), in one step: a failover keeps both or loses both (then the entry is still
// pending and is dead-lettered again), never the XACK alone. It does so
// only while the entry is pending at consumer ARGV[3], so that running it
// again (a resend after a lost reply) adds no second dead letter, and an
// entry another consumer took over is left to it: then it returns false. A
// refused XADD is returned and nothing is acknowledged.
var deadLetterScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[2], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then
  return false
end
local id = redis.pcall('XADD', KEYS[1], '*', unpack(ARGV, 4))
if type(id) == 'table' and id.err then
  return id
end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.pcall('DEL', KEYS[3])
return id
`)

// deadLetter moves entry id to the dead-letter stream dlq and acknowledges
// it, atomically (deadLetterScript), deleting its last error lastErr (a key
// of the stream's slot); values are the dead letter's fields. moved is
// false when the entry was not pending at this consumer.
func (m member) deadLetter(ctx context.Context, dlq string, values []interface{}, id, lastErr string) (moved bool, err error) {
	args := make([]interface{}, 0, 3+len(values))
	args = append(args, m.group, id, m.consumer)
	args = append(args, values...)
	err = deadLetterScript.Run(ctx, m.client, []string{dlq, m.stream, lastErr}, args...).Err()
	if rediserr.IsNil(err) {
		return false, nil
	}
	return err == nil, err
}

// copyOnceScript adds ARGV[2..] to stream KEYS[1] unless marker KEYS[2]
// exists, and sets the marker for ARGV[1] ms: a dead letter that cannot be
// written in one script with its XACK (Cluster, the two streams in
// different slots) is added at most once however often it is sent.
var copyOnceScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then
  return false
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return id
`)

// deadLetterCopyTTL is how long a dead letter's marker is kept: longer than
// the retries of the XACK that follows it.
const deadLetterCopyTTL = time.Hour

// deadLetterCopy adds entry id to the dead-letter stream dlq (a topic of
// another Cluster slot) at most once; the caller acknowledges it after.
func (m member) deadLetterCopy(ctx context.Context, dlq string, values []interface{}, id string) error {
	args := make([]interface{}, 0, 1+len(values))
	args = append(args, deadLetterCopyTTL.Milliseconds())
	args = append(args, values...)
	marker := keys.DeadLettered(dlq, m.stream, m.group, id)
	err := copyOnceScript.Run(ctx, m.client, []string{dlq, marker}, args...).Err()
	if rediserr.IsNil(err) {
		return nil
	}
	return err
}

// pendingCount is the number of entries pending in the group (XPENDING
// summary form).
func (m member) pendingCount(ctx context.Context) (int64, error) {
	ctx, cancel := bounded(ctx, 0)
	defer cancel()
	p, err := m.client.XPending(ctx, m.stream, m.group).Result()
	if err != nil {
		return 0, err
	}
	return p.Count, nil
}

// ownPending lists up to count of this consumer's pending entries after
// start ("-" for the first), with XPENDING, which counts no delivery.
func (m member) ownPending(ctx context.Context, start string, count int) ([]redis.XPendingExt, error) {
	ctx, cancel := bounded(ctx, 0)
	defer cancel()
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
	ctx, cancel := bounded(ctx, 0)
	defer cancel()
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

// claimScript claims an entry for delivery to this consumer when it is
// still pending here, or idle at another consumer for at least
// ClaimMinIdle: XCLAIM, which counts the delivery and returns its fields.
// An entry another consumer took over meanwhile and holds (claimed within
// ClaimMinIdle) is left to it: a plain XCLAIM with min-idle 0 would take it
// back while that consumer's handler runs. The check and the claim are one
// step, so no XAUTOCLAIM slips in between.
//
// The count is set (RETRYCOUNT), not incremented, from the one the caller
// saw before: when the entry is still this consumer's and its counter is
// already past that, an earlier run of this script counted this delivery
// and its reply was lost, and running it again counts nothing more.
//
// KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] ClaimMinIdle in
// ms, ARGV[4] entry ID, ARGV[5] its delivery counter as the caller last saw
// it. Returns {deliveries, fields} when claimed, {0} when it is no longer
// pending (acknowledged, or deleted from the stream: then acknowledged
// here, which clears it from the PEL on Redis 6.2 too), {-1} when another
// consumer holds it.
var claimScript = noretry.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[4], ARGV[4], 1)
if #p == 0 then
  return {0}
end
local mine = p[1][2] == ARGV[2]
if not mine and p[1][3] < tonumber(ARGV[3]) then
  return {-1}
end
local n = p[1][4] + 1
if mine and p[1][4] > tonumber(ARGV[5]) then
  n = p[1][4]
end
local c = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[4], 'RETRYCOUNT', n)
if #c == 0 or not c[1] or not c[1][2] then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[4])
  return {0}
end
return {n, c[1][2]}
`)

// claimOutcome is what claimForDelivery did with an entry.
type claimOutcome int

const (
	claimed    claimOutcome = iota // claimed: its fields and delivery counter are read
	claimGone                      // no longer pending: acknowledged, or deleted from the stream
	claimTaken                     // pending at another consumer, which took it over
)

// claimForDelivery claims e to this consumer for a delivery (claimScript),
// reading its fields and delivery counter into it. An entry whose counter
// is not known yet (taken over with XAUTOCLAIM JUSTID) has it read first,
// so that sending the claim again after a lost reply counts nothing twice.
func (m member) claimForDelivery(ctx context.Context, e *entry, minIdle time.Duration) (claimOutcome, error) {
	if e.deliveries == 0 {
		p, err := m.client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: m.stream, Group: m.group, Start: e.id, End: e.id, Count: 1}).Result()
		if err != nil {
			return claimGone, err
		}
		if len(p) == 0 {
			return claimGone, nil
		}
		e.deliveries = p[0].RetryCount
	}
	out, err := claimScript.Run(ctx, m.client, []string{m.stream}, m.group, m.consumer, minIdle.Milliseconds(), e.id, e.deliveries).Slice()
	if err != nil {
		return claimGone, err
	}
	n, ok := int64(0), len(out) >= 1
	if ok {
		n, ok = reply.Int(out[0])
	}
	switch {
	case !ok:
		return claimGone, fmt.Errorf("claim script: unexpected reply %v", out)
	case n < 0:
		return claimTaken, nil
	case n == 0 || len(out) < 2:
		return claimGone, nil
	}
	e.values, e.deliveries = reply.Map(out[1]), n
	return claimed, nil
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
