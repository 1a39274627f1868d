package dedup_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/dedup"
	"github.com/millrace/millrace/internal/redistest"
)

// testLogger logs errors and warnings only.
var testLogger = watermill.NewStdLogger(false, false)

func TestExpiringKeyRepository(t *testing.T) {
	t.Parallel()
	client := redistest.StartFromEnv(t).Client(t)
	ctx := context.Background()
	prefix := "test:" + watermill.NewShortUUID() + ":"
	repo, err := dedup.NewExpiringKeyRepository(client, dedup.Config{
		Window: time.Second, KeyPrefix: prefix,
	})
	require.NoError(t, err)

	dup, err := repo.IsDuplicate(ctx, "k")
	require.NoError(t, err)
	assert.False(t, dup, "first sight")
	ttl, err := client.PTTL(ctx, prefix+"k").Result()
	require.NoError(t, err)
	assert.Positive(t, ttl, "the Redis key expires with the window")
	assert.LessOrEqual(t, ttl, time.Second)
	dup, err = repo.IsDuplicate(ctx, "k")
	require.NoError(t, err)
	assert.True(t, dup, "within the window")
	dup, err = repo.IsDuplicate(ctx, "other")
	require.NoError(t, err)
	assert.False(t, dup)

	require.Eventually(t, func() bool { return client.Exists(ctx, prefix+"k").Val() == 0 }, 3*time.Second, 20*time.Millisecond,
		"Redis expires the key after the window")
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
	_, err := dedup.NewExpiringKeyRepository(nil, dedup.Config{})
	require.ErrorIs(t, err, dedup.ErrNilClient)
	client := redistest.StartFromEnv(t).Client(t)
	_, err = dedup.NewExpiringKeyRepository(client, dedup.Config{Window: -time.Second})
	require.Error(t, err)
	_, err = dedup.NewExpiringKeyRepository(client, dedup.Config{Window: time.Microsecond})
	require.Error(t, err)

	repo, err := dedup.NewExpiringKeyRepository(client, dedup.Config{})
	require.NoError(t, err)
	dup, err := repo.IsDuplicate(context.Background(), "default")
	require.NoError(t, err)
	require.False(t, dup)
	ttl, err := client.PTTL(context.Background(), "millrace:dedup:default").Result()
	require.NoError(t, err, "the default key prefix")
	assert.Greater(t, ttl, 50*time.Second)
	assert.LessOrEqual(t, ttl, time.Minute, "the default window")
}

// Two routers in a group share the repository: a message published twice
// is handled once.
func TestExpiringKeyRepository_WithDeduplicator(t *testing.T) {
	t.Parallel()
	client := redistest.StartFromEnv(t).Client(t)
	topic := "topic-" + watermill.NewShortUUID()
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	defer pub.Close()
	repo, err := dedup.NewExpiringKeyRepository(client, dedup.Config{
		KeyPrefix: "dedup:" + topic + ":",
	})
	require.NoError(t, err)

	var mu sync.Mutex
	handled := map[string]int{}
	for range 2 {
		startRouter(t, client, topic, repo, func(msg *message.Message) error {
			mu.Lock()
			handled[msg.UUID]++
			mu.Unlock()
			return nil
		})
	}

	var msgs []*message.Message
	for range 20 {
		msg := message.NewMessage(watermill.NewUUID(), []byte("x"))
		msgs = append(msgs, msg, msg.Copy()) // the same message twice, e.g. a producer's retry
	}
	require.NoError(t, pub.Publish(topic, msgs...))
	require.Eventually(t, func() bool {
		groups, err := client.XInfoGroups(context.Background(), topic).Result()
		require.NoError(t, err)
		require.Len(t, groups, 1)
		return groups[0].EntriesRead == 40 && groups[0].Pending == 0 // every entry read and acked
	}, 10*time.Second, 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, handled, 20)
	for uuid, n := range handled {
		assert.Equal(t, 1, n, uuid)
	}
}

// startRouter runs a Router whose handler consumes topic in group "g"
// behind a Deduplicator over repo, until the test ends.
func startRouter(t *testing.T, client redis.UniversalClient, topic string, repo *dedup.ExpiringKeyRepository, handle message.NoPublishHandlerFunc) {
	t.Helper()
	sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		ConsumerGroup: "g", BlockTime: 100 * time.Millisecond, CloseTimeout: 300 * time.Millisecond,
	}, testLogger)
	require.NoError(t, err)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: time.Second}, testLogger)
	require.NoError(t, err)
	d := &middleware.Deduplicator{
		KeyFactory: func(msg *message.Message) (string, error) { return msg.UUID, nil },
		Repository: repo,
		Timeout:    time.Second,
	}
	router.AddMiddleware(d.Middleware)
	router.AddConsumerHandler("h", topic, sub, handle)

	// The group starts at the oldest entry (StartOldest), so messages
	// published before the router subscribes are handled too.
	stopped := make(chan error, 1)
	go func() { stopped <- router.Run(context.Background()) }()
	select {
	case <-router.Running(): // subscribed: the group exists
	case err := <-stopped:
		t.Fatalf("router stopped: %v", err)
	}
	t.Cleanup(func() {
		require.NoError(t, router.Close())
		require.NoError(t, <-stopped)
		require.NoError(t, sub.Close())
	})
}
