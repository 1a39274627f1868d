package millrace

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/rediserr"
)

// Delayed messages.
//
// A message whose Watermill delay metadata (delay.DelayedUntilKey, set by
// delay.Message, delay.For, delay.Until, delay.WithContext with
// delay.NewPublisher, or middleware.DelayOnError) lies in the future is not
// added to its topic's stream by Publish. It is kept in the topic's delayed
// set, the sorted set DelayedKey(topic) ("{orders}:delayed" for "orders"),
// scored by its due time in Unix milliseconds, and moved into the stream once
// due by a Lua script that every subscription of the topic runs a few times a
// second. The script reads Redis's clock (TIME), adds each due member to the
// stream with XADD and removes it from the set (ZREM), all atomically, so
// several subscribers moving the same topic never duplicate or lose a
// message, and a message is never added before its due time. Being ordinary
// Redis data, the set survives restarts like the stream does.
//
// A member of the delayed set is "<unique id>\n" followed by the stream
// entry's fields and values, alternately, each as "<byte length>:<bytes>":
//
//	01HZX3K9...\n23:_watermill_message_uuid36:7c1c...8:metadata87:...7:payload12:{"order":42}
//
// The fields are those the Publisher's Marshaler produced, so the moved entry
// is exactly what an immediate Publish would have added (without MAXLEN
// trimming: retention applies from the Publisher's next XADD or XTRIM).

// Delayed-message timings.
const (
	// delayPollInterval bounds how long a due message waits in the delayed
	// set before a subscription of its topic moves it. The mover also wakes
	// up at the due time of the next member it saw, so a message is usually
	// moved within a few milliseconds of its due time.
	delayPollInterval = 200 * time.Millisecond
	// delayIdlePoll is the pace while the topic has no delayed message at
	// all, so that an idle subscription stays at about two Redis commands a
	// second: a message delayed into an empty set is moved up to this long
	// after it is due.
	delayIdlePoll = 3 * time.Second
	// delayMoveBatch caps the members one script call moves; a full batch
	// is followed at once by another call.
	delayMoveBatch = 100
)

// DelayedRawField is the one field of the entry added for a member of the
// delayed set that is not in Millrace's member format (written to the set by
// something else): the member as it was. Such an entry is delivered as a
// foreign entry rather than lost.
const DelayedRawField = "_millrace_delayed_raw"

// dueTime is when a message with metadata md, published at now, is due, and
// whether that is in the future. Watermill writes delay.DelayedUntilKey in
// RFC 3339 with whole seconds, truncated, so on its own it would make a
// sub-second delay vanish and any delay end up to a second early. When the
// time has no fraction, the true due time lies within the second it names;
// while that second has not passed and delay.DelayedForKey holds the delay,
// the due time is now plus the delay, kept within that second: never before
// the true due time (the delay was set at or before now) and at most the
// time between setting the delay and Publish after it. exact is the due time
// to store in delay.DelayedUntilKey when it differs from the metadata's
// (RFC 3339 with a fraction, so a later Publish of the delivered message does
// not delay it again), "" otherwise.
func dueTime(md message.Metadata, now time.Time) (due time.Time, exact string, delayed bool, err error) {
	until, ok := md[delay.DelayedUntilKey]
	if !ok || until == "" {
		return time.Time{}, "", false, nil
	}
	due, err = time.Parse(time.RFC3339, until)
	if err != nil {
		return time.Time{}, "", false, fmt.Errorf("invalid metadata %s=%q: %w", delay.DelayedUntilKey, until, err)
	}
	if end := due.Add(time.Second); due.Nanosecond() == 0 && now.Before(end) {
		if d, err := time.ParseDuration(md[delay.DelayedForKey]); err == nil && d > 0 {
			precise := now.Add(d)
			if !precise.Before(end) {
				precise = end.Add(-time.Nanosecond) // the true due time is before end
			}
			if precise.Nanosecond() == 0 {
				precise = precise.Add(time.Nanosecond) // an exact time has a fraction
			}
			if precise.After(due) {
				due = precise
				exact = precise.UTC().Format(time.RFC3339Nano)
			}
		}
	}
	if !due.After(now) {
		return time.Time{}, "", false, nil
	}
	return due, exact, true, nil
}

// publishDelayed adds the messages of msgs that are due later to topic's
// delayed set, in one pipeline (with the Publisher's Durability), and returns
// the others, to be added to the stream. msgs is returned as it is when none
// is delayed, or when one is nil (prepare reports that).
func (p *Publisher) publishDelayed(topic string, msgs []*message.Message) ([]*message.Message, error) {
	found := false
	for _, msg := range msgs {
		if msg == nil {
			return msgs, nil
		}
		if _, ok := msg.Metadata[delay.DelayedUntilKey]; ok {
			found = true
		}
	}
	if !found {
		return msgs, nil
	}
	now := time.Now()
	rest := make([]*message.Message, 0, len(msgs))
	var members []redis.Z
	for _, msg := range msgs {
		due, exact, delayed, err := dueTime(msg.Metadata, now)
		if err != nil {
			return nil, fmt.Errorf("message %s: %w", msg.UUID, err)
		}
		if !delayed {
			rest = append(rest, msg)
			continue
		}
		if err := msg.Context().Err(); err != nil {
			return nil, fmt.Errorf("message %s: %w", msg.UUID, err)
		}
		member, err := p.delayedMember(topic, msg, exact)
		if err != nil {
			return nil, err
		}
		members = append(members, redis.Z{Score: dueScore(due), Member: member})
	}
	if len(members) > 0 {
		if err := p.addDelayed(topic, members); err != nil {
			return nil, err
		}
	}
	return rest, nil
}

// dueScore is due in Unix milliseconds, rounded up so that a message is
// never moved before its due time.
func dueScore(due time.Time) float64 {
	return math.Ceil(float64(due.UnixNano()) / float64(time.Millisecond))
}

// delayedMember marshals msg into a member of the delayed set; exact, when
// set, replaces the message's delay.DelayedUntilKey (on a copy).
func (p *Publisher) delayedMember(topic string, msg *message.Message, exact string) (string, error) {
	m := msg
	if exact != "" {
		m = message.NewMessage(msg.UUID, msg.Payload)
		m.Metadata = maps.Clone(msg.Metadata)
		m.Metadata[delay.DelayedUntilKey] = exact
		m.SetContext(msg.Context())
	}
	fields, err := p.config.Marshaler.Marshal(topic, m)
	if err != nil {
		return "", fmt.Errorf("cannot marshal message %s: %w", msg.UUID, err)
	}
	member, err := encodeDelayed(watermill.NewULID(), sortedFields(fields))
	if err != nil {
		return "", fmt.Errorf("cannot marshal message %s: %w", msg.UUID, err)
	}
	return member, nil
}

// addDelayed sends one ZADD of members, followed by WAIT or WAITAOF when
// Durability asks for it (on a Cluster, on the set's master).
func (p *Publisher) addDelayed(topic string, members []redis.Z) error {
	ctx := context.Background()
	key := DelayedKey(topic)
	cluster, isCluster := p.client.(*redis.ClusterClient)
	if !isCluster || !p.config.Durability.enabled() {
		return p.zaddDurably(ctx, p.client, topic, members)
	}
	node, err := cluster.MasterForKey(ctx, key)
	if err != nil {
		return fmt.Errorf("cannot find the cluster node of %s: %w", key, err)
	}
	err = p.zaddDurably(ctx, node, topic, members)
	if !rediserr.IsRedirect(errors.Unwrap(err)) {
		return err
	}
	// MOVED or ASK: nothing was added; once more on the new master.
	if node, err = masterAfterRedirect(ctx, cluster, key, node); err != nil {
		return fmt.Errorf("cannot find the cluster node of %s: %w", key, err)
	}
	return p.zaddDurably(ctx, node, topic, members)
}

// zaddDurably is addDelayed through c, a client of the set's master.
func (p *Publisher) zaddDurably(ctx context.Context, c redis.Cmdable, topic string, members []redis.Z) error {
	key := DelayedKey(topic)
	pipe := c.Pipeline()
	add := pipe.ZAdd(ctx, key, members...)
	confirm := p.config.Durability.queue(ctx, pipe)
	_, _ = pipe.Exec(ctx) // errors are read per command below
	if err := add.Err(); err != nil {
		return fmt.Errorf("cannot add %d delayed messages to %s: %w", len(members), key, err)
	}
	if err := confirm(); err != nil {
		return fmt.Errorf("delayed messages of topic %s were added but not confirmed: %w", topic, err)
	}
	return nil
}

// encodeDelayed builds a member of the delayed set from a unique id and the
// flattened fields of a stream entry.
func encodeDelayed(id string, flat []interface{}) (string, error) {
	var b strings.Builder
	b.WriteString(id)
	b.WriteByte('\n')
	for _, v := range flat {
		s, err := fieldString(v)
		if err != nil {
			return "", err
		}
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	return b.String(), nil
}

// fieldString is the bytes go-redis would send for a field or value v.
func fieldString(v interface{}) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case int:
		return strconv.FormatInt(int64(v), 10), nil
	case int8:
		return strconv.FormatInt(int64(v), 10), nil
	case int16:
		return strconv.FormatInt(int64(v), 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint8:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint16:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint32:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case time.Time:
		return v.Format(time.RFC3339Nano), nil
	case encoding.BinaryMarshaler:
		b, err := v.MarshalBinary()
		return string(b), err
	default:
		return "", fmt.Errorf("field value of type %T cannot be stored in a stream entry", v)
	}
}

// moveDueScript moves the due members of the delayed set KEYS[1] into the
// stream KEYS[2], at most ARGV[1] of them, oldest due first. It returns how
// many it moved and the milliseconds until the next member is due (-1 when
// the set is empty). Both keys are in one Cluster slot: the set's hash tag
// is the stream's name.
var moveDueScript = redis.NewScript(`
if #redis.call('ZRANGE', KEYS[1], 0, 0) == 0 then
  return {0, -1}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now), 'LIMIT', 0, tonumber(ARGV[1]))
local function fields(m)
  local nl = string.find(m, '\n', 1, true)
  if not nl then return nil end
  local out = {}
  local pos = nl + 1
  while pos <= #m do
    local colon = string.find(m, ':', pos, true)
    if not colon then return nil end
    local n = tonumber(string.sub(m, pos, colon - 1))
    if not n or n < 0 or colon + n > #m then return nil end
    out[#out + 1] = string.sub(m, colon + 1, colon + n)
    pos = colon + 1 + n
  end
  if #out == 0 or #out % 2 ~= 0 then return nil end
  return out
end
for _, m in ipairs(due) do
  local f = fields(m)
  if f then
    redis.call('XADD', KEYS[2], '*', unpack(f))
  else
    redis.call('XADD', KEYS[2], '*', '` + DelayedRawField + `', m)
  end
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if #nxt == 2 then wait = math.max(0, tonumber(nxt[2]) - now) end
return {#due, wait}
`)

// MoveDueDelayed moves up to limit (at most 100 if limit <= 0) of topic's
// delayed messages that are due into its stream, atomically, and reports how
// many it moved. Every subscription of a topic does this on its own; call it
// only for topics that are consumed by something else (watermill-redisstream
// or a program in another language), e.g. from a timer in the producer.
func MoveDueDelayed(ctx context.Context, client redis.UniversalClient, topic string, limit int) (int, error) {
	if topic == "" {
		return 0, ErrEmptyTopic
	}
	if limit <= 0 {
		limit = delayMoveBatch
	}
	moved, _, err := moveDue(ctx, client, topic, limit)
	return moved, err
}

// moveDue runs moveDueScript for topic. wait is how long until the next
// member is due, -1 when there is none.
func moveDue(ctx context.Context, client redis.UniversalClient, topic string, limit int) (moved int, wait time.Duration, err error) {
	res, err := moveDueScript.Run(ctx, client, []string{DelayedKey(topic), streamKey(topic)}, limit).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("cannot move due delayed messages of topic %s: %w", topic, err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("cannot move due delayed messages of topic %s: unexpected reply %v", topic, res)
	}
	wait = -1
	if res[1] >= 0 {
		wait = time.Duration(res[1]) * time.Millisecond
	}
	return int(res[0]), wait, nil
}

// delayer moves the due delayed messages of a subscription's topic into its
// stream: at most delayPollInterval after they are due (delayIdlePoll when
// the set was empty), and at the due time of the next member it knows of. One goroutine, one script call per round;
// it ends with the subscription's soft context.
type delayer struct {
	sub  *subscription
	done chan struct{}
}

func newDelayer(sub *subscription) *delayer { return &delayer{sub: sub, done: make(chan struct{})} }

func (d *delayer) start() { go d.run() }

// stop waits for the goroutine, which ends with the subscription's soft
// context.
func (d *delayer) stop() { <-d.done }

func (d *delayer) run() {
	defer close(d.done)
	sub := d.sub
	ctx := sub.soft
	retry := newRetryBackoff()
	log := errorLog{logger: sub.logger}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-ctx.Done():
			return
		}
		moved, wait, err := moveDue(ctx, sub.client, sub.topic, delayMoveBatch)
		next := delayPollInterval
		switch {
		case err == nil && wait < 0 && moved < delayMoveBatch:
			next = delayIdlePoll
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			log.failure("Cannot move due delayed messages; retrying", err, sub.fields)
			next = retry.next()
		case moved >= delayMoveBatch:
			next = 0
		case wait >= 0 && wait < next:
			next = max(wait, time.Millisecond)
		}
		if err == nil {
			retry.reset()
			log.recovered("Moving delayed messages again", sub.fields)
			if moved > 0 {
				sub.logger.Debug("Moved due delayed messages into the stream", sub.fields.Add(watermill.LogFields{"messages": moved}))
			}
		}
		timer.Reset(next)
	}
}
