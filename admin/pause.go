package admin

import (
	"context"
	"fmt"
	"time"

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
// changed is false when the group was paused already. A group that does not
// exist is [ErrNoSuchGroup].
func (a *Admin) PauseGroup(ctx context.Context, topic, group string) (changed bool, err error) {
	if err := checkTopic(topic); err != nil {
		return false, err
	}
	if _, err := a.Group(ctx, topic, group); err != nil {
		return false, err
	}
	changed, err = pause.Set(ctx, a.client, topic, group, true)
	if err != nil {
		return false, fmt.Errorf("cannot pause group %s on topic %s: %w", group, topic, err)
	}
	return changed, nil
}

// ResumeGroup resumes group on topic, paused with [Admin.PauseGroup]: its
// subscribers take new entries again at once. changed is false when it was
// not paused. It works on a group deleted meanwhile too.
func (a *Admin) ResumeGroup(ctx context.Context, topic, group string) (changed bool, err error) {
	if err := checkTopic(topic); err != nil {
		return false, err
	}
	changed, err = pause.Set(ctx, a.client, topic, group, false)
	if err != nil {
		return false, fmt.Errorf("cannot resume group %s on topic %s: %w", group, topic, err)
	}
	return changed, nil
}

// GroupPaused says whether group on topic is paused (one XREVRANGE ...
// COUNT 1). A group never paused, or that does not exist, is not.
func (a *Admin) GroupPaused(ctx context.Context, topic, group string) (PauseState, error) {
	if err := checkTopic(topic); err != nil {
		return PauseState{}, err
	}
	states, err := pause.ReadMany(ctx, a.client, []pause.Ref{{Topic: topic, Group: group}})
	if err != nil {
		return PauseState{}, fmt.Errorf("cannot read whether group %s of topic %s is paused: %w", group, topic, err)
	}
	return PauseState{Paused: states[0].Paused, Since: states[0].Since}, nil
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
		}
	}
	return nil
}
