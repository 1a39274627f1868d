package partition_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/redistest"
	"github.com/millrace/millrace/partition"
)

// A partitioned topic on a Redis Cluster of three masters, its partitions
// spread over the masters: one merged subscription, per-key order.
func TestCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3, 0)
	topic := "hot-" + watermill.NewShortUUID()
	const partitions = 6
	parts, err := partition.Topics(topic, partitions)
	require.NoError(t, err)
	masters := map[string]bool{}
	for _, pt := range parts {
		masters[cl.MasterFor(t, pt).Addr()] = true
	}
	t.Logf("%d partitions on %d masters", partitions, len(masters))
	checkPerKeyOrder(t, cl.Client(t), topic, partitions, 20)
}
