package millrace

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
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
// The member format is in internal/streams.

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

// earliest is the first due time of members, in Unix milliseconds: what a
// publisher announces to the movers.
func earliest(members []redis.Z) int64 {
	first := members[0].Score
	for _, m := range members[1:] {
		first = min(first, m.Score)
	}
	return int64(first)
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
	member, err := streams.EncodeDelayed(watermill.NewULID(), streams.Flatten(fields))
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
	wake := pipe.Publish(ctx, keys.DelayedWake(topic), earliest(members))
	_, _ = pipe.Exec(ctx) // errors are read per command below
	if err := add.Err(); err != nil {
		return fmt.Errorf("cannot add %d delayed messages to %s: %w", len(members), key, redisError(err))
	}
	if err := wake.Err(); err != nil {
		p.wakeLog.Failure(p.logger, "Cannot announce delayed messages (PUBLISH); subscribers find them within their next poll", err,
			watermill.LogFields{"topic": topic})
	}
	if err := confirm(); err != nil {
		return fmt.Errorf("delayed messages of topic %s were added but not confirmed: %w", topic, err)
	}
	return nil
}
