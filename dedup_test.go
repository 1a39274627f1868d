package millrace_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

var _ middleware.ExpiringKeyRepository = (*millrace.ExpiringKeyRepository)(nil)

func TestExpiringKeyRepository(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	prefix := "test:" + watermill.NewShortUUID() + ":"
	repo, err := millrace.NewExpiringKeyRepository(e.client, millrace.ExpiringKeyRepositoryConfig{
		Window: time.Second, KeyPrefix: prefix,
	})
	require.NoError(t, err)

	dup, err := repo.IsDuplicate(ctx, "k")
	require.NoError(t, err)
	assert.False(t, dup, "first sight")
	ttl, err := e.client.PTTL(ctx, prefix+"k").Result()
	require.NoError(t, err)
	assert.Positive(t, ttl, "the Redis key expires with the window")
	assert.LessOrEqual(t, ttl, time.Second)
	dup, err = repo.IsDuplicate(ctx, "k")
	require.NoError(t, err)
	assert.True(t, dup, "within the window")
	dup, err = repo.IsDuplicate(ctx, "other")
	require.NoError(t, err)
	assert.False(t, dup)

	time.Sleep(1100 * time.Millisecond)
	dup, err = repo.IsDuplicate(ctx, "k")
	require.NoError(t, err)
	assert.False(t, dup, "the window is over")

	// Exactly one of many concurrent checks sees a key as new.
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dup, err := repo.IsDuplicate(ctx, "race")
			assert.NoError(t, err)
			if !dup {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, fresh.Load())
}

func TestExpiringKeyRepository_Config(t *testing.T) {
	t.Parallel()
	_, err := millrace.NewExpiringKeyRepository(nil, millrace.ExpiringKeyRepositoryConfig{})
	require.ErrorIs(t, err, millrace.ErrNilClient)
	e := newEnv(t)
	_, err = millrace.NewExpiringKeyRepository(e.client, millrace.ExpiringKeyRepositoryConfig{Window: -time.Second})
	require.Error(t, err)
	_, err = millrace.NewExpiringKeyRepository(e.client, millrace.ExpiringKeyRepositoryConfig{Window: time.Microsecond})
	require.Error(t, err)

	repo, err := millrace.NewExpiringKeyRepository(e.client, millrace.ExpiringKeyRepositoryConfig{})
	require.NoError(t, err)
	dup, err := repo.IsDuplicate(context.Background(), "default")
	require.NoError(t, err)
	require.False(t, dup)
	ttl, err := e.client.PTTL(context.Background(), millrace.DefaultDeduplicationKeyPrefix+"default").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 50*time.Second)
	assert.LessOrEqual(t, ttl, millrace.DefaultDeduplicationWindow)
}

// Two routers in a group share the repository: a message published twice
// is handled once.
func TestExpiringKeyRepository_WithDeduplicator(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	repo, err := millrace.NewExpiringKeyRepository(e.client, millrace.ExpiringKeyRepositoryConfig{
		KeyPrefix: "dedup:" + topic + ":",
	})
	require.NoError(t, err)

	var mu sync.Mutex
	handled := map[string]int{}
	for range 2 {
		router, err := message.NewRouter(message.RouterConfig{CloseTimeout: time.Second}, testLogger)
		require.NoError(t, err)
		dedup := &middleware.Deduplicator{
			KeyFactory: func(msg *message.Message) (string, error) { return msg.UUID, nil },
			Repository: repo,
			Timeout:    time.Second,
		}
		router.AddMiddleware(dedup.Middleware)
		router.AddConsumerHandler("h", topic, e.subscriber(t, groupConfig("g")), func(msg *message.Message) error {
			mu.Lock()
			handled[msg.UUID]++
			mu.Unlock()
			return nil
		})
		runRouter(t, router)
	}

	var msgs []*message.Message
	for range 20 {
		msg := message.NewMessage(watermill.NewUUID(), []byte("x"))
		msgs = append(msgs, msg, msg.Copy()) // the same message twice, e.g. a producer's retry
	}
	require.NoError(t, pub.Publish(topic, msgs...))
	require.Eventually(t, func() bool {
		return pendingCount(t, e.client, topic, "g") == 0 && xlen(t, e.client, topic) == 40 &&
			groupRead(t, e, topic) == 40
	}, 10*time.Second, 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, handled, 20)
	for uuid, n := range handled {
		assert.Equal(t, 1, n, uuid)
	}
}

// groupRead is the entries-read counter of group g (Redis 7).
func groupRead(t *testing.T, e *env, topic string) int64 {
	g, ok := groupInfo(t, e.client, topic, "g")
	require.True(t, ok)
	return g.EntriesRead
}
