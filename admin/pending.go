package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/lasterror"
	"github.com/millrace/millrace/internal/rediserr"
)

// PendingEntry is one entry of a group's pending entries list.
type PendingEntry struct {
	ID       string
	Consumer string
	// Idle is the time since the entry was last delivered (or, for an
	// entry a closing subscriber released to the others, since a day
	// before its release); its age is the time in ID.
	Idle time.Duration
	// Deliveries is Redis's delivery counter of the entry.
	Deliveries int64
	// LastError is the error the handler returned at the entry's last
	// failed delivery, "" when none is known: the subscribers keep it when
	// the handler's error reaches them (millrace.RecordErrors), for 7 days
	// after the failure, while the entry is pending.
	LastError string
}

// Pending lists up to count entries (100 if count <= 0) of group's pending
// entries list, oldest first (XPENDING key group - + count), or
// [ErrNoSuchGroup].
func (a *Admin) Pending(ctx context.Context, topic, group string, count int64) ([]PendingEntry, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	if count <= 0 {
		count = 100
	}
	res, err := a.client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: keys.Stream(topic), Group: group, Start: "-", End: "+", Count: count}).Result()
	if err != nil && !rediserr.IsNil(err) {
		if rediserr.IsNoGroup(err) {
			return nil, fmt.Errorf("%w: %s on topic %s", ErrNoSuchGroup, group, topic)
		}
		return nil, fmt.Errorf("cannot read the pending entries of group %s on topic %s: %w", group, topic, err)
	}
	out := make([]PendingEntry, len(res))
	ids := make([]string, len(res))
	for k, p := range res {
		out[k] = PendingEntry{ID: p.ID, Consumer: p.Consumer, Idle: p.Idle, Deliveries: p.RetryCount}
		ids[k] = p.ID
	}
	errs, err := a.lastErrors(ctx, topic, group, ids)
	if err != nil {
		return nil, err
	}
	for k := range out {
		out[k].LastError = errs[k]
	}
	return out, nil
}

// lastErrors are the last errors of entries ids of group on topic; none
// (and no error) when the server refuses to read them (an ACL without GET
// on the topic's keys).
func (a *Admin) lastErrors(ctx context.Context, topic, group string, ids []string) ([]string, error) {
	errs, err := lasterror.Get(ctx, a.client, topic, group, ids...)
	if rediserr.IsNoPerm(err) {
		return make([]string, len(ids)), nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the last errors of group %s on topic %s: %w", group, topic, err)
	}
	return errs, nil
}

// ErrNotPending is returned by [Admin.PendingEntry] for an entry that is
// not in the group's pending entries list (acknowledged, never delivered,
// or not an entry of the topic).
var ErrNotPending = errors.New("millrace: entry is not pending")

// PendingDetail is one pending entry opened in full.
type PendingDetail struct {
	PendingEntry
	// Time is the time in the entry's ID: when it was added. Age is how
	// long ago, by the server's clock.
	Time time.Time
	Age  time.Duration
	// Message is the entry decoded like a dead letter's (UUID, payload,
	// metadata, Foreign, DecodeError); Message.ID is "" when the entry was
	// deleted from the stream while pending (trimmed), and only the PEL's
	// figures are known.
	Message Message
}

// PendingEntry opens entry id of group's pending entries list on topic:
// its message, the consumer that holds it, its deliveries, age, idle time
// and last error. An entry that is not pending in the group is
// [ErrNotPending]; a group that does not exist, [ErrNoSuchGroup].
func (a *Admin) PendingEntry(ctx context.Context, topic, group, id string) (PendingDetail, error) {
	var d PendingDetail
	if err := checkTopic(topic); err != nil {
		return d, err
	}
	if err := checkID(id); err != nil {
		return d, err
	}
	stream := keys.Stream(topic)
	pipe := a.client.Pipeline()
	pend := pipe.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: id, End: id, Count: 1})
	entry := pipe.XRangeN(ctx, stream, id, id, 1)
	now := pipe.Time(ctx)
	_, _ = pipe.Exec(ctx)
	res, err := pend.Result()
	if err != nil && !rediserr.IsNil(err) {
		if rediserr.IsNoGroup(err) {
			return d, fmt.Errorf("%w: %s on topic %s", ErrNoSuchGroup, group, topic)
		}
		return d, fmt.Errorf("cannot read the pending entries of group %s on topic %s: %w", group, topic, err)
	}
	if len(res) == 0 {
		return d, fmt.Errorf("%w: %s in group %s of topic %s", ErrNotPending, id, group, topic)
	}
	msgs, err := entry.Result()
	if err != nil && !rediserr.IsNil(err) {
		return d, fmt.Errorf("cannot read entry %s of topic %s: %w", id, topic, err)
	}
	p := res[0]
	d.PendingEntry = PendingEntry{ID: p.ID, Consumer: p.Consumer, Idle: p.Idle, Deliveries: p.RetryCount}
	errs, err := a.lastErrors(ctx, topic, group, []string{id})
	if err != nil {
		return d, err
	}
	d.LastError = errs[0]
	d.Time, _ = entryid.Time(id)
	if t, err := now.Result(); err == nil {
		d.Age = max(t.Sub(d.Time), 0)
	}
	if len(msgs) == 1 {
		d.Message = decodeMessage(msgs[0])
	}
	return d, nil
}
