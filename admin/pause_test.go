package admin_test

import (
	"strings"
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

// A pause or resume whose reply is lost, sent again by go-redis, changes
// the state once and says it changed it.
func TestPause_ReplyLost(t *testing.T) {
	direct, proxy, a := proxiedAdmin(t)
	fixture.Topology(t, direct)
	ctx := testCtx(t)
	key := keys.Paused("orders", "billing")
	// The script is cached: the replies lost below are of scripts that ran.
	_, err := a.PauseGroup(ctx, "orders", "audit")
	require.NoError(t, err)
	for _, paused := range []bool{true, false} {
		lost := proxy.LoseReply(func(args []string) bool {
			return len(args) > 3 && strings.HasPrefix(strings.ToLower(args[0]), "eval") && args[3] == key
		})
		set := a.ResumeGroup
		if paused {
			set = a.PauseGroup
		}
		changed, err := set(ctx, "orders", "billing")
		require.NoError(t, err)
		select {
		case <-lost:
		default:
			t.Fatal("no reply was lost")
		}
		assert.True(t, changed, "paused %v: this call changed the state", paused)
		state, err := a.GroupPaused(ctx, "orders", "billing")
		require.NoError(t, err)
		assert.Equal(t, paused, state.Paused)
	}
	assert.EqualValues(t, 2, xlen(t, direct, key), "one change each")
}
