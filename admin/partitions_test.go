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

// A partitioned topic: its partitions counted, each group's figures per
// partition and summed, and who owns which partition.
func TestPartitions(t *testing.T) {
	t.Parallel()
	c, a := newAdmin(t)
	fixture.Partitioned(t, c)
	fixture.Topology(t, c)
	ctx := testCtx(t)

	p, err := a.Partitions(ctx, "shipments", 0)
	require.NoError(t, err)
	assert.Equal(t, "shipments", p.Topic)
	require.Len(t, p.Partitions, 3, "counted")
	assert.Equal(t, "{shipments#2}", p.Partitions[2].Topic)
	assert.EqualValues(t, 1, p.Partitions[1].DeadLetters)
	require.Len(t, p.Groups, 2)

	audit, billing := p.Groups[0], p.Groups[1]
	assert.Equal(t, "audit", audit.Name)
	assert.True(t, audit.Partitions[0].Exists)
	assert.False(t, audit.Partitions[1].Exists, "audit reads partition 0 only")
	assert.Empty(t, audit.Members)

	assert.Equal(t, "billing", billing.Name)
	assert.EqualValues(t, 3, billing.Lag, "2 on partition 0, 1 on partition 2")
	assert.EqualValues(t, 2, billing.Pending)
	assert.Equal(t, admin.LagReported, billing.LagSource)
	var owners []string
	var lags []int64
	for i, pg := range billing.Partitions {
		assert.Equal(t, i, pg.Partition)
		owners = append(owners, pg.Owner)
		lags = append(lags, pg.Stats.Lag)
	}
	assert.Equal(t, []string{"worker-a", "worker-a", "worker-b"}, owners)
	assert.Equal(t, []int64{2, 0, 1}, lags)
	require.Len(t, billing.Members, 2)
	assert.Equal(t, "worker-a", billing.Members[0].Name)
	assert.Equal(t, []int{0, 1}, billing.Members[0].Partitions)
	assert.Equal(t, 3, billing.Members[0].Of)
	assert.False(t, billing.Members[0].Leaving)
	assert.InDelta(t, time.Hour.Seconds(), billing.Members[0].ExpiresIn.Seconds(), 60)
	assert.Equal(t, "billing-p0", billing.Partitions[0].Stats.Consumers[0].Name)

	members, err := a.Members(ctx, "shipments", "billing")
	require.NoError(t, err)
	assert.Equal(t, billing.Members[1].Name, members[1].Name)
	assert.Equal(t, []int{2}, members[1].Partitions)

	two, err := a.Partitions(ctx, "shipments", 2)
	require.NoError(t, err)
	assert.Len(t, two.Partitions, 2, "n given")
	four, err := a.Partitions(ctx, "shipments", 4)
	require.NoError(t, err)
	assert.False(t, four.Partitions[3].Exists)

	_, err = a.Partitions(ctx, "orders", 0)
	assert.ErrorIs(t, err, admin.ErrNotPartitioned)
	_, err = a.Partitions(ctx, "", 0)
	assert.ErrorIs(t, err, millrace.ErrEmptyTopic)

	// From snapshots read otherwise (a listing): other topics are left out.
	stats, err := a.Stats(ctx, "orders", "{shipments#2}", "{shipments#0}")
	require.NoError(t, err)
	all, err := a.Partitioned(ctx, stats)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Len(t, all[0].Partitions, 3)
	assert.False(t, all[0].Partitions[1].Exists, "not in the snapshots")
	assert.Equal(t, "worker-b", all[0].Groups[1].Partitions[2].Owner)
}
