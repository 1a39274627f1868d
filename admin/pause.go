package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/millrace/millrace/internal/pause"
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
	states, err := a.pauseStates(ctx, topic, []string{group})
	if err != nil {
		return PauseState{}, err
	}
	return states[0], nil
}

// pauseStates are the pause states of groups on topic, in their order, in
// one pipelined round trip.
func (a *Admin) pauseStates(ctx context.Context, topic string, groups []string) ([]PauseState, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	states, err := pause.ReadMany(ctx, a.client, topic, groups)
	if err != nil {
		return nil, fmt.Errorf("cannot read whether the groups of topic %s are paused: %w", topic, err)
	}
	out := make([]PauseState, len(states))
	for k, s := range states {
		out[k] = PauseState{Paused: s.Paused, Since: s.Since}
	}
	return out, nil
}
