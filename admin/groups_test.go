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
