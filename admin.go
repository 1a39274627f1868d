package millrace

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
)

// Administration of topics for operators: dead letters (list, replay,
// purge), consumer groups (create, reset, delete), dead consumers (prune) and
// trimming. Every function borrows client and never closes it.

// deadLetterMetadata are the metadata keys the dead-letter path adds; replay
// removes them.
var deadLetterMetadata = []string{
	middleware.ReasonForPoisonedKey, middleware.PoisonedTopicKey, middleware.PoisonedHandlerKey, middleware.PoisonedSubscriberKey,
	MetadataDeadLetterGroup, MetadataDeadLetterConsumer, MetadataDeadLetterEntryID,
	MetadataDeadLetterDeliveries, MetadataDeadLetterTime,
}

// DeadLetter is one entry of a topic's dead-letter stream, decoded with
// [DefaultMarshaler].
type DeadLetter struct {
	// ID is the entry's ID in the dead-letter stream; Time is the time in it,
	// when the entry was dead-lettered.
	ID   string
	Time time.Time
	// UUID, Payload and Metadata are the message's; Metadata includes the
	// dead-letter keys below.
	UUID     string
	Payload  []byte
	Metadata map[string]string
	// Topic is where the message came from (topic_poisoned) and where a
	// replay sends it; Reason says why it was dead-lettered.
	Topic  string
	Reason string
	// Group and Consumer gave up on the message; OriginalID is its entry ID
	// in Topic; Deliveries is how often Redis had delivered it.
	Group      string
	Consumer   string
	OriginalID string
	Deliveries int64
	// Foreign is true when the original entry was not written by a Watermill
	// marshaler: Payload is then a JSON object of its fields.
	Foreign bool
	// DecodeError is set when the entry could not be decoded: Payload then
	// holds its raw fields as JSON, and replay skips it.
	DecodeError string

	fields map[string]interface{}
}

func decodeDeadLetter(m redis.XMessage) DeadLetter {
	d := DeadLetter{ID: m.ID, fields: m.Values}
	d.Time, _ = entryid.Time(m.ID)
	msg, err := DefaultMarshaler{}.Unmarshal(m.Values)
	if err != nil {
		d.DecodeError = err.Error()
		d.Payload, _ = json.Marshal(m.Values)
		return d
	}
	d.UUID = msg.UUID
	if d.UUID == "" {
		d.UUID = m.ID
	}
	d.Payload = msg.Payload
	d.Metadata = map[string]string(msg.Metadata)
	if d.Metadata == nil {
		d.Metadata = map[string]string{}
	}
	d.Topic = d.Metadata[middleware.PoisonedTopicKey]
	d.Reason = d.Metadata[middleware.ReasonForPoisonedKey]
	d.Group = d.Metadata[MetadataDeadLetterGroup]
	d.Consumer = d.Metadata[MetadataDeadLetterConsumer]
	d.OriginalID = d.Metadata[MetadataDeadLetterEntryID]
	d.Deliveries, _ = strconv.ParseInt(d.Metadata[MetadataDeadLetterDeliveries], 10, 64)
	d.Foreign = d.Metadata[MetadataForeign] == "true"
	return d
}

// DeadLetterQuery selects entries of a dead-letter stream.
type DeadLetterQuery struct {
	// After lists entries after this entry ID (exclusive), for paging.
	// Default: from the oldest.
	After string
	// Count caps the entries listed. Default: 100.
	Count int64
	// DeadLetterTopic is the dead-letter stream. Default:
	// DeadLetterTopic(topic).
	DeadLetterTopic string
}

func dlqOf(topic, override string) string {
	if override != "" {
		return streamKey(override)
	}
	return streamKey(DeadLetterTopic(topic))
}

// ListDeadLetters lists the dead letters of topic, oldest first.
func ListDeadLetters(ctx context.Context, client redis.UniversalClient, topic string, q DeadLetterQuery) ([]DeadLetter, error) {
	if topic == "" {
		return nil, ErrEmptyTopic
	}
	if q.Count <= 0 {
		q.Count = 100
	}
	start := "-"
	if q.After != "" {
		start = "(" + q.After
	}
	dlq := dlqOf(topic, q.DeadLetterTopic)
	msgs, err := client.XRangeN(ctx, dlq, start, "+", q.Count).Result()
	if err != nil && !rediserr.IsNil(err) {
		return nil, fmt.Errorf("cannot read dead-letter stream %s: %w", dlq, err)
	}
	out := make([]DeadLetter, len(msgs))
	for k, m := range msgs {
		out[k] = decodeDeadLetter(m)
	}
	return out, nil
}

// GetDeadLetter returns the dead letter with entry ID id, or
// [ErrNoSuchDeadLetter].
func GetDeadLetter(ctx context.Context, client redis.UniversalClient, topic, id string) (DeadLetter, error) {
	if topic == "" {
		return DeadLetter{}, ErrEmptyTopic
	}
	if !entryid.Valid(id) {
		return DeadLetter{}, fmt.Errorf("invalid entry ID %q: want <milliseconds>-<sequence>", id)
	}
	dlq := streamKey(DeadLetterTopic(topic))
	msgs, err := client.XRange(ctx, dlq, id, id).Result()
	if err != nil && !rediserr.IsNil(err) {
		return DeadLetter{}, fmt.Errorf("cannot read dead-letter stream %s: %w", dlq, err)
	}
	if len(msgs) == 0 {
		return DeadLetter{}, fmt.Errorf("%w: %s in %s", ErrNoSuchDeadLetter, id, dlq)
	}
	return decodeDeadLetter(msgs[0]), nil
}

// ReplayOptions configure [ReplayDeadLetters].
type ReplayOptions struct {
	// IDs replays only these entries of the dead-letter stream. Default:
	// every entry that is in the stream when the replay starts, oldest first
	// (entries dead-lettered during the replay are left for the next one).
	IDs []string
	// Limit replays at most this many messages. 0 = no limit.
	Limit int
	// DryRun lists what would be replayed without changing anything.
	DryRun bool
	// To sends the messages to this topic instead of their own
	// (topic_poisoned, or the topic replayed when that is missing).
	To string
	// Progress, if set, is called after each batch with the messages handled
	// so far (replayed, skipped or missing) and the total expected.
	Progress func(done, total int)
	// BatchSize is how many messages one pipeline moves. Default: 100.
	BatchSize int
	// DeadLetterTopic is the dead-letter stream. Default:
	// DeadLetterTopic(topic).
	DeadLetterTopic string
}

// ReplayResult says what a replay did.
type ReplayResult struct {
	// Replayed are the messages moved (or, in a dry run, to be moved), in order.
	Replayed []ReplayedMessage
	// Missing are IDs asked for that are not in the dead-letter stream,
	// including those another replay or purge took meanwhile.
	Missing []string
	// Skipped are dead letters that could not be decoded; they stay.
	Skipped []SkippedDeadLetter
}

// ReplayedMessage is one message moved back to its topic.
type ReplayedMessage struct {
	DeadLetterID string // its ID in the dead-letter stream (now deleted)
	UUID         string
	Topic        string // where it went
	NewID        string // its new entry ID in Topic; "" in a dry run
}

// SkippedDeadLetter is a dead letter a replay left in place.
type SkippedDeadLetter struct {
	ID     string
	Reason string
}

// replayScript moves one dead letter: KEYS[1] is the dead-letter stream,
// KEYS[2] the topic's stream, ARGV[1] the dead letter's ID and the rest the
// new entry's field-value pairs. Nothing happens when the dead letter is gone
// (another replay or a purge took it), so a message is never replayed twice;
// XADD runs before XDEL, so a failing XADD (OOM, wrong type) deletes nothing.
var replayScript = redis.NewScript(`
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
`)

// ReplayDeadLetters moves dead letters of topic back to the topic they came
// from (their topic_poisoned metadata), without their dead-letter metadata,
// as new entries at the end of the stream. Each message moves atomically
// (a Lua script: XADD to the topic and XDEL from the dead-letter stream), so
// none is lost or duplicated if the replay stops halfway or runs twice at
// once. Every consumer group of the topic receives a replayed message, not
// only the group that gave up on it.
//
// Entries a Watermill marshaler did not write (Foreign) go back with their
// original fields. On Redis Cluster the target must share the dead-letter
// stream's slot, as a topic and its default dead-letter topic do.
func ReplayDeadLetters(ctx context.Context, client redis.UniversalClient, topic string, opts ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	if topic == "" {
		return res, ErrEmptyTopic
	}
	for _, id := range opts.IDs {
		if !entryid.Valid(id) {
			return res, fmt.Errorf("invalid entry ID %q: want <milliseconds>-<sequence>", id)
		}
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 100
	}
	dlq := dlqOf(topic, opts.DeadLetterTopic)
	r := &replayer{ctx: ctx, client: client, topic: topic, dlq: dlq, opts: opts, res: &res}
	var err error
	if len(opts.IDs) > 0 {
		err = r.replayIDs()
	} else {
		err = r.replayAll()
	}
	return res, err
}

type replayer struct {
	ctx    context.Context
	client redis.UniversalClient
	topic  string
	dlq    string
	opts   ReplayOptions
	res    *ReplayResult
	done   int
	total  int
}

func (r *replayer) full() bool {
	return r.opts.Limit > 0 && len(r.res.Replayed) >= r.opts.Limit
}

func (r *replayer) replayIDs() error {
	ids := make([]string, 0, len(r.opts.IDs))
	seen := map[string]bool{}
	for _, id := range r.opts.IDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	r.total = len(ids)
	if r.opts.Limit > 0 {
		r.total = min(r.total, r.opts.Limit)
	}
	for len(ids) > 0 && !r.full() {
		n := min(len(ids), r.opts.BatchSize)
		if r.opts.Limit > 0 {
			n = min(n, r.opts.Limit-len(r.res.Replayed))
		}
		batch := ids[:n]
		ids = ids[n:]
		pipe := r.client.Pipeline()
		cmds := make([]*redis.XMessageSliceCmd, len(batch))
		for k, id := range batch {
			cmds[k] = pipe.XRange(r.ctx, r.dlq, id, id)
		}
		_, _ = pipe.Exec(r.ctx)
		var found []redis.XMessage
		for k, c := range cmds {
			msgs, err := c.Result()
			if err != nil && !rediserr.IsNil(err) {
				return fmt.Errorf("cannot read dead-letter stream %s: %w", r.dlq, err)
			}
			if len(msgs) == 0 {
				r.res.Missing = append(r.res.Missing, batch[k])
				r.done++
				continue
			}
			found = append(found, msgs[0])
		}
		if err := r.move(found); err != nil {
			return err
		}
	}
	return nil
}

func (r *replayer) replayAll() error {
	pipe := r.client.Pipeline()
	length := pipe.XLen(r.ctx, r.dlq)
	last := pipe.XRevRangeN(r.ctx, r.dlq, "+", "-", 1)
	_, _ = pipe.Exec(r.ctx)
	if err := length.Err(); err != nil && !rediserr.IsNil(err) {
		return fmt.Errorf("cannot read dead-letter stream %s: %w", r.dlq, err)
	}
	if err := last.Err(); err != nil && !rediserr.IsNil(err) {
		return fmt.Errorf("cannot read dead-letter stream %s: %w", r.dlq, err)
	}
	if len(last.Val()) == 0 {
		return nil
	}
	end := last.Val()[0].ID
	r.total = int(length.Val())
	if r.opts.Limit > 0 {
		r.total = min(r.total, r.opts.Limit)
	}
	start := "-"
	for !r.full() {
		n := int64(r.opts.BatchSize)
		if r.opts.Limit > 0 {
			n = min(n, int64(r.opts.Limit-len(r.res.Replayed)))
		}
		msgs, err := r.client.XRangeN(r.ctx, r.dlq, start, end, n).Result()
		if err != nil && !rediserr.IsNil(err) {
			return fmt.Errorf("cannot read dead-letter stream %s: %w", r.dlq, err)
		}
		if len(msgs) == 0 {
			return nil
		}
		if err := r.move(msgs); err != nil {
			return err
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	return nil
}

// move replays msgs, in order, in one pipeline.
func (r *replayer) move(msgs []redis.XMessage) error {
	type planned struct {
		d      DeadLetter
		target string
	}
	var plan []planned
	var calls []scriptCall
	for _, m := range msgs {
		d := decodeDeadLetter(m)
		if d.DecodeError != "" {
			r.res.Skipped = append(r.res.Skipped, SkippedDeadLetter{ID: d.ID, Reason: d.DecodeError})
			r.done++
			continue
		}
		target := r.opts.To
		if target == "" {
			target = d.Topic
		}
		if target == "" {
			target = r.topic
		}
		fields, err := replayFields(d, target)
		if err != nil {
			r.res.Skipped = append(r.res.Skipped, SkippedDeadLetter{ID: d.ID, Reason: err.Error()})
			r.done++
			continue
		}
		plan = append(plan, planned{d: d, target: target})
		calls = append(calls, scriptCall{keys: []string{r.dlq, streamKey(target)}, args: append([]interface{}{d.ID}, fields...)})
	}
	if r.opts.DryRun {
		for _, p := range plan {
			r.res.Replayed = append(r.res.Replayed, ReplayedMessage{DeadLetterID: p.d.ID, UUID: p.d.UUID, Topic: p.target})
		}
		r.done += len(plan)
		r.progress()
		return nil
	}
	if len(calls) > 0 {
		cmds, err := evalPipelined(r.ctx, r.client, replayScript, calls)
		if err != nil {
			return err
		}
		for k, c := range cmds {
			id, err := c.Text()
			switch {
			case rediserr.IsNil(err):
				r.res.Missing = append(r.res.Missing, plan[k].d.ID)
			case err != nil:
				r.progress()
				return fmt.Errorf("cannot replay dead letter %s to topic %s: %w", plan[k].d.ID, plan[k].target, err)
			default:
				r.res.Replayed = append(r.res.Replayed, ReplayedMessage{DeadLetterID: plan[k].d.ID, UUID: plan[k].d.UUID, Topic: plan[k].target, NewID: id})
			}
			r.done++
		}
	}
	r.progress()
	return nil
}

func (r *replayer) progress() {
	if r.opts.Progress != nil {
		r.opts.Progress(r.done, max(r.total, r.done))
	}
}

// replayFields is the entry a dead letter goes back as: the message without
// the dead-letter metadata, or a foreign entry's original fields.
func replayFields(d DeadLetter, target string) ([]interface{}, error) {
	if d.Foreign {
		var orig map[string]string
		if err := json.Unmarshal(d.Payload, &orig); err == nil && len(orig) > 0 {
			fields := make(map[string]interface{}, len(orig))
			for k, v := range orig {
				fields[k] = v
			}
			return sortedFields(fields), nil
		}
	}
	md := make(message.Metadata, len(d.Metadata))
	for k, v := range d.Metadata {
		md[k] = v
	}
	for _, k := range deadLetterMetadata {
		delete(md, k)
	}
	msg := message.NewMessage(d.UUID, d.Payload)
	msg.Metadata = md
	fields, err := DefaultMarshaler{}.Marshal(target, msg)
	if err != nil {
		return nil, err
	}
	return sortedFields(fields), nil
}

// PurgeOptions configure [PurgeDeadLetters].
type PurgeOptions struct {
	// IDs deletes only these entries. Default: every entry.
	IDs []string
	// DeadLetterTopic is the dead-letter stream. Default:
	// DeadLetterTopic(topic).
	DeadLetterTopic string
}

// PurgeDeadLetters deletes dead letters of topic and returns how many it
// deleted. Without IDs it empties the dead-letter stream (XTRIM MAXLEN 0),
// keeping the stream and any groups on it.
func PurgeDeadLetters(ctx context.Context, client redis.UniversalClient, topic string, opts PurgeOptions) (int64, error) {
	if topic == "" {
		return 0, ErrEmptyTopic
	}
	dlq := dlqOf(topic, opts.DeadLetterTopic)
	if len(opts.IDs) == 0 {
		n, err := client.XTrimMaxLen(ctx, dlq, 0).Result()
		if err != nil && !rediserr.IsNil(err) {
			return 0, fmt.Errorf("cannot purge dead-letter stream %s: %w", dlq, err)
		}
		return n, nil
	}
	for _, id := range opts.IDs {
		if !entryid.Valid(id) {
			return 0, fmt.Errorf("invalid entry ID %q: want <milliseconds>-<sequence>", id)
		}
	}
	var total int64
	for ids := opts.IDs; len(ids) > 0; {
		n := min(len(ids), pelChunk)
		deleted, err := client.XDel(ctx, dlq, ids[:n]...).Result()
		if err != nil && !rediserr.IsNil(err) {
			return total, fmt.Errorf("cannot purge dead letters from %s: %w", dlq, err)
		}
		total += deleted
		ids = ids[n:]
	}
	return total, nil
}

// CreateGroup creates group on topic, starting at start: [StartOldest],
// [StartNewest] or an entry ID. The stream is created if missing. An
// existing group is an [ErrGroupExists] error.
func CreateGroup(ctx context.Context, client redis.UniversalClient, topic, group, start string) error {
	if topic == "" {
		return ErrEmptyTopic
	}
	if err := checkPosition(start); err != nil {
		return err
	}
	exists, err := streams.CreateGroup(ctx, client, streamKey(topic), group, start)
	if exists {
		return fmt.Errorf("%w: %s on topic %s", ErrGroupExists, group, topic)
	}
	if err != nil {
		return fmt.Errorf("cannot create consumer group %s on topic %s: %w", group, topic, err)
	}
	return nil
}

// ResetGroup moves group so that its next read returns the entries after id
// (XGROUP SETID): [StartOldest] re-reads the whole stream, [StartNewest]
// skips everything unread. Pending entries stay pending. Redis reports no lag
// for the group until it catches up; the Inspector computes one meanwhile.
func ResetGroup(ctx context.Context, client redis.UniversalClient, topic, group, id string) error {
	if topic == "" {
		return ErrEmptyTopic
	}
	if err := checkPosition(id); err != nil {
		return err
	}
	err := client.XGroupSetID(ctx, streamKey(topic), group, id).Err()
	if rediserr.IsNoGroup(err) || rediserr.IsNoStream(err) {
		return fmt.Errorf("%w: %s on topic %s", ErrNoSuchGroup, group, topic)
	}
	if err != nil {
		return fmt.Errorf("cannot reset consumer group %s on topic %s: %w", group, topic, err)
	}
	return nil
}

// ResetGroupToTime moves group so that its next read returns the entries
// added at or after t.
func ResetGroupToTime(ctx context.Context, client redis.UniversalClient, topic, group string, t time.Time) error {
	return ResetGroup(ctx, client, topic, group, positionBefore(t))
}

// positionBefore is the last possible entry ID before t: a group set there
// reads the entries added at or after t.
func positionBefore(t time.Time) string {
	ms := t.UnixMilli()
	if ms <= 0 {
		return "0-0"
	}
	return strconv.FormatInt(ms-1, 10) + "-18446744073709551615"
}

func checkPosition(id string) error {
	if id == StartOldest || id == StartNewest || entryid.Valid(id) {
		return nil
	}
	return fmt.Errorf("invalid position %q: want %q, %q or an entry ID like 1700000000000-0", id, StartOldest, StartNewest)
}

// DeleteGroup deletes group from topic (XGROUP DESTROY), with its pending
// entries list: its unacknowledged messages are no longer tracked.
func DeleteGroup(ctx context.Context, client redis.UniversalClient, topic, group string) error {
	if topic == "" {
		return ErrEmptyTopic
	}
	n, err := client.XGroupDestroy(ctx, streamKey(topic), group).Result()
	if rediserr.IsNoStream(err) || (err == nil && n == 0) {
		return fmt.Errorf("%w: %s on topic %s", ErrNoSuchGroup, group, topic)
	}
	if err != nil {
		return fmt.Errorf("cannot delete consumer group %s on topic %s: %w", group, topic, err)
	}
	return nil
}

// PruneResult says what [PruneConsumers] did.
type PruneResult struct {
	// Removed are the consumers deleted: idle long enough, nothing pending.
	Removed []string
	// Kept are consumers idle long enough that still hold pending entries:
	// deleting them would drop those entries, so they stay until their
	// entries are claimed by live consumers (ClaimMinIdle) or acknowledged.
	Kept []ConsumerStats
}

// PruneConsumers deletes the consumers of group that have been idle for at
// least idle and hold no pending entry, atomically (a Lua script around
// XINFO CONSUMERS and XGROUP DELCONSUMER): it never drops a pending entry.
// Consumers that are idle but still hold entries are returned in Kept.
func PruneConsumers(ctx context.Context, client redis.UniversalClient, topic, group string, idle time.Duration) (PruneResult, error) {
	var res PruneResult
	if topic == "" {
		return res, ErrEmptyTopic
	}
	if idle < 0 {
		return res, fmt.Errorf("idle must not be negative, got %s", idle)
	}
	removed, kept, err := streams.PruneConsumers(ctx, client, streamKey(topic), group, idle)
	if err != nil {
		if rediserr.IsNoGroup(err) || rediserr.IsNoSuchKey(err) {
			return res, fmt.Errorf("%w: %s on topic %s", ErrNoSuchGroup, group, topic)
		}
		return res, fmt.Errorf("cannot prune consumers of group %s on topic %s: %w", group, topic, err)
	}
	res.Removed = removed
	for _, k := range kept {
		res.Kept = append(res.Kept, ConsumerStats{Name: k.Name, Pending: k.Pending, Idle: k.Idle, Inactive: -1})
	}
	slices.Sort(res.Removed)
	slices.SortFunc(res.Kept, func(a, b ConsumerStats) int { return strings.Compare(a.Name, b.Name) })
	return res, nil
}

// TrimMaxLen trims topic to its newest maxLen entries (XTRIM MAXLEN) and
// returns how many entries it deleted. With approx (MAXLEN ~) Redis only
// drops whole nodes, which is much cheaper and may keep a few tens more.
// Trimming deletes entries whether or not every group has read them.
func TrimMaxLen(ctx context.Context, client redis.UniversalClient, topic string, maxLen int64, approx bool) (int64, error) {
	if topic == "" {
		return 0, ErrEmptyTopic
	}
	if maxLen < 0 {
		return 0, fmt.Errorf("maxLen must not be negative, got %d", maxLen)
	}
	var cmd *redis.IntCmd
	if approx {
		cmd = client.XTrimMaxLenApprox(ctx, streamKey(topic), maxLen, 0)
	} else {
		cmd = client.XTrimMaxLen(ctx, streamKey(topic), maxLen)
	}
	n, err := cmd.Result()
	if err != nil && !rediserr.IsNil(err) {
		return 0, fmt.Errorf("cannot trim topic %s: %w", topic, err)
	}
	return n, nil
}

// TrimMinID deletes the entries of topic older than minID (XTRIM MINID)
// and returns how many it deleted; approx as in [TrimMaxLen]. To trim by
// time, pass [MinIDAt].
func TrimMinID(ctx context.Context, client redis.UniversalClient, topic, minID string, approx bool) (int64, error) {
	if topic == "" {
		return 0, ErrEmptyTopic
	}
	if !entryid.Valid(minID) {
		return 0, fmt.Errorf("invalid entry ID %q: want <milliseconds>-<sequence>", minID)
	}
	var cmd *redis.IntCmd
	if approx {
		cmd = client.XTrimMinIDApprox(ctx, streamKey(topic), minID, 0)
	} else {
		cmd = client.XTrimMinID(ctx, streamKey(topic), minID)
	}
	n, err := cmd.Result()
	if err != nil && !rediserr.IsNil(err) {
		return 0, fmt.Errorf("cannot trim topic %s: %w", topic, err)
	}
	return n, nil
}

// MinIDAt is the smallest entry ID at or after t: TrimMinID(MinIDAt(t))
// deletes the entries added before t.
func MinIDAt(t time.Time) string { return entryid.MinAt(t) }

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
	moved, _, err := streams.MoveDue(ctx, client, keys.Delayed(topic), streamKey(topic), limit)
	if err != nil {
		return 0, fmt.Errorf("cannot move due delayed messages of topic %s: %w", topic, err)
	}
	return moved, nil
}
