package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
)

// MoveOptions configure [Admin.MoveGroup] and [Admin.CreateGroupWith].
type MoveOptions struct {
	// Force moves (or creates) a group at a position beyond the stream's
	// end: after its last entry and ahead of Redis's clock. Such a group
	// skips every message published until the clock passes the position,
	// so without Force it is an [ErrBeyondEnd] error.
	Force bool
}

// GroupMove says what a group move or creation changed.
type GroupMove struct {
	Topic, Group string
	// Created is true for a new group; Before is then zero.
	Created bool
	// Before and After are the group's figures (position, lag, pending)
	// before and after the move; zero where the ACL does not let the user
	// read them.
	Before, After GroupStats
}

// CreateGroup creates group on topic, starting at start: millrace.StartOldest,
// millrace.StartNewest or an entry ID (XGROUP CREATE ... MKSTREAM). The
// stream is created if missing. An existing group is an [ErrGroupExists]
// error; a start beyond the stream's end an [ErrBeyondEnd] error (see
// [Admin.CreateGroupWith]). On Redis 7.0+ the group starts with the
// ENTRIESREAD that makes the lag Redis reports (XINFO GROUPS, what
// autoscalers read) the entries after start; see [Admin.ResetGroup].
func (a *Admin) CreateGroup(ctx context.Context, topic, group, start string) error {
	_, err := a.CreateGroupWith(ctx, topic, group, start, MoveOptions{})
	return err
}

// CreateGroupWith is [Admin.CreateGroup] with options, and says what it
// did: the new group's figures in After.
func (a *Admin) CreateGroupWith(ctx context.Context, topic, group, start string, opts MoveOptions) (GroupMove, error) {
	mv := GroupMove{Topic: topic, Group: group, Created: true}
	if err := checkTopic(topic); err != nil {
		return mv, err
	}
	if err := checkPosition(start); err != nil {
		return mv, err
	}
	s, full, err := a.moveState(ctx, topic)
	if err != nil {
		return mv, err
	}
	if _, ok := findGroup(s, group); ok {
		return mv, fmt.Errorf("%w: %s on topic %s", ErrGroupExists, group, topic)
	}
	if err := checkBeyondEnd(s, group, start, opts); err != nil {
		return mv, err
	}
	exists, err := streams.CreateGroupAt(ctx, a.client, keys.Stream(topic), group, start)
	if exists {
		return mv, fmt.Errorf("%w: %s on topic %s", ErrGroupExists, group, topic)
	}
	if err != nil {
		return mv, fmt.Errorf("cannot create consumer group %s on topic %s: %w", group, topic, err)
	}
	return a.groupAfter(ctx, mv, full)
}

// ResetGroup moves group so that its next read returns the entries after id
// (XGROUP SETID): millrace.StartOldest re-reads the whole stream,
// millrace.StartNewest skips everything unread. Pending entries stay
// pending. An id beyond the stream's end is an [ErrBeyondEnd] error (see
// [Admin.MoveGroup] to force it).
//
// On Redis 7.0+ the move keeps the lag Redis reports (XINFO GROUPS lag,
// which KEDA's redis-streams scaler and redis_exporter read) right: the
// group is given the ENTRIESREAD of id (XGROUP SETID ... ENTRIESREAD), so
// Redis reports a lag of the entries after id at once, not nil until the
// group catches up. Working it out counts the entries after id, 1,000 per
// call (about 4ms of Redis each). Redis still reports no lag while an entry
// deleted with XDEL lies ahead of the group, and for an id ahead of the
// stream's last entry the lag also counts the entries published later with
// IDs up to id, which the group skips. Before Redis 7.0, or for a user
// whose ACL refuses EVAL/EVALSHA or XINFO STREAM, it is a plain XGROUP
// SETID.
func (a *Admin) ResetGroup(ctx context.Context, topic, group, id string) error {
	_, err := a.MoveGroup(ctx, topic, group, id, MoveOptions{})
	return err
}

// ResetGroupToTime moves group so that its next read returns the entries
// added at or after t. A t ahead of Redis's clock and of the stream's last
// entry is an [ErrBeyondEnd] error.
func (a *Admin) ResetGroupToTime(ctx context.Context, topic, group string, t time.Time) error {
	return a.ResetGroup(ctx, topic, group, entryid.Before(t))
}

// MoveGroup is [Admin.ResetGroup] with options, and says what it changed:
// the group's figures before and after. A missing group is an
// [ErrNoSuchGroup] error, a missing topic one that is also
// [ErrNoSuchTopic].
func (a *Admin) MoveGroup(ctx context.Context, topic, group, to string, opts MoveOptions) (GroupMove, error) {
	mv := GroupMove{Topic: topic, Group: group}
	if err := checkTopic(topic); err != nil {
		return mv, err
	}
	if err := checkPosition(to); err != nil {
		return mv, err
	}
	s, full, err := a.moveState(ctx, topic)
	if err != nil {
		return mv, err
	}
	if !s.Exists {
		if err := a.mustExist(ctx, topic, group); err != nil {
			return mv, err
		}
	}
	var ok bool
	if mv.Before, ok = findGroup(s, group); !ok && full {
		return mv, fmt.Errorf("%w: %s on topic %s", ErrNoSuchGroup, group, topic)
	}
	if err := checkBeyondEnd(s, group, to, opts); err != nil {
		return mv, err
	}
	err = streams.SetGroupID(ctx, a.client, keys.Stream(topic), group, to)
	if rediserr.IsNoGroup(err) || rediserr.IsNoStream(err) {
		return mv, fmt.Errorf("%w: %s on topic %s", ErrNoSuchGroup, group, topic)
	}
	if err != nil {
		return mv, fmt.Errorf("cannot reset consumer group %s on topic %s: %w", group, topic, err)
	}
	return a.groupAfter(ctx, mv, full)
}

// moveState reads what a group move checks: the topic's figures (full),
// or, for a user whose ACL refuses the commands of those (XINFO), only
// whether its stream exists, its last entry and Redis's clock.
func (a *Admin) moveState(ctx context.Context, topic string) (TopicStats, bool, error) {
	s, err := a.Topic(ctx, topic)
	if err == nil || !rediserr.IsNoPerm(err) {
		return s, err == nil, err
	}
	s = TopicStats{Topic: topic}
	stream := keys.Stream(topic)
	pipe := a.client.Pipeline()
	exists := pipe.Exists(ctx, stream)
	last := pipe.XRevRangeN(ctx, stream, "+", "-", 1)
	now := pipe.Time(ctx)
	_, _ = pipe.Exec(ctx)
	if err := exists.Err(); err != nil {
		return s, false, fmt.Errorf("cannot read topic %s: %w", topic, err)
	}
	s.Exists = exists.Val() > 0
	if msgs, err := last.Result(); err == nil && len(msgs) > 0 {
		s.LastGeneratedID = msgs[0].ID
	}
	s.Time = now.Val()
	return s, false, nil
}

// groupAfter fills the group's figures after a move in mv, when the user
// may read them (full). The move is done: a read the ACL refuses (the
// figures of a group Redis knows no lag for need XINFO CONSUMERS and
// XRANGE) leaves After zero rather than failing it.
func (a *Admin) groupAfter(ctx context.Context, mv GroupMove, full bool) (GroupMove, error) {
	if !full {
		return mv, nil
	}
	after, err := a.Group(ctx, mv.Topic, mv.Group)
	if rediserr.IsNoPerm(err) {
		return mv, nil
	}
	mv.After = after
	return mv, err
}

func findGroup(s TopicStats, group string) (GroupStats, bool) {
	for _, g := range s.Groups {
		if g.Name == group {
			return g, true
		}
	}
	return GroupStats{}, false
}

// checkBeyondEnd refuses, unless forced, a position of group beyond the end
// of the stream of s (see [PositionBeyondEnd]).
func checkBeyondEnd(s TopicStats, group, pos string, opts MoveOptions) error {
	if opts.Force || !PositionBeyondEnd(pos, s.LastGeneratedID, s.Time) {
		return nil
	}
	last := s.LastGeneratedID
	if last == "" || last == "0-0" {
		last = "none"
	}
	return fmt.Errorf("%w: %s is after the last entry ID of topic %s (%s) and ahead of Redis's clock (%s): group %s would skip every message published before then; force it to move there anyway",
		ErrBeyondEnd, pos, s.Topic, last, s.Time.UTC().Format(time.RFC3339), group)
}

// PositionBeyondEnd reports whether a group at pos (an entry ID; "0" and
// "$" never are) skips messages published from now on: pos is after
// lastGenerated, the stream's last-generated ID ("" or "0-0" for none), and
// its time is at or ahead of now, Redis's clock. New entries get IDs after
// both, so a position after the last entry but before now skips nothing.
func PositionBeyondEnd(pos, lastGenerated string, now time.Time) bool {
	if pos == millrace.StartOldest || pos == millrace.StartNewest || !entryid.Valid(pos) {
		return false
	}
	if lastGenerated != "" && entryid.Compare(pos, lastGenerated) <= 0 {
		return false
	}
	ms, _, _ := entryid.Parse(pos)
	if now.IsZero() {
		now = time.Now()
	}
	return ms >= uint64(max(now.UnixMilli(), 0))
}

func checkPosition(id string) error {
	if id == millrace.StartOldest || id == millrace.StartNewest || entryid.Valid(id) {
		return nil
	}
	return fmt.Errorf("invalid position %q: want %q, %q or an entry ID like 1700000000000-0", id, millrace.StartOldest, millrace.StartNewest)
}

// DeleteGroup deletes group from topic (XGROUP DESTROY), with its pending
// entries list: its unacknowledged messages are no longer tracked.
func (a *Admin) DeleteGroup(ctx context.Context, topic, group string) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	n, err := a.client.XGroupDestroy(ctx, keys.Stream(topic), group).Result()
	if rediserr.IsNoStream(err) || (err == nil && n == 0) {
		return fmt.Errorf("%w: %s on topic %s", ErrNoSuchGroup, group, topic)
	}
	if err != nil {
		return fmt.Errorf("cannot delete consumer group %s on topic %s: %w", group, topic, err)
	}
	return nil
}

// PruneOptions configure [Admin.PruneConsumers].
type PruneOptions struct {
	// Idle is how long a consumer must have been idle (XINFO CONSUMERS idle)
	// to be removed. Default: 0, every consumer that holds no pending entry.
	Idle time.Duration
	// DryRun reports what would be removed and kept, changing nothing.
	DryRun bool
}

// PruneResult says what [Admin.PruneConsumers] did.
type PruneResult struct {
	// Removed are the consumers deleted, sorted: idle long enough, nothing
	// pending.
	Removed []string
	// Kept are consumers idle long enough that still hold pending entries,
	// sorted by name: deleting them would drop those entries, so they stay
	// until their entries are claimed by live consumers (ClaimMinIdle) or
	// acknowledged. Their Inactive is -1 unless DryRun read it.
	Kept []ConsumerStats
}

// PruneConsumers deletes the consumers of group on topic that have been idle
// for at least opts.Idle and hold no pending entry, atomically (a Lua script
// around XINFO CONSUMERS and XGROUP DELCONSUMER): it never drops a pending
// entry. Consumers that are idle but still hold entries are returned in
// Kept. A missing group is an [ErrNoSuchGroup] error.
func (a *Admin) PruneConsumers(ctx context.Context, topic, group string, opts PruneOptions) (PruneResult, error) {
	var res PruneResult
	if err := checkTopic(topic); err != nil {
		return res, err
	}
	if opts.Idle < 0 {
		return res, fmt.Errorf("idle must not be negative, got %s", opts.Idle)
	}
	if opts.DryRun {
		consumers, err := a.Consumers(ctx, topic, group)
		if err != nil {
			return res, err
		}
		for _, c := range consumers {
			switch {
			case c.Idle < opts.Idle:
			case c.Pending == 0:
				res.Removed = append(res.Removed, c.Name)
			default:
				res.Kept = append(res.Kept, c)
			}
		}
		return res, nil
	}
	removed, kept, err := streams.PruneConsumers(ctx, a.client, keys.Stream(topic), group, opts.Idle)
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
