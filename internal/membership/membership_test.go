package membership_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/membership"
	"github.com/millrace/millrace/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Members renew themselves and see each other; Read sees what Beat sees
// without writing; an expired member drops out, a leaving one at once.
func TestBeatReadLeave(t *testing.T) {
	t.Parallel()
	c := redistest.StartFromEnv(t).Client(t)
	ctx := context.Background()

	_, err := membership.Beat(ctx, c, "orders", "g", "b", time.Minute, membership.Record{Partitions: 4, Owned: []int{2, 3}})
	require.NoError(t, err)
	v, err := membership.Beat(ctx, c, "orders", "g", "a", time.Minute, membership.Record{Partitions: 4, Owned: []int{0}, Leaving: true})
	require.NoError(t, err)
	require.Len(t, v.Members, 2)
	assert.Equal(t, "a", v.Members[0].Name, "sorted by name")
	assert.Equal(t, membership.Record{Partitions: 4, Owned: []int{0}, Leaving: true}, v.Members[0].Record)
	assert.Equal(t, []int{2, 3}, v.Members[1].Owned)
	assert.WithinDuration(t, v.Time.Add(time.Minute), v.Members[0].Expires, time.Second)
	assert.WithinDuration(t, time.Now(), v.Time, time.Minute, "the server's clock")

	read, err := membership.Read(ctx, c, "orders", "g")
	require.NoError(t, err)
	require.Len(t, read.Members, 2)
	for i := range read.Members {
		assert.Equal(t, v.Members[i].Name, read.Members[i].Name)
		assert.Equal(t, v.Members[i].Record, read.Members[i].Record)
		assert.Equal(t, v.Members[i].Expires.UnixMilli(), read.Members[i].Expires.UnixMilli())
	}
	other, err := membership.Read(ctx, c, "orders", "other")
	require.NoError(t, err)
	assert.Empty(t, other.Members, "per group")

	// A member that stops renewing is gone once its TTL has passed.
	_, err = membership.Beat(ctx, c, "orders", "g", "short", 50*time.Millisecond, membership.Record{Partitions: 4})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, err := membership.Read(ctx, c, "orders", "g")
		return err == nil && len(v.Members) == 2
	}, 5*time.Second, 10*time.Millisecond)
	v, err = membership.Beat(ctx, c, "orders", "g", "b", time.Minute, membership.Record{Partitions: 4})
	require.NoError(t, err)
	assert.Len(t, v.Members, 2, "the script drops the expired member")
	assert.False(t, c.HExists(ctx, keys.Ownership("orders", "g"), "short").Val(), "its record too")

	v, err = membership.Leave(ctx, c, "orders", "g", "a")
	require.NoError(t, err)
	require.Len(t, v.Members, 1)
	assert.Equal(t, "b", v.Members[0].Name)
	ttl := c.PTTL(ctx, keys.Members("orders", "g")).Val()
	assert.Positive(t, ttl, "the keys expire when every member is gone")
	assert.LessOrEqual(t, ttl, time.Minute)
	assert.Equal(t, "g-p3", membership.Consumer("g", 3))
}
