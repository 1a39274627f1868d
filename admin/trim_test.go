package admin_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/fixture"
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
