package admin_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/fixture"
)

func TestMessages(t *testing.T) {
	c, a := withTopology(t)
	ctx := testCtx(t)

	got, err := a.Messages(ctx, "orders", 3)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for k, n := range []int{10, 9, 8} {
		assert.Equal(t, fixture.ID(n), got[k].ID)
		assert.Equal(t, int64(fixture.BaseMS+n), got[k].Time.UnixMilli())
	}
	assert.Equal(t, "uuid-10", got[0].UUID)
	assert.Equal(t, `{"order":10}`, string(got[0].Payload))
	assert.Equal(t, "test", got[0].Metadata["source"])
	assert.False(t, got[0].Foreign)
	assert.Empty(t, got[0].DecodeError)

	all, err := a.Messages(ctx, "orders", 0)
	require.NoError(t, err)
	assert.Len(t, all, 10, "count <= 0 reads 10")

	// An entry of another producer is decoded as foreign: its fields as a
	// JSON payload.
	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "orders", ID: fixture.ID(11), Values: []string{"sku", "A-1"}}).Err())
	got, err = a.Messages(ctx, "orders", 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.True(t, got[0].Foreign)
	assert.Equal(t, "true", got[0].Metadata[millrace.MetadataForeign])
	assert.JSONEq(t, `{"sku":"A-1"}`, string(got[0].Payload))
	assert.Equal(t, fixture.ID(11), got[0].UUID, "an entry without a UUID is named by its ID")

	none, err := a.Messages(ctx, "no-such-topic", 5)
	require.NoError(t, err)
	assert.Empty(t, none)

	_, err = a.Messages(ctx, "", 5)
	assert.ErrorIs(t, err, millrace.ErrEmptyTopic)
}
