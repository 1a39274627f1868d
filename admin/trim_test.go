package admin_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/keys"
)

func TestTrim(t *testing.T) {
	t.Parallel()
	c, a := withTopology(t)
	ctx := testCtx(t)
	n, err := a.TrimBefore(ctx, "orders", time.UnixMilli(fixture.BaseMS+3), false)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "entries 1 and 2")
	n, err = a.TrimMinID(ctx, "orders", fixture.ID(4), false)
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "entry 3")
	n, err = a.TrimMaxLen(ctx, "orders", 5, false)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	first, err := c.XRangeN(ctx, "orders", "-", "+", 1).Result()
	require.NoError(t, err)
	assert.Equal(t, fixture.ID(6), first[0].ID)
	n, err = a.TrimMaxLen(ctx, "orders", 0, true)
	require.NoError(t, err)
	assert.LessOrEqual(t, n, int64(5))
	_, err = a.TrimMinID(ctx, "orders", "soon", false)
	require.Error(t, err)
	_, err = a.TrimMaxLen(ctx, "orders", -1, false)
	require.Error(t, err)
}

// TestTrimCountsLosses: a trim says per group what it deletes unread or
// unacknowledged, refuses without Force, and then deletes exactly what it
// counted.
func TestTrimCountsLosses(t *testing.T) {
	t.Parallel()
	c, a := withTopology(t)
	ctx := testCtx(t)
	// billing: read 1-5, 1-3 pending; audit: at 4 (lag 6, Redis knows none).

	// Keeping 8 deletes 1 and 2: pending in billing, read by audit.
	res, err := a.Trim(ctx, "orders", admin.TrimOptions{MaxLen: 8, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, admin.TrimResult{Topic: "orders", Cut: fixture.ID(3), Deleted: 2, DryRun: true,
		Losses: []admin.TrimLoss{{Group: "billing", Pending: 2}}}, res)
	assert.EqualValues(t, 10, xlen(t, c, "orders"), "a dry run deletes nothing")

	_, err = a.Trim(ctx, "orders", admin.TrimOptions{MaxLen: 8})
	require.ErrorIs(t, err, admin.ErrWouldLoseEntries)
	assert.Contains(t, err.Error(), "group billing: 0 unread, 2 pending")
	assert.EqualValues(t, 10, xlen(t, c, "orders"), "a refused trim deletes nothing")

	// Keeping 3 deletes 1-7: billing loses 3 pending and 6, 7 unread;
	// audit 5, 6, 7 unread (counted: Redis reports no lag for it).
	res, err = a.Trim(ctx, "orders", admin.TrimOptions{MaxLen: 3, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, fixture.ID(8), res.Cut)
	assert.EqualValues(t, 7, res.Deleted)
	assert.Equal(t, []admin.TrimLoss{{Group: "audit", Unread: 3}, {Group: "billing", Unread: 2, Pending: 3}}, res.Losses)

	// The same by ID, then forced.
	res, err = a.Trim(ctx, "orders", admin.TrimOptions{MaxLen: -1, MinID: fixture.ID(8), DryRun: true})
	require.NoError(t, err)
	assert.EqualValues(t, 7, res.Deleted)
	assert.Equal(t, []admin.TrimLoss{{Group: "audit", Unread: 3}, {Group: "billing", Unread: 2, Pending: 3}}, res.Losses)
	res, err = a.Trim(ctx, "orders", admin.TrimOptions{MaxLen: -1, MinID: fixture.ID(8), Force: true})
	require.NoError(t, err)
	assert.EqualValues(t, 7, res.Deleted)
	assert.EqualValues(t, 3, xlen(t, c, "orders"))
	first, err := c.XRangeN(ctx, "orders", "-", "+", 1).Result()
	require.NoError(t, err)
	assert.Equal(t, fixture.ID(8), first[0].ID)
	// What billing lost unread is counted, and its lag is right again.
	assert.Equal(t, "2", c.HGet(ctx, keys.Overflow("orders"), keys.OverflowDropped+"billing").Val())
	billing, err := a.Group(ctx, "orders", "billing")
	require.NoError(t, err)
	assert.EqualValues(t, 3, billing.Lag)
	assert.EqualValues(t, 2, billing.Dropped)

	// Nothing to delete, nothing lost.
	res, err = a.Trim(ctx, "orders", admin.TrimOptions{MaxLen: 5})
	require.NoError(t, err)
	assert.Zero(t, res.Deleted)
	assert.Empty(t, res.Losses)

	// A trim that costs no group anything needs no force: read and
	// acknowledge everything in billing, then move audit to the end.
	require.NoError(t, a.ResetGroup(ctx, "orders", "audit", millrace.StartNewest))
	res, err = a.Trim(ctx, "orders", admin.TrimOptions{MaxLen: 1, Approx: false, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, []admin.TrimLoss{{Group: "billing", Unread: 2, Pending: 3}}, res.Losses)

	_, err = a.Trim(ctx, "orders", admin.TrimOptions{MaxLen: 1, MinID: fixture.ID(9)})
	require.Error(t, err)
	_, err = a.Trim(ctx, "no-such-topic", admin.TrimOptions{MaxLen: 1})
	require.ErrorIs(t, err, admin.ErrNoSuchTopic)

	// A longer stream than one page: the cut is found from either end.
	pipe := c.Pipeline()
	for i := 0; i < 2500; i++ {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: "long", Values: []string{"n", "x"}})
	}
	_, err = pipe.Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, c.XGroupCreate(ctx, "long", "g", "0").Err())
	all, err := c.XRange(ctx, "long", "-", "+").Result()
	require.NoError(t, err)
	for _, keep := range []int64{2400, 100} {
		res, err = a.Trim(ctx, "long", admin.TrimOptions{MaxLen: keep, DryRun: true})
		require.NoError(t, err)
		assert.Equal(t, all[2500-keep].ID, res.Cut, "keep %d", keep)
		assert.Equal(t, []admin.TrimLoss{{Group: "g", Unread: 2500 - keep}}, res.Losses)
	}
}
