package admin_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/fixture"
)

func TestGroupAdmin(t *testing.T) {
	t.Parallel()
	_, a := withTopology(t)
	ctx := testCtx(t)

	require.NoError(t, a.CreateGroup(ctx, "orders", "new", millrace.StartOldest))
	require.ErrorIs(t, a.CreateGroup(ctx, "orders", "new", millrace.StartOldest), admin.ErrGroupExists)
	require.Error(t, a.CreateGroup(ctx, "orders", "bad", "yesterday"))
	require.NoError(t, a.CreateGroup(ctx, "fresh-topic", "g", millrace.StartNewest), "creates the stream")

	require.NoError(t, a.ResetGroup(ctx, "orders", "billing", millrace.StartNewest))
	billing, err := a.Group(ctx, "orders", "billing")
	require.NoError(t, err)
	assert.EqualValues(t, 0, billing.Lag)
	assert.EqualValues(t, 3, billing.Pending, "pending entries stay")

	require.NoError(t, a.ResetGroupToTime(ctx, "orders", "billing", time.UnixMilli(fixture.BaseMS+8)))
	billing, err = a.Group(ctx, "orders", "billing")
	require.NoError(t, err)
	assert.Equal(t, fixture.ID(8), billing.NextUndeliveredID)
	assert.EqualValues(t, 3, billing.Lag)

	require.ErrorIs(t, a.ResetGroup(ctx, "orders", "nope", "0"), admin.ErrNoSuchGroup)
	require.ErrorIs(t, a.ResetGroup(ctx, "no-stream", "nope", "0"), admin.ErrNoSuchGroup)
	require.NoError(t, a.DeleteGroup(ctx, "orders", "new"))
	require.ErrorIs(t, a.DeleteGroup(ctx, "orders", "new"), admin.ErrNoSuchGroup)
	require.ErrorIs(t, a.DeleteGroup(ctx, "no-stream", "new"), admin.ErrNoSuchGroup)
	require.ErrorIs(t, a.DeleteGroup(ctx, "", "new"), millrace.ErrEmptyTopic)
}

func TestPruneConsumers(t *testing.T) {
	t.Parallel()
	c, a := withTopology(t)
	ctx := testCtx(t)
	// worker-dead holds 3 entries, worker-live none; "idle-empty" never read.
	require.NoError(t, c.XGroupCreateConsumer(ctx, "orders", "billing", "idle-empty").Err())
	time.Sleep(1100 * time.Millisecond) // idle time to accrue
	require.NoError(t, c.XGroupCreateConsumer(ctx, "orders", "billing", "fresh").Err())
	names := func() []string {
		consumers, err := a.Consumers(ctx, "orders", "billing")
		require.NoError(t, err)
		var names []string
		for _, cs := range consumers {
			names = append(names, cs.Name)
		}
		return names
	}

	// A dry run says what a prune does, and changes nothing.
	dry, err := a.PruneConsumers(ctx, "orders", "billing", admin.PruneOptions{Idle: time.Second, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"idle-empty", "worker-live"}, dry.Removed)
	require.Len(t, dry.Kept, 1)
	assert.Equal(t, "worker-dead", dry.Kept[0].Name)
	assert.Equal(t, []string{"fresh", "idle-empty", "worker-dead", "worker-live"}, names())

	res, err := a.PruneConsumers(ctx, "orders", "billing", admin.PruneOptions{Idle: time.Second})
	require.NoError(t, err)
	assert.Equal(t, []string{"idle-empty", "worker-live"}, res.Removed)
	require.Len(t, res.Kept, 1)
	assert.Equal(t, "worker-dead", res.Kept[0].Name)
	assert.EqualValues(t, 3, res.Kept[0].Pending)
	assert.Equal(t, []string{"fresh", "worker-dead"}, names())
	billing, err := a.Group(ctx, "orders", "billing")
	require.NoError(t, err)
	assert.EqualValues(t, 3, billing.Pending, "no pending entry is dropped")

	for _, dryRun := range []bool{false, true} {
		_, err = a.PruneConsumers(ctx, "orders", "nope", admin.PruneOptions{Idle: time.Second, DryRun: dryRun})
		require.ErrorIs(t, err, admin.ErrNoSuchGroup)
		_, err = a.PruneConsumers(ctx, "no-stream", "nope", admin.PruneOptions{Idle: time.Second, DryRun: dryRun})
		require.ErrorIs(t, err, admin.ErrNoSuchGroup)
	}
	_, err = a.PruneConsumers(ctx, "orders", "billing", admin.PruneOptions{Idle: -time.Second})
	require.Error(t, err)
}

// TestMoveBeyondEnd: a move or a creation past the stream's last entry and
// ahead of Redis's clock is refused unless forced; one that is merely after
// the last entry (a time since then) is not. The refused move changes
// nothing; MoveGroup says what a move changed.
func TestMoveBeyondEnd(t *testing.T) {
	t.Parallel()
	c, a := withTopology(t)
	ctx := testCtx(t)
	before, err := a.Group(ctx, "orders", "billing")
	require.NoError(t, err)

	future := time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, err := range []error{
		a.ResetGroup(ctx, "orders", "billing", "99999999999999-0"),
		a.ResetGroupToTime(ctx, "orders", "billing", future),
		a.CreateGroup(ctx, "orders", "ahead", "99999999999999-0"),
		a.CreateGroup(ctx, "fresh-topic", "ahead", "99999999999999-0"),
	} {
		require.ErrorIs(t, err, admin.ErrBeyondEnd)
		assert.Contains(t, err.Error(), "would skip every message")
	}
	after, err := a.Group(ctx, "orders", "billing")
	require.NoError(t, err)
	assert.Equal(t, before.LastDeliveredID, after.LastDeliveredID, "a refused move changes nothing")
	_, err = a.Group(ctx, "orders", "ahead")
	require.ErrorIs(t, err, admin.ErrNoSuchGroup, "a refused creation creates nothing")
	assert.Zero(t, xlen(t, c, "fresh-topic"))
	exists, err := c.Exists(ctx, "fresh-topic").Result()
	require.NoError(t, err)
	assert.Zero(t, exists, "a refused creation creates no stream")

	// After the last entry but in the past: nothing published from now on
	// is skipped.
	mv, err := a.MoveGroup(ctx, "orders", "billing", "1760000000000-0", admin.MoveOptions{})
	require.NoError(t, err)
	assert.Equal(t, before.LastDeliveredID, mv.Before.LastDeliveredID)
	assert.Equal(t, before.Lag, mv.Before.Lag)
	assert.Equal(t, "1760000000000-0", mv.After.LastDeliveredID)
	assert.EqualValues(t, 0, mv.After.Lag)

	mv, err = a.MoveGroup(ctx, "orders", "billing", "99999999999999-0", admin.MoveOptions{Force: true})
	require.NoError(t, err)
	assert.Equal(t, "99999999999999-0", mv.After.LastDeliveredID)
	mv, err = a.CreateGroupWith(ctx, "orders", "ahead", "99999999999999-0", admin.MoveOptions{Force: true})
	require.NoError(t, err)
	assert.True(t, mv.Created)
	assert.Equal(t, "99999999999999-0", mv.After.LastDeliveredID)

	_, err = a.MoveGroup(ctx, "no-stream", "g", "0", admin.MoveOptions{})
	require.ErrorIs(t, err, admin.ErrNoSuchTopic)
	require.ErrorIs(t, err, admin.ErrNoSuchGroup)
	assert.Equal(t, "millrace: no such topic: no-stream", err.Error())
}

func TestPositionBeyondEnd(t *testing.T) {
	now := time.UnixMilli(2000)
	for _, c := range []struct {
		pos, last string
		want      bool
	}{
		{"0", "5-0", false},
		{"$", "5-0", false},
		{"5-0", "5-0", false},
		{"1999-0", "5-0", false}, // after the last entry, before now
		{"2000-0", "5-0", true},
		{"3000-0", "", true},
		{"3000-0", "0-0", true},
		{"3000-0", "3000-1", false}, // a stream whose IDs run ahead of the clock
		{"3000-2", "3000-1", true},
	} {
		assert.Equal(t, c.want, admin.PositionBeyondEnd(c.pos, c.last, now), "%s after %s", c.pos, c.last)
	}
}
