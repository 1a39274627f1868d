package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
)

// TrimOptions configure [Admin.Trim]: exactly one of MaxLen (>= 0) and
// MinID.
type TrimOptions struct {
	// MaxLen keeps the newest MaxLen entries; -1 (or unset with MinID)
	// means none.
	MaxLen int64
	// MinID deletes the entries before this entry ID.
	MinID string
	// Approx trims whole nodes only (~): much cheaper, keeps a few more.
	// The losses are then the most the trim can cost.
	Approx bool
	// Force deletes entries a group has not read or not acknowledged;
	// without it such a trim is an [ErrWouldLoseEntries] error and deletes
	// nothing.
	Force bool
	// DryRun says what the trim would delete and changes nothing.
	DryRun bool
}

// TrimResult says what [Admin.Trim] deleted, or would delete.
type TrimResult struct {
	Topic string
	// Cut is the first entry ID kept: every entry before it is deleted
	// ("" when nothing is).
	Cut string
	// Deleted is the number of entries deleted (XTRIM's reply); for a dry
	// run, the number the trim would delete.
	Deleted int64
	// Losses are, per group, what the trim deletes that the group has not
	// processed, sorted by group; groups that lose nothing are left out.
	Losses []TrimLoss
	DryRun bool
}

// TrimLoss is what a trim takes from one consumer group.
type TrimLoss struct {
	Group string
	// Unread entries are deleted before the group read them: it never
	// sees them.
	Unread int64
	// Pending entries were delivered and not acknowledged: they stay in the
	// group's pending list, but a consumer that claims them gets nothing
	// to process again.
	Pending int64
}

// trimPage is the most entries or pending entries one call of a trim's
// counting reads.
const trimPage = 1000

// Trim deletes the oldest entries of topic: all but the newest
// opts.MaxLen, or those before opts.MinID. It first works out the first
// entry it keeps (the cut) and, per consumer group, how many of the entries
// before it the group has not read or not acknowledged; if any group would
// lose one it refuses with [ErrWouldLoseEntries] unless opts.Force. It then
// trims at the cut (XTRIM MINID, also for MaxLen, so entries published
// meanwhile are never deleted in place of the counted ones).
//
// Working out the cut of a MaxLen trim reads the smaller of the deleted
// and the kept part of the stream, 1,000 entries per call; counting a
// group's unread entries before the cut reads them unless Redis knows its
// lag, and its pending entries before the cut are read from its pending
// list. A group that reads meanwhile loses fewer than counted.
func (a *Admin) Trim(ctx context.Context, topic string, opts TrimOptions) (TrimResult, error) {
	res := TrimResult{Topic: topic, DryRun: opts.DryRun}
	if err := checkTopic(topic); err != nil {
		return res, err
	}
	hasMin := opts.MinID != ""
	if hasMin == (opts.MaxLen >= 0) {
		return res, fmt.Errorf("give exactly one of MaxLen (>= 0) and MinID")
	}
	if hasMin {
		if err := checkID(opts.MinID); err != nil {
			return res, err
		}
	}
	s, err := a.Topic(ctx, topic)
	if err != nil {
		return res, err
	}
	if !s.Exists {
		return res, a.mustExist(ctx, topic, "")
	}
	stream := keys.Stream(topic)
	// cut is the first entry kept; deleted the entries before it.
	var cut string
	var deleted int64
	if hasMin {
		cut = opts.MinID
		if deleted, err = a.countRange(ctx, stream, "-", cut); err != nil {
			return res, err
		}
	} else if deleted = s.Length - opts.MaxLen; deleted > 0 {
		if cut, err = a.nthEntry(ctx, stream, s.LastEntryID, s.Length, deleted); err != nil {
			return res, err
		}
	}
	if deleted <= 0 {
		return res, nil
	}
	res.Cut, res.Deleted = cut, deleted
	for _, g := range s.Groups {
		loss := TrimLoss{Group: g.Name}
		if entryid.Compare(g.LastDeliveredID, cut) < 0 {
			// Every entry deleted is unread when the group is before the
			// first; inside the stream its lag counts the unread entries
			// there, kept ones included.
			kept := s.Length - deleted
			if entryid.Compare(g.LastDeliveredID, s.FirstEntryID) < 0 {
				loss.Unread = deleted
			} else if g.LagSource != LagLowerBound && g.Lag >= kept {
				loss.Unread = g.Lag - kept
			} else if loss.Unread, err = a.countRange(ctx, stream, "("+g.LastDeliveredID, cut); err != nil {
				return res, err
			}
		}
		if g.Pending > 0 && entryid.Compare(g.OldestPendingID, cut) < 0 {
			if loss.Pending, err = a.countPendingBefore(ctx, stream, g.Name, cut); err != nil {
				return res, err
			}
		}
		if loss.Unread > 0 || loss.Pending > 0 {
			res.Losses = append(res.Losses, loss)
		}
	}
	if opts.DryRun {
		return res, nil
	}
	if len(res.Losses) > 0 && !opts.Force {
		var parts []string
		for _, l := range res.Losses {
			parts = append(parts, fmt.Sprintf("group %s: %d unread, %d pending", l.Group, l.Unread, l.Pending))
		}
		return res, fmt.Errorf("%w: trimming topic %s before %s deletes entries not yet processed (%s); force it to trim anyway",
			ErrWouldLoseEntries, topic, cut, strings.Join(parts, "; "))
	}
	if opts.Approx {
		res.Deleted, err = trimmed(topic, a.client.XTrimMinIDApprox(ctx, stream, cut, 0))
	} else {
		res.Deleted, err = trimmed(topic, a.client.XTrimMinID(ctx, stream, cut))
	}
	if err != nil {
		return res, err
	}
	return res, a.settleDropped(ctx, topic, res.Deleted)
}

// settleDropped, after a trim of topic that deleted n entries, counts the
// entries trimmed before groups read them in the topic's overflow counts
// and sets those groups' lag right (streams.SettleDropped). A user whose
// ACL refuses scripts skips it: the trim is done either way.
func (a *Admin) settleDropped(ctx context.Context, topic string, n int64) error {
	if n == 0 {
		return nil
	}
	_, err := streams.SettleDropped(ctx, a.client, keys.Stream(topic), keys.Overflow(topic), keys.OverflowDropped)
	if err != nil && !rediserr.IsScriptRefused(err) {
		return fmt.Errorf("trimmed topic %s, but cannot count what its groups lost: %w", topic, err)
	}
	return nil
}

// countRange counts the entries of stream from start to before end (end
// excluded), trimPage per call.
func (a *Admin) countRange(ctx context.Context, stream, start, end string) (int64, error) {
	var n int64
	for {
		msgs, err := a.client.XRangeN(ctx, stream, start, "("+end, trimPage).Result()
		if err != nil && !rediserr.IsNil(err) {
			return 0, fmt.Errorf("cannot read topic %s: %w", stream, err)
		}
		n += int64(len(msgs))
		if len(msgs) < trimPage {
			return n, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// nthEntry is the ID of the entry after the first skip entries of stream,
// which held length entries up to last: read from the oldest or from last
// backwards, whichever is shorter, so that entries added since do not count.
func (a *Admin) nthEntry(ctx context.Context, stream, last string, length, skip int64) (string, error) {
	fromOldest := skip <= length-skip-1
	cursor, left := "-", skip+1
	if !fromOldest {
		cursor, left = last, length-skip
	}
	for {
		var msgs []redis.XMessage
		var err error
		n := min(left, trimPage)
		if fromOldest {
			msgs, err = a.client.XRangeN(ctx, stream, cursor, "+", n).Result()
		} else {
			msgs, err = a.client.XRevRangeN(ctx, stream, cursor, "-", n).Result()
		}
		if err != nil && !rediserr.IsNil(err) {
			return "", fmt.Errorf("cannot read topic %s: %w", stream, err)
		}
		if len(msgs) == 0 {
			return "", fmt.Errorf("topic %s changed while it was read: try again", stream)
		}
		left -= int64(len(msgs))
		last := msgs[len(msgs)-1].ID
		if left <= 0 {
			return last, nil
		}
		cursor = "(" + last
	}
}

// countPendingBefore counts the pending entries of group with IDs before
// end, trimPage per call.
func (a *Admin) countPendingBefore(ctx context.Context, stream, group, end string) (int64, error) {
	var n int64
	start := "-"
	for {
		p, err := a.client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: start, End: "(" + end, Count: trimPage}).Result()
		if err != nil && !rediserr.IsNil(err) {
			return 0, fmt.Errorf("cannot read the pending entries of group %s on topic %s: %w", group, stream, err)
		}
		n += int64(len(p))
		if len(p) < trimPage {
			return n, nil
		}
		start = "(" + p[len(p)-1].ID
	}
}

// TrimMaxLen trims topic to its newest maxLen entries (XTRIM MAXLEN) and
// returns how many entries it deleted. With approx (MAXLEN ~) Redis only
// drops whole nodes, which is much cheaper and may keep a few tens more.
// It deletes entries whether or not every group has read them: see
// [Admin.Trim] for a trim that says what each group loses and refuses it.
func (a *Admin) TrimMaxLen(ctx context.Context, topic string, maxLen int64, approx bool) (int64, error) {
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	if maxLen < 0 {
		return 0, fmt.Errorf("maxLen must not be negative, got %d", maxLen)
	}
	var n int64
	var err error
	if approx {
		n, err = trimmed(topic, a.client.XTrimMaxLenApprox(ctx, keys.Stream(topic), maxLen, 0))
	} else {
		n, err = trimmed(topic, a.client.XTrimMaxLen(ctx, keys.Stream(topic), maxLen))
	}
	if err != nil {
		return n, err
	}
	return n, a.settleDropped(ctx, topic, n)
}

// TrimMinID deletes the entries of topic older than the entry ID minID
// (XTRIM MINID) and returns how many it deleted; approx as in
// [Admin.TrimMaxLen].
func (a *Admin) TrimMinID(ctx context.Context, topic, minID string, approx bool) (int64, error) {
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	if err := checkID(minID); err != nil {
		return 0, err
	}
	var n int64
	var err error
	if approx {
		n, err = trimmed(topic, a.client.XTrimMinIDApprox(ctx, keys.Stream(topic), minID, 0))
	} else {
		n, err = trimmed(topic, a.client.XTrimMinID(ctx, keys.Stream(topic), minID))
	}
	if err != nil {
		return n, err
	}
	return n, a.settleDropped(ctx, topic, n)
}

// TrimBefore deletes the entries of topic added before t, by the time in
// their IDs (XTRIM MINID <t in ms>-0); approx as in [Admin.TrimMaxLen].
func (a *Admin) TrimBefore(ctx context.Context, topic string, t time.Time, approx bool) (int64, error) {
	return a.TrimMinID(ctx, topic, entryid.MinAt(t), approx)
}

// trimmed is the reply of an XTRIM of topic.
func trimmed(topic string, cmd *redis.IntCmd) (int64, error) {
	n, err := cmd.Result()
	if err != nil && !rediserr.IsNil(err) {
		return 0, fmt.Errorf("cannot trim topic %s: %w", topic, err)
	}
	return n, nil
}
