package keys_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Auxiliary keys share their topic's Cluster slot , whatever the
// topic name, so multi-key transactions (dead-lettering: XADD to the
// dead-letter stream + XACK in one MULTI) stay legal on Redis Cluster.
func TestAuxKeys_SameClusterSlotAsTopic(t *testing.T) {
	t.Parallel()
	// A cluster-enabled node answers CLUSTER KEYSLOT without any slots assigned.
	srv := redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{"cluster-enabled yes", "cluster-config-file nodes.conf"}})
	c := srv.Client(t)
	keySlot := func(key string) int64 {
		slot, err := c.ClusterKeySlot(context.Background(), key).Result()
		require.NoError(t, err)
		return slot
	}
	require.NotEqual(t, keySlot("a{}b"), keySlot("{a{}b}:dlq"), "sanity")
	for _, topic := range []string{
		"orders", "a{b}c", "{orders}", "svc:orders", "a{b", "{a}{b}",
		"a{}b",    // empty hash tag: Redis hashes the whole key
		"x}y",     // '}' without '{'
		"{}",      // only an empty tag
		"}{",      // reversed braces
		"a{}b{c}", // an empty tag first: the whole key is hashed
	} {
		slot := keySlot(topic)
		assert.Equal(t, slot, keySlot(keys.DeadLetter(topic)), "DeadLetterTopic(%q) = %q", topic, keys.DeadLetter(topic))
		assert.Equal(t, slot, keySlot(keys.Delayed(topic)), "DelayedKey(%q) = %q", topic, keys.Delayed(topic))
		assert.Equal(t, slot, keySlot(keys.LastError(topic, "g", "1-0")), "LastError(%q)", topic)
		assert.Equal(t, slot, keySlot(keys.Paused(topic, "g")), "Paused(%q)", topic)
	}
}

// The keys of a group carry the group's length: "a:b"/"c" and "a"/"b:c"
// name different keys.
func TestGroupKeys_Unambiguous(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "{orders}:paused:7:billing", keys.Paused("orders", "billing"))
	assert.Equal(t, "{orders}:lasterror:7:billing:1-0", keys.LastError("orders", "billing", "1-0"))
	assert.NotEqual(t, keys.LastError("t", "a:b", "c"), keys.LastError("t", "a", "b:c"))
}

// Slot agrees with CLUSTER KEYSLOT of a real server.
func TestSlot_MatchesRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{"cluster-enabled yes", "cluster-config-file nodes.conf"}})
	c := srv.Client(t)
	for _, key := range []string{"", "orders", "{orders}:dlq", "a{b}c", "a{}b", "x}y", "123456789", "{user1000}.following"} {
		want, err := c.ClusterKeySlot(context.Background(), key).Result()
		require.NoError(t, err)
		assert.Equal(t, want, int64(keys.Slot(key)), "Slot(%q)", key)
	}
}

func TestDeadLetterBase(t *testing.T) {
	for _, topic := range []string{"orders", "a{b}c", "svc:orders", "x}y", "}{", "a:dlq"} {
		got, ok := keys.DeadLetterBase(keys.DeadLetter(topic))
		assert.True(t, ok, topic)
		assert.Equal(t, topic, got)
	}
	for _, key := range []string{"orders", "orders:dlq", "{orders}:delayed", ""} {
		_, ok := keys.DeadLetterBase(key)
		assert.False(t, ok, key)
	}
}

// Partition topics round-trip through SplitPartition; other names do not
// split.
func TestPartition(t *testing.T) {
	t.Parallel()
	for _, topic := range []string{"orders", "a#b", "a{b", "svc:orders#1"} {
		for _, i := range []int{0, 7, 12} {
			name := keys.Partition(topic, i)
			got, n, ok := keys.SplitPartition(name)
			assert.True(t, ok, name)
			assert.Equal(t, topic, got, name)
			assert.Equal(t, i, n, name)
		}
	}
	assert.Equal(t, "{orders#3}", keys.Partition("orders", 3))
	for _, name := range []string{"orders", "{orders}", "{orders#}", "{#1}", "{orders#01}", "{orders#-1}", "{orders#1", "orders#1}", "{a}b#1}", "{orders#x}"} {
		_, _, ok := keys.SplitPartition(name)
		assert.False(t, ok, name)
	}
	assert.Equal(t, "{orders}:members:billing", keys.Members("orders", "billing"))
	assert.Equal(t, "{orders}:ownership:billing", keys.Ownership("orders", "billing"))
	assert.Equal(t, keys.Slot("orders"), keys.Slot(keys.Members("orders", "a:b")))
	assert.Equal(t, keys.Slot(keys.Members("a{b}c", "g")), keys.Slot(keys.Ownership("a{b}c", "g")))
}
