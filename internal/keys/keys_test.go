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
	}
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
