package millrace_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

func TestAuxKeys(t *testing.T) {
	t.Parallel()
	cases := []struct{ topic, dlq, delayed string }{
		{"orders", "{orders}:dlq", "{orders}:delayed"},
		{"a{b}c", "a{b}c:dlq", "a{b}c:delayed"},
		{"{orders}", "{orders}:dlq", "{orders}:delayed"},
		{"svc:orders", "{svc:orders}:dlq", "{svc:orders}:delayed"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.dlq, millrace.DeadLetterTopic(tc.topic), "DeadLetterTopic(%q)", tc.topic)
		assert.Equal(t, tc.delayed, millrace.DelayedKey(tc.topic), "DelayedKey(%q)", tc.topic)
	}
}

// Auxiliary keys share their topic's Cluster slot (keys.go), whatever the
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
		assert.Equal(t, slot, keySlot(millrace.DeadLetterTopic(topic)), "DeadLetterTopic(%q) = %q", topic, millrace.DeadLetterTopic(topic))
		assert.Equal(t, slot, keySlot(millrace.DelayedKey(topic)), "DelayedKey(%q) = %q", topic, millrace.DelayedKey(topic))
	}
}

func TestEntryTime(t *testing.T) {
	cases := []struct {
		id   string
		want time.Time
		ok   bool
	}{
		{"1700000000000-0", time.UnixMilli(1700000000000), true},
		{"1700000000123-42", time.UnixMilli(1700000000123), true},
		{"0-1", time.UnixMilli(0), true},
		{"", time.Time{}, false},
		{"garbage", time.Time{}, false},
		{"abc-0", time.Time{}, false},
		{"-1-0", time.Time{}, false},
	}
	for _, tc := range cases {
		got, ok := millrace.EntryTime(tc.id)
		assert.Equal(t, tc.ok, ok, "EntryTime(%q)", tc.id)
		if tc.ok {
			assert.True(t, tc.want.Equal(got), "EntryTime(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}

	// The time Redis puts in the ID of an entry it adds.
	e := newEnv(t)
	before := time.Now().Add(-time.Second)
	id, err := e.client.XAdd(context.Background(), &redis.XAddArgs{Stream: newTopic(), Values: []string{"k", "v"}}).Result()
	require.NoError(t, err)
	got, ok := millrace.EntryTime(id)
	require.True(t, ok)
	assert.WithinRange(t, got, before, time.Now().Add(time.Second))
}
