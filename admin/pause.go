package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/pause"
	"github.com/millrace/millrace/internal/rediserr"
)

// PauseState says whether a consumer group is paused.
type PauseState struct {
	Paused bool
	// Since is when the group was last paused or resumed; zero when never.
	Since time.Time
}

// PauseGroup pauses group on topic: within a second its subscribers stop
// taking new entries (and taking over other consumers' idle ones), and
// finish the entries they hold; the group's lag grows meanwhile. The state
// is kept in Redis ("{topic}:paused:<len(group)>:<group>", a small stream)
// and holds across restarts of the subscribers until [Admin.ResumeGroup].
// On a partitioned topic every partition's group is paused. changed is
// false when the group was paused already. A group that does not exist is
// [ErrNoSuchGroup].
func (a *Admin) PauseGroup(ctx context.Context, topic, group string) (changed bool, err error) {
	return a.setPaused(ctx, topic, group, true)
}

// ResumeGroup resumes group on topic (on every partition of a partitioned
// topic), paused with [Admin.PauseGroup]: its subscribers take new entries
// again at once. changed is false when it was not paused. It works on a
// group deleted meanwhile too.
func (a *Admin) ResumeGroup(ctx context.Context, topic, group string) (changed bool, err error) {
	return a.setPaused(ctx, topic, group, false)
}

func (a *Admin) setPaused(ctx context.Context, topic, group string, paused bool) (changed bool, err error) {
	if err := checkTopic(topic); err != nil {
		return false, err
	}
	topics, err := a.pauseTopics(ctx, topic, group, paused)
	if err != nil {
		return false, err
	}
	verb := "resume"
	if paused {
		verb = "pause"
	}
	for _, t := range topics {
		c, err := pause.Set(ctx, a.client, t, group, paused)
		if err != nil {
			return changed, fmt.Errorf("cannot %s group %s on topic %s: %w", verb, group, t, err)
		}
		changed = changed || c
	}
	return changed, nil
}

// pauseTopics are the topics whose group a pause or resume of group on
// topic writes: topic itself when it has the group, or else its partition
// topics when it is partitioned and its first partition has the group. A
// pause of a group found on neither is [ErrNoSuchGroup]; a resume then
// writes topic's, so that a group deleted while paused can be resumed.
func (a *Admin) pauseTopics(ctx context.Context, topic, group string, paused bool) ([]string, error) {
	_, err := a.Group(ctx, topic, group)
	if err == nil || !errors.Is(err, ErrNoSuchGroup) {
		return []string{topic}, err
	}
	n, cerr := a.countPartitions(ctx, topic)
	if cerr != nil {
		return nil, cerr
	}
	if n > 0 {
		if _, gerr := a.Group(ctx, keys.Partition(topic, 0), group); gerr == nil {
			topics := make([]string, n)
			for i := range topics {
				topics[i] = keys.Partition(topic, i)
			}
			return topics, nil
		}
	}
	if paused {
		return nil, err
	}
	return []string{topic}, nil
}

// GroupPaused says whether group on topic is paused (on a partitioned
// topic: on any partition). A group never paused, or that does not exist,
// is not.
func (a *Admin) GroupPaused(ctx context.Context, topic, group string) (PauseState, error) {
	if err := checkTopic(topic); err != nil {
		return PauseState{}, err
	}
	topics, err := a.pauseTopics(ctx, topic, group, false)
	if err != nil {
		return PauseState{}, err
	}
	refs := make([]pause.Ref, len(topics))
	for i, t := range topics {
		refs[i] = pause.Ref{Topic: t, Group: group}
	}
	states, err := pause.ReadMany(ctx, a.client, refs)
	if err != nil {
		return PauseState{}, fmt.Errorf("cannot read whether group %s of topic %s is paused: %w", group, topic, err)
	}
	var out PauseState
	for _, st := range states {
		out.Paused = out.Paused || st.Paused
		if st.Since.After(out.Since) {
			out.Since = st.Since
		}
	}
	return out, nil
}

// markPaused sets Paused and PausedSince of every group of stats, in one
// pipelined round trip. A server that refuses the reads (an ACL without
// XREVRANGE) leaves them unset.
func (a *Admin) markPaused(ctx context.Context, stats []TopicStats) error {
	var refs []pause.Ref
	for _, s := range stats {
		for _, g := range s.Groups {
			refs = append(refs, pause.Ref{Topic: s.Topic, Group: g.Name})
		}
	}
	states, err := pause.ReadMany(ctx, a.client, refs)
	if rediserr.IsNoPerm(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read which groups are paused: %w", err)
	}
	for i := range stats {
		for j := range stats[i].Groups {
			st := states[0]
			states = states[1:]
			stats[i].Groups[j].Paused, stats[i].Groups[j].PausedSince = st.Paused, st.Since
			stats[i].Groups[j].Abandoned = stats[i].Groups[j].Abandoned && !st.Paused
		}
	}
	return nil
}
