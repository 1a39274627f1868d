package admin

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
)

// deadLetterMetadata are the metadata keys the dead-letter path adds; replay
// removes them.
var deadLetterMetadata = []string{
	middleware.ReasonForPoisonedKey, middleware.PoisonedTopicKey, middleware.PoisonedHandlerKey,
	middleware.PoisonedSubscriberKey, millrace.MetadataDeadLetterGroup, millrace.MetadataDeadLetterConsumer,
	millrace.MetadataDeadLetterEntryID, millrace.MetadataDeadLetterDeliveries, millrace.MetadataDeadLetterTime,
	millrace.MetadataLastError, millrace.MetadataReplayGroup,
}

// ReplayOptions configure [Admin.ReplayDeadLetters].
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
	// Group re-delivers the messages to this consumer group only: each
	// replayed entry names it (millrace.MetadataReplayGroup), and the
	// subscribers of every other group acknowledge it without handing it
	// to their handlers, so a group that had processed a message does not
	// process it again. It must be a group of the target topic (To, or the
	// topic replayed). Default: every group of the topic receives them.
	Group string
	// Progress, if set, is called after each batch with the messages handled
	// so far (replayed, skipped or missing) and the total expected.
	Progress func(done, total int)
	// BatchSize is how many messages one pipeline moves. Default: 100.
	BatchSize int
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
	// Groups are the consumer groups that receive the replayed messages:
	// Group alone, or every group of the target topic (To, or the topic
	// replayed) when the replay began, sorted by name.
	Groups []string
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

// ReplayDeadLetters moves the dead letters of topic back to the topic they came
// from (their topic_poisoned metadata), without their dead-letter metadata,
// as new entries at the end of the stream. Each message moves atomically
// (a Lua script: XADD to the topic and XDEL from the dead-letter stream), so
// none is lost or duplicated if the replay stops halfway or runs twice at
// once. Every consumer group of the topic receives a replayed message, not
// only the group that gave up on it, unless opts.Group names the one that
// does; [Admin.ReplayGroups] says beforehand which groups those are, and
// the result says it too.
//
// Entries a Watermill marshaler did not write (Foreign) go back with their
// original fields. On Redis Cluster the target must share the dead-letter
// stream's slot, as a topic and its default dead-letter topic do.
func (a *Admin) ReplayDeadLetters(ctx context.Context, topic string, opts ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	if err := checkTopic(topic); err != nil {
		return res, err
	}
	for _, id := range opts.IDs {
		if err := checkID(id); err != nil {
			return res, err
		}
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 100
	}
	groups, err := a.ReplayGroups(ctx, topic, opts)
	if err != nil {
		return res, err
	}
	res.Groups = groups
	r := &replayer{ctx: ctx, client: a.client, topic: topic, dlq: a.deadLetterStream(topic), opts: opts, res: &res}
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
		fields, err := replayFields(d, target, r.opts.Group)
		if err != nil {
			r.res.Skipped = append(r.res.Skipped, SkippedDeadLetter{ID: d.ID, Reason: err.Error()})
			r.done++
			continue
		}
		plan = append(plan, planned{d: d, target: target})
		calls = append(calls, scriptCall{keys: []string{r.dlq, keys.Stream(target)}, args: append([]interface{}{d.ID}, fields...)})
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

// ReplayGroups are the consumer groups of the target topic that a replay of
// topic's dead letters with opts would deliver to, sorted by name:
// opts.Group alone ([ErrNoSuchGroup] when the target topic has no such
// group), or every group of the target topic (opts.To, or topic).
func (a *Admin) ReplayGroups(ctx context.Context, topic string, opts ReplayOptions) ([]string, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	target := opts.To
	if target == "" {
		target = topic
	}
	if opts.Group != "" {
		if _, err := a.Group(ctx, target, opts.Group); err != nil {
			return nil, err
		}
		return []string{opts.Group}, nil
	}
	groups, err := a.Groups(ctx, target)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(groups))
	for k, g := range groups {
		names[k] = g.Name
	}
	return names, nil
}

// replayFields is the entry a dead letter goes back as: the message without
// the dead-letter metadata (naming group when it is the only one to
// receive it), or a foreign entry's original fields.
func replayFields(d DeadLetter, target, group string) ([]interface{}, error) {
	if d.Foreign && group == "" {
		var orig map[string]string
		if err := json.Unmarshal(d.Payload, &orig); err == nil && len(orig) > 0 {
			fields := make(map[string]interface{}, len(orig))
			for k, v := range orig {
				fields[k] = v
			}
			return streams.Flatten(fields), nil
		}
	}
	md := make(message.Metadata, len(d.Metadata))
	for k, v := range d.Metadata {
		md[k] = v
	}
	for _, k := range deadLetterMetadata {
		delete(md, k)
	}
	if group != "" {
		md[millrace.MetadataReplayGroup] = group
	}
	msg := message.NewMessage(d.UUID, d.Payload)
	msg.Metadata = md
	fields, err := millrace.DefaultMarshaler{}.Marshal(target, msg)
	if err != nil {
		return nil, err
	}
	return streams.Flatten(fields), nil
}
