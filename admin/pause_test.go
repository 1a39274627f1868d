package admin_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/keys"
)

// A paused group shows as paused in the topic's stats, with the time of
// the pause, and no longer once resumed; the other groups never do.
func TestPause_VisibleInStats(t *testing.T) {
	_, a := withTopology(t)
	ctx := testCtx(t)
	changed, err := a.PauseGroup(ctx, "orders", "billing")
	require.NoError(t, err)
	require.True(t, changed)

	stats, err := a.Stats(ctx, "orders", "payments")
	require.NoError(t, err)
	for _, s := range stats {
		for _, g := range s.Groups {
			paused := s.Topic == "orders" && g.Name == "billing"
			assert.Equal(t, paused, g.Paused, "%s/%s", s.Topic, g.Name)
			if paused {
				assert.WithinDuration(t, time.Now(), g.PausedSince, 10*time.Second)
			}
		}
	}

	changed, err = a.ResumeGroup(ctx, "orders", "billing")
	require.NoError(t, err)
	require.True(t, changed)
	g, err := a.Group(ctx, "orders", "billing")
	require.NoError(t, err)
	assert.False(t, g.Paused)
	assert.WithinDuration(t, time.Now(), g.PausedSince, 10*time.Second, "the time of the resume")
	state, err := a.GroupPaused(ctx, "orders", "billing")
	require.NoError(t, err)
	assert.Equal(t, admin.PauseState{Paused: false, Since: g.PausedSince}, state)
}

// A partitioned topic's group is paused and resumed on every partition.
func TestPause_PartitionedTopic(t *testing.T) {
	c, a := newAdmin(t)
	fixture.Partitioned(t, c)
	ctx := testCtx(t)
	changed, err := a.PauseGroup(ctx, "shipments", "billing")
	require.NoError(t, err)
	assert.True(t, changed)
	stats, err := a.Stats(ctx, keys.Partition("shipments", 0), keys.Partition("shipments", 1), keys.Partition("shipments", 2))
	require.NoError(t, err)
	for _, s := range stats {
		for _, g := range s.Groups {
			assert.Equal(t, g.Name == "billing", g.Paused, "%s %s", s.Topic, g.Name)
		}
	}
	state, err := a.GroupPaused(ctx, "shipments", "billing")
	require.NoError(t, err)
	assert.True(t, state.Paused)
	_, err = a.PauseGroup(ctx, "shipments", "nosuch")
	require.ErrorIs(t, err, admin.ErrNoSuchGroup)

	changed, err = a.ResumeGroup(ctx, "shipments", "billing")
	require.NoError(t, err)
	assert.True(t, changed)
	state, err = a.GroupPaused(ctx, keys.Partition("shipments", 2), "billing")
	require.NoError(t, err)
	assert.False(t, state.Paused)
}
