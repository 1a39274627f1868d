package admin_test

import (
	"fmt"
	"testing"

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
