package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/millrace/millrace/internal/rediserr"
)

// TopicStats is a snapshot of one topic.
type TopicStats struct {
	Topic string
	// Exists is false when the topic has no stream (never published to, or
	// deleted). Its dead letters are still counted.
	Exists bool
	// Length is the number of entries in the stream (XLEN).
	Length int64
	// FirstEntryID and LastEntryID are the oldest and newest entries, ""
	// when the stream is empty; the times are the times in those IDs.
	FirstEntryID   string
	FirstEntryTime time.Time
	LastEntryID    string
	LastEntryTime  time.Time
	// LastGeneratedID is the last ID the stream handed out, even if that
	// entry was deleted since.
	LastGeneratedID string
	// EntriesAdded counts every entry ever added, -1 before Redis 7.0.
	EntriesAdded int64
	// Groups are the topic's consumer groups, sorted by name.
	Groups []GroupStats
	// DeadLetterTopic is the dead-letter topic counted in DeadLetters
	// (Options.DeadLetterTopic of the topic).
	DeadLetterTopic string
	// DeadLetters is the length of the dead-letter stream.
	DeadLetters int64
	// Memory is what the stream takes in Redis, in bytes (MEMORY USAGE key
	// SAMPLES 10: exact for small streams, estimated from 10 nodes for
	// large ones); 0 without a stream, -1 when the server refused to tell
	// (an ACL without MEMORY USAGE).
	Memory int64
	// Refused counts the messages a Publisher refused because the topic was
	// at its ceiling (millrace.RefusePublish), since the topic was created.
	Refused int64
	// Time is the server's clock when the snapshot was taken; the ages in
	// GroupStats are measured against it.
	Time time.Time
}

// LagSource says how [GroupStats.Lag] was obtained.
type LagSource string

const (
	// LagReported is Redis's own figure (XINFO GROUPS lag, Redis 7.0+).
	LagReported LagSource = "redis"
	// LagComputed is exact, computed because Redis reported no lag (a group
	// set to an arbitrary ID, entries deleted, or Redis before 7.0).
	LagComputed LagSource = "computed"
	// LagLowerBound means the group is at least Lag entries behind: the
	// count stopped at a cap to keep the command cheap.
	LagLowerBound LagSource = "lower-bound"
)

// GroupStats is a snapshot of one consumer group.
type GroupStats struct {
	Name string
	// LastDeliveredID is the last entry handed to any consumer of the group.
	LastDeliveredID string
	// EntriesRead is Redis's logical read counter, -1 when unknown.
	EntriesRead int64
	// Lag is how many entries of the stream the group has not read yet.
	Lag       int64
	LagSource LagSource
	// Pending counts the entries delivered but not acknowledged (the PEL).
	Pending int64
	// OldestPendingID is the oldest pending entry, "" when none;
	// OldestPendingAge is the age of that entry (from the time in its ID).
	OldestPendingID  string
	OldestPendingAge time.Duration
	// NextUndeliveredID is the first entry after LastDeliveredID, "" when the
	// group is caught up; OldestUndeliveredAge is its age: how long the
	// oldest waiting message has waited (queue latency).
	NextUndeliveredID    string
	OldestUndeliveredAge time.Duration
	// Consumers are the group's consumers, sorted by name.
	Consumers []ConsumerStats
	// Dropped counts the entries the topic's ceiling trimmed before the
	// group read them (millrace.DropOldest), since the group was created.
	Dropped int64
	// Abandoned is true when the group has entries to read (Lag > 0) that
	// have waited at least Options.AbandonedAfter, and no consumer of it
	// has been seen for that long: nobody reads it any more, and with the
	// default retention it holds every entry of the topic up to the
	// ceiling. Delete it (DeleteGroup) unless it is coming back. A paused
	// group is never abandoned.
	Abandoned bool
	// BeyondEnd is true when the group's position is past the stream's
	// last ID and ahead of Redis's clock (PositionBeyondEnd): it will skip
	// every entry added until the clock reaches it (a reset to a time or
	// ID in the future).
	BeyondEnd bool
	// Paused is true while the group is paused (PauseGroup): its
	// subscribers take no new entries. PausedSince is when it was last
	// paused or resumed, zero when never.
	Paused      bool
	PausedSince time.Time
}

// ConsumerStats is one consumer of a group (XINFO CONSUMERS).
type ConsumerStats struct {
	Name string
	// Pending counts the entries the consumer holds unacknowledged.
	Pending int64
	// Idle is the time since the consumer's last interaction. From Redis 7.2
	// on an empty read counts too, so a long Idle means a dead consumer;
	// before 7.2 it is the time since the consumer last got an entry.
	Idle time.Duration
	// Inactive is the time since the consumer last read or claimed an
	// entry; -1 when never, unknown, or when Redis is older than 7.2.
	Inactive time.Duration
}

// Topic returns a snapshot of topic.
func (a *Admin) Topic(ctx context.Context, topic string) (TopicStats, error) {
	stats, err := a.Stats(ctx, topic)
	if err != nil {
		return TopicStats{}, err
	}
	return stats[0], nil
}

// Stats returns a snapshot of each topic, in the order given. The figures
// of one topic are read by one Lua script (EVALSHA), so they are a
// consistent snapshot, and all topics take one pipelined round trip (and
// one more for whether their groups are paused). When
// the server refuses scripts (an ACL user without @scripting), plain
// commands read the same figures in two round trips, and the Admin
// remembers to use them. A dead-letter topic outside its topic's Cluster
// slot (a custom Options.DeadLetterTopic) costs one more round trip for its
// length.
func (a *Admin) Stats(ctx context.Context, topics ...string) ([]TopicStats, error) {
	for _, t := range topics {
		if err := checkTopic(t); err != nil {
			return nil, err
		}
	}
	if len(topics) == 0 {
		return nil, nil
	}
	raws, err := a.read(ctx, topics)
	if err != nil {
		return nil, err
	}
	stats, err := a.parseTopics(topics, raws)
	if err != nil {
		return nil, err
	}
	var unread []TopicStats // whose pause states the read left out; they share their Groups
	for k, raw := range raws {
		if !raw.pauses {
			unread = append(unread, stats[k])
		}
	}
	if err := a.markPaused(ctx, unread); err != nil {
		return nil, err
	}
	return stats, nil
}

// read reads the raw replies of topics: with the stats script, or with
// plain commands where scripts are refused.
func (a *Admin) read(ctx context.Context, topics []string) ([]rawTopic, error) {
	if !a.noScript.Load() {
		raws, err := a.readScripted(ctx, topics)
		if err == nil || !rediserr.IsScriptRefused(err) {
			return raws, err
		}
		a.noScript.Store(true)
	}
	return a.readPlain(ctx, topics)
}

// memorySamples is the SAMPLES argument of MEMORY USAGE.
const memorySamples = 10

// Groups returns the consumer groups of topic, sorted by name: the Groups
// of [Admin.Topic]. A topic without a stream has none.
func (a *Admin) Groups(ctx context.Context, topic string) ([]GroupStats, error) {
	s, err := a.Topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	return s.Groups, nil
}

// Group returns the figures of group on topic, or [ErrNoSuchGroup].
func (a *Admin) Group(ctx context.Context, topic, group string) (GroupStats, error) {
	groups, err := a.Groups(ctx, topic)
	if err != nil {
		return GroupStats{}, err
	}
	for _, g := range groups {
		if g.Name == group {
			return g, nil
		}
	}
	return GroupStats{}, fmt.Errorf("%w: %s on topic %s", ErrNoSuchGroup, group, topic)
}

// Consumers returns the consumers of group on topic, sorted by name, or
// [ErrNoSuchGroup].
func (a *Admin) Consumers(ctx context.Context, topic, group string) ([]ConsumerStats, error) {
	g, err := a.Group(ctx, topic, group)
	if err != nil {
		return nil, err
	}
	return g.Consumers, nil
}
