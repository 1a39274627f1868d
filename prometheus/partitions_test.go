package prometheus_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/redistest"
	millraceprom "github.com/millrace/millrace/prometheus"
)

const partitionMetrics = `
# HELP millrace_group_members Live members of the group sharing the partitioned topic's partitions; 0 when they are assigned by hand.
# TYPE millrace_group_members gauge
millrace_group_members{group="audit",topic="shipments"} 0
millrace_group_members{group="billing",topic="shipments"} 2
# HELP millrace_group_unowned_partitions Partitions of the group that no live member owns, for a group with members: non-zero between a member's death and the takeover.
# TYPE millrace_group_unowned_partitions gauge
millrace_group_unowned_partitions{group="billing",topic="shipments"} 0
# HELP millrace_partition_lag Entries of the partition the group has not read yet (the partition topic's group_lag, labelled with the partitioned topic).
# TYPE millrace_partition_lag gauge
millrace_partition_lag{group="audit",partition="0",topic="shipments"} 0
millrace_partition_lag{group="billing",partition="0",topic="shipments"} 2
millrace_partition_lag{group="billing",partition="1",topic="shipments"} 0
millrace_partition_lag{group="billing",partition="2",topic="shipments"} 1
# HELP millrace_partition_owner 1 for the member of the group that owns the partition.
# TYPE millrace_partition_owner gauge
millrace_partition_owner{group="billing",member="worker-a",partition="0",topic="shipments"} 1
millrace_partition_owner{group="billing",member="worker-a",partition="1",topic="shipments"} 1
millrace_partition_owner{group="billing",member="worker-b",partition="2",topic="shipments"} 1
`

// A partitioned topic's partitions, discovered or listed, give per-partition
// lag and who owns each partition; reading the members is one more round
// trip.
func TestCollector_Partitioned(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	fixture.Partitioned(t, c)
	fixture.Topology(t, c)
	names := []string{"millrace_partition_lag", "millrace_partition_owner", "millrace_group_members", "millrace_group_unowned_partitions"}
	for name, cfg := range map[string]millraceprom.Config{
		"discovered": {},
		"listed":     {Topics: []string{"{shipments#0}", "{shipments#1}", "{shipments#2}", "orders"}},
	} {
		col := millraceprom.NewCollector(c, cfg)
		require.NoError(t, testutil.CollectAndCompare(col, strings.NewReader(partitionMetrics), names...), name)
		problems, err := testutil.CollectAndLint(col)
		require.NoError(t, err)
		assert.Empty(t, problems)
	}

	var pipelines, singles atomic.Int64
	c.AddHook(countingHook{pipelines: &pipelines, singles: &singles})
	scrape := func(topics ...string) int64 {
		col := millraceprom.NewCollector(c, millraceprom.Config{Topics: topics})
		gather(t, col) // loads the script
		pipelines.Store(0)
		values := gather(t, col)
		assert.EqualValues(t, 1.0, values["millrace_up"])
		return pipelines.Load()
	}
	plain := scrape("orders", "payments")
	assert.Equal(t, plain+1, scrape("{shipments#0}", "{shipments#1}"), "the members take one more round trip")
}
