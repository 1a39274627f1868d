package millrace_test

import (
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

// The README, retry-safe publishing: "Memory grows with publishers, not
// messages: one small key per pipeline slot (Pipelines, 2) and topic,
// expiring 10 minutes after its last use". And Idempotency: "a key of about
// 100 bytes per message for the window".
func TestClaims_PublishKeys(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t, 30*time.Second)
	const messages = 1000

	publishConcurrently := func(t *testing.T, pub *millrace.Publisher, topic string) {
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for range messages / 16 {
					assert.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("0123456789abcdef"))))
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, messages/16*16, xlen(t, e.client, topic))
	}

	t.Run("producer sequence", func(t *testing.T) {
		topic := newTopic()
		publishConcurrently(t, e.publisher(t, millrace.PublisherConfig{}), topic)
		keys, err := e.client.Keys(ctx, "{"+topic+"}:producer:*").Result()
		require.NoError(t, err)
		require.NotEmpty(t, keys)
		assert.LessOrEqual(t, len(keys), 2, "one key per pipeline slot (Pipelines: 2), whatever the messages")
		for _, k := range keys {
			ttl, err := e.client.PTTL(ctx, k).Result()
			require.NoError(t, err)
			assert.Greater(t, ttl, 9*time.Minute, k)
			assert.LessOrEqual(t, ttl, 10*time.Minute, k)
			size, err := e.client.MemoryUsage(ctx, k).Result()
			require.NoError(t, err)
			assert.Less(t, size, int64(200), "a small key: %s", k)
			t.Logf("%s: %d bytes, expires in %s", k, size, ttl.Round(time.Second))
		}
	})

	t.Run("idempotency", func(t *testing.T) {
		topic := "orders" // the key's size depends on the topic's name: the README's example
		pub := e.publisher(t, millrace.PublisherConfig{Idempotency: millrace.Idempotency{Window: 10 * time.Minute}})
		before := usedMemory(t, e.client)
		publishConcurrently(t, pub, topic)
		keys, err := e.client.Keys(ctx, "{"+topic+"}:published:*").Result()
		require.NoError(t, err)
		assert.Len(t, keys, messages/16*16, "one key per message")
		var total int64
		for _, k := range keys[:100] {
			size, err := e.client.MemoryUsage(ctx, k).Result()
			require.NoError(t, err)
			total += size
		}
		perKey := total / 100
		t.Logf("a published-UUID key takes %d bytes (MEMORY USAGE); used_memory grew %d bytes for %d messages with their stream entries",
			perKey, usedMemory(t, e.client)-before, len(keys))
		assert.InDelta(t, 100, perKey, 40, "about 100 bytes per key")
	})
}
