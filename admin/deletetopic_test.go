package admin_test

import (
	"context"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/faultproxy"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/keys"
)

// allKeys lists every key of the database, sorted.
func allKeys(t *testing.T, c redis.UniversalClient) []string {
	t.Helper()
	var out []string
	iter := c.Scan(context.Background(), 0, "*", 1000).Iterator()
	for iter.Next(context.Background()) {
		out = append(out, iter.Val())
	}
	require.NoError(t, iter.Err())
	slices.Sort(out)
	return out
}

// auxKeys writes one key of every kind package keys names for topic.
func auxKeys(t *testing.T, c redis.UniversalClient, topic string) {
	t.Helper()
	ctx := context.Background()
	for _, k := range []string{
		keys.Published(topic, "uuid-1"), keys.Producer(topic, "p1"), keys.Consumer(topic, "billing", "worker-1"),
		keys.LastError(topic, "billing", fixture.ID(1)),
		keys.DeadLettered(keys.DeadLetter(topic), keys.Stream(topic), "billing", fixture.ID(1)),
		keys.Members(topic, "billing"),
	} {
		require.NoError(t, c.Set(ctx, k, "x", 0).Err())
	}
	require.NoError(t, c.HSet(ctx, keys.Overflow(topic), "refused", 1).Err())
	require.NoError(t, c.HSet(ctx, keys.Ownership(topic, "billing"), "m", "0").Err())
	require.NoError(t, c.ZAdd(ctx, keys.Delayed(topic), redis.Z{Score: 1, Member: "m"}).Err())
	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: keys.Paused(topic, "billing"), Values: []string{"paused", "1"}}).Err())
}

// TestDeleteTopic: a topic goes with every key of it, its partitions' too;
// other topics, including ones whose names look alike, stay; a topic with
// pending entries is refused unless forced.
func TestDeleteTopic(t *testing.T) {
	t.Parallel()
	c, a := withTopology(t)
	ctx := testCtx(t)
	auxKeys(t, c, "orders")
	// Look-alikes that are other topics: a prefix, a hash-tagged topic in
	// the same slot, a topic with a glob character.
	for _, other := range []string{"orders2", "{orders}:x", "ord*rs"} {
		fixture.Add(t, c, other, fixture.ID(1), "o", "{}", nil)
		auxKeys(t, c, other)
	}
	// A partitioned topic: two partitions, membership keys, a dead letter.
	for i := range 2 {
		p := keys.Partition("parted", i)
		fixture.Add(t, c, p, fixture.ID(1), "p", "{}", nil)
		auxKeys(t, c, p)
	}
	fixture.Add(t, c, keys.DeadLetter(keys.Partition("parted", 1)), fixture.ID(2), "d", "{}", nil)
	auxKeys(t, c, "parted")

	before := allKeys(t, c)
	_, err := a.DeleteTopic(ctx, "orders", false)
	require.ErrorIs(t, err, admin.ErrWouldLoseEntries)
	assert.Contains(t, err.Error(), "group billing of orders holds 3")
	assert.Equal(t, before, allKeys(t, c), "a refused deletion deletes nothing")

	res, err := a.DeleteTopic(ctx, "orders", true)
	require.NoError(t, err)
	assert.EqualValues(t, 10, res.Entries)
	assert.EqualValues(t, 3, res.DeadLetters)
	assert.EqualValues(t, 1, res.Delayed)
	assert.Equal(t, []admin.DeletedGroup{{Topic: "orders", Name: "audit"}, {Topic: "orders", Name: "billing", Pending: 3}}, res.Groups)
	assert.Len(t, res.Keys, 12, "%q", res.Keys)
	after := allKeys(t, c)
	var gone []string
	for _, k := range before {
		if !slices.Contains(after, k) {
			gone = append(gone, k)
		}
	}
	assert.Equal(t, res.Keys, gone, "exactly the keys it reports are gone")
	for _, k := range after {
		if keys.Slot(k) == keys.Slot("orders") {
			assert.Contains(t, k, "{orders}:x", "nothing of orders is left in its slot: %s", k)
		}
	}
	for _, other := range []string{"orders2", "{orders}:x", "ord*rs", "payments"} {
		assert.EqualValues(t, 1, xlen(t, c, other), other)
	}

	// A partitioned topic goes with its partitions; nothing has pending
	// entries, so no force is needed.
	res, err = a.DeleteTopic(ctx, "parted", false)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Partitions)
	assert.EqualValues(t, 2, res.Entries)
	assert.EqualValues(t, 1, res.DeadLetters)
	for _, k := range allKeys(t, c) {
		assert.NotContains(t, k, "parted", "left: %s", k)
	}

	_, err = a.DeleteTopic(ctx, "orders", true)
	require.ErrorIs(t, err, admin.ErrNoSuchTopic)
	// A topic of dead letters only.
	res, err = a.DeleteTopic(ctx, "refunds", false)
	require.NoError(t, err)
	assert.Equal(t, []string{"{refunds}:dlq"}, res.Keys)
}

// A deletion whose UNLINK reply is lost, and that go-redis sends again,
// deletes the topic and says what it deleted.
func TestDeleteTopic_ReplyLost(t *testing.T) {
	t.Parallel()
	c, proxy, a := proxiedAdmin(t)
	fixture.Topology(t, c)
	auxKeys(t, c, "orders")
	lost := proxy.LoseReply(faultproxy.Command("UNLINK"))
	res, err := a.DeleteTopic(testCtx(t), "orders", true)
	require.NoError(t, err)
	select {
	case <-lost:
	default:
		t.Fatal("no reply was lost")
	}
	assert.EqualValues(t, 10, res.Entries)
	assert.EqualValues(t, 3, res.DeadLetters)
	for _, k := range allKeys(t, c) {
		assert.NotContains(t, k, "orders", "left behind")
	}
}
