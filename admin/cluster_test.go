package admin_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/redistest"
)

// On Redis Cluster the stats script declares the dead-letter stream only
// when it shares the topic's slot: a custom dead-letter topic elsewhere is
// counted apart instead of failing the script with CROSSSLOT.
func TestCluster_DeadLetterTopicInAnotherSlot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster")
	}
	t.Parallel()
	c := redistest.StartCluster(t, 3, 0).Client(t)
	fixture.Topology(t, c)
	graveyard := func(topic string) string { return topic + "-graveyard" }
	require.NotEqual(t, keys.Slot("orders"), keys.Slot(graveyard("orders")), "the test needs another slot")
	for n := 1; n <= 2; n++ {
		fixture.Add(t, c, graveyard("orders"), fixture.ID(300+n), fmt.Sprintf("grave-%d", n), "{}", nil)
	}
	ctx := testCtx(t)

	for name, a := range map[string]*admin.Admin{
		"default": admin.New(c, admin.Options{}),
		"custom":  admin.New(c, admin.Options{DeadLetterTopic: graveyard}),
	} {
		stats, err := a.Stats(ctx, "orders", "payments", "refunds")
		require.NoError(t, err, name)
		require.Len(t, stats[0].Groups, 2, name)
		assert.EqualValues(t, 5, stats[0].Groups[1].Lag, name)
		if name == "default" {
			assert.Equal(t, millrace.DeadLetterTopic("orders"), stats[0].DeadLetterTopic)
			assert.EqualValues(t, []int64{3, 0, 1}, []int64{stats[0].DeadLetters, stats[1].DeadLetters, stats[2].DeadLetters})
		} else {
			assert.Equal(t, "orders-graveyard", stats[0].DeadLetterTopic)
			assert.EqualValues(t, []int64{2, 0, 0}, []int64{stats[0].DeadLetters, stats[1].DeadLetters, stats[2].DeadLetters})
		}
	}
}

// On Redis Cluster DeleteTopic finds the keys of a topic on the node of its
// slot, those of its partitions on theirs, and a custom dead-letter
// topic's markers of it on that topic's node.
func TestCluster_DeleteTopic(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster")
	}
	t.Parallel()
	c := redistest.StartCluster(t, 3, 0).Client(t)
	fixture.Topology(t, c)
	ctx := testCtx(t)
	graveyard := func(topic string) string { return topic + "-graveyard" }
	fixture.Add(t, c, graveyard("orders"), fixture.ID(301), "grave-1", "{}", nil)
	marker := keys.DeadLettered(graveyard("orders"), "orders", "billing", fixture.ID(1))
	other := keys.DeadLettered(graveyard("orders"), "orders2", "billing", fixture.ID(1))
	require.NoError(t, c.Set(ctx, marker, "1", 0).Err())
	require.NoError(t, c.Set(ctx, other, "1", 0).Err())
	auxKeys(t, c, "orders")
	slots := map[uint16]bool{}
	for i := range 3 {
		p := keys.Partition("parted", i)
		fixture.Add(t, c, p, fixture.ID(1), "p", "{}", nil)
		auxKeys(t, c, p)
		slots[keys.Slot(p)] = true
	}
	require.Len(t, slots, 3, "the partitions are in slots of their own")

	all := func() []string {
		var mu sync.Mutex
		var out []string
		require.NoError(t, c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			ks, err := n.Keys(ctx, "*").Result()
			mu.Lock()
			out = append(out, ks...)
			mu.Unlock()
			return err
		}))
		return out
	}
	a := admin.New(c, admin.Options{DeadLetterTopic: graveyard})
	res, err := a.DeleteTopic(ctx, "orders", true)
	require.NoError(t, err)
	assert.Contains(t, res.Keys, graveyard("orders"))
	assert.Contains(t, res.Keys, marker)
	_, err = a.DeleteTopic(ctx, "parted", false)
	require.NoError(t, err)
	left := all()
	for _, k := range left {
		assert.NotEqual(t, keys.Slot("orders"), keys.Slot(k), "left of orders: %s", k)
		assert.NotContains(t, k, "parted", "left of parted: %s", k)
	}
	assert.Contains(t, left, other, "another stream's marker stays")
	assert.Contains(t, left, "payments")
}
