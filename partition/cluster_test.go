package partition_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/redistest"
	"github.com/millrace/millrace/partition"
)

// Partitioned topics on a Redis Cluster of three masters, their partitions
// spread over the masters.
func TestCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3, 0)
	client := cl.Client(t)

	// One merged subscription keeps per-key order.
	t.Run("merged", func(t *testing.T) {
		topic := "hot-" + watermill.NewShortUUID()
		const partitions = 6
		parts, err := partition.Topics(topic, partitions)
		require.NoError(t, err)
		masters := map[string]bool{}
		for _, pt := range parts {
			masters[cl.MasterFor(t, pt).Addr()] = true
		}
		t.Logf("%d partitions on %d masters", partitions, len(masters))
		checkPerKeyOrder(t, client, topic, partitions, 20)
	})

	// Members share the partitions (the membership keys live in the
	// topic's slot, the partitions' leases in theirs), and admin reads who
	// owns what.
	t.Run("balanced", func(t *testing.T) {
		topic := newTopic()
		const n = 6
		h := newHandled()
		for _, name := range []string{"a", "b"} {
			sub := newBalanced(t, client, balancedConfig(topic, n, name))
			ch, err := sub.Subscribe(context.Background(), topic)
			require.NoError(t, err)
			go h.consume(ch)
		}
		shares := awaitShares(t, client, topic, n, "a", "b")
		pub := newPublisher(t, client, partition.Config{Topics: map[string]int{topic: n}})
		keys := partKeys(12)
		for _, key := range keys {
			msgs := make([]*message.Message, 10)
			for i := range msgs {
				msgs[i] = partMessage(key, i)
			}
			require.NoError(t, pub.Publish(topic, msgs...))
		}
		h.await(t, len(keys)*10)
		h.mu.Lock()
		for _, key := range keys {
			assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, h.byKey[key], key)
		}
		h.mu.Unlock()

		p, err := admin.New(client, admin.Options{}).Partitions(context.Background(), topic, 0)
		require.NoError(t, err)
		require.Len(t, p.Partitions, n)
		require.Len(t, p.Groups, 1)
		require.Len(t, p.Groups[0].Members, 2)
		assert.Equal(t, shares["a"], p.Groups[0].Members[0].Partitions)
		assert.Equal(t, shares["b"], p.Groups[0].Members[1].Partitions)
	})
}
