package admin_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/fixture"
)

// deadLetters publishes n messages to topic and lets a subscriber with
// MaxDeliveries 1 Nack each of them until it is dead-lettered: real dead
// letters, written by the library.
func deadLetters(t *testing.T, c redis.UniversalClient, topic string, n int) []*message.Message {
	t.Helper()
	pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{}, nil)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := millrace.NewSubscriber(c, millrace.SubscriberConfig{
		ConsumerGroup: "workers",
		Consumer:      "worker-1",
		MaxDeliveries: 1,
		MaxInFlight:   8,
		NackBackoff:   time.Millisecond,
		BlockTime:     50 * time.Millisecond,
		CloseTimeout:  time.Second,
	}, nil)
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf("payload-%d", i)))
		msgs[i].Metadata.Set("k", "v")
	}
	require.NoError(t, pub.Publish(topic, msgs...))
	dlq := millrace.DeadLetterTopic(topic)
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m := <-ch:
			m.Nack()
		case <-time.After(20 * time.Millisecond):
			if l, _ := c.XLen(context.Background(), dlq).Result(); l == int64(n) {
				return msgs
			}
		case <-deadline:
			t.Fatalf("not every message was dead-lettered within 20s")
		}
	}
}

func TestReplayDeadLetters(t *testing.T) {
	t.Parallel()
	c, a := newAdmin(t)
	ctx := testCtx(t)
	topic := "replay-" + watermill.NewShortUUID()
	dlq := millrace.DeadLetterTopic(topic)
	sent := deadLetters(t, c, topic, 6)
	before := xlen(t, c, topic)

	letters, err := a.DeadLetters(ctx, topic, admin.DeadLetterQuery{})
	require.NoError(t, err)
	require.Len(t, letters, 6)
	for _, d := range letters {
		assert.Equal(t, topic, d.Topic)
		assert.Equal(t, "workers", d.Group)
		assert.Equal(t, "worker-1", d.Consumer)
		assert.NotEmpty(t, d.Reason)
		assert.NotEmpty(t, d.OriginalID)
		assert.GreaterOrEqual(t, d.Deliveries, int64(2))
		assert.Equal(t, "v", d.Metadata["k"])
	}
	page, err := a.DeadLetters(ctx, topic, admin.DeadLetterQuery{After: letters[1].ID, Count: 2})
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, letters[2].ID, page[0].ID)
	one, err := a.DeadLetter(ctx, topic, letters[3].ID)
	require.NoError(t, err)
	assert.Equal(t, letters[3].UUID, one.UUID)
	_, err = a.DeadLetter(ctx, topic, "1-1")
	require.ErrorIs(t, err, admin.ErrNoSuchDeadLetter)

	// Dry run: nothing moves.
	res, err := a.ReplayDeadLetters(ctx, topic, admin.ReplayOptions{DryRun: true})
	require.NoError(t, err)
	assert.Len(t, res.Replayed, 6)
	assert.EqualValues(t, 6, xlen(t, c, dlq))
	assert.Equal(t, before, xlen(t, c, topic))

	// By IDs, one of them unknown.
	res, err = a.ReplayDeadLetters(ctx, topic, admin.ReplayOptions{IDs: []string{letters[4].ID, "1-1", letters[1].ID}})
	require.NoError(t, err)
	require.Len(t, res.Replayed, 2)
	assert.Equal(t, letters[4].ID, res.Replayed[0].DeadLetterID)
	assert.Equal(t, letters[1].ID, res.Replayed[1].DeadLetterID)
	assert.Equal(t, []string{"1-1"}, res.Missing)

	// With a limit and progress.
	var calls [][2]int
	res, err = a.ReplayDeadLetters(ctx, topic, admin.ReplayOptions{Limit: 3, BatchSize: 2, Progress: func(done, total int) {
		calls = append(calls, [2]int{done, total})
	}})
	require.NoError(t, err)
	require.Len(t, res.Replayed, 3)
	assert.Equal(t, []string{letters[0].ID, letters[2].ID, letters[3].ID},
		[]string{res.Replayed[0].DeadLetterID, res.Replayed[1].DeadLetterID, res.Replayed[2].DeadLetterID})
	assert.Equal(t, [][2]int{{2, 3}, {3, 3}}, calls)
	assert.EqualValues(t, 1, xlen(t, c, dlq))

	// The rest.
	res, err = a.ReplayDeadLetters(ctx, topic, admin.ReplayOptions{})
	require.NoError(t, err)
	require.Len(t, res.Replayed, 1)
	assert.Equal(t, letters[5].ID, res.Replayed[0].DeadLetterID)
	assert.EqualValues(t, 0, xlen(t, c, dlq))

	// Every message is back exactly once, without dead-letter metadata.
	entries, err := c.XRange(ctx, topic, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, int(before)+6)
	var uuids []string
	for _, e := range entries[before:] {
		m, err := millrace.DefaultMarshaler{}.Unmarshal(e.Values)
		require.NoError(t, err)
		uuids = append(uuids, m.UUID)
		assert.Equal(t, message.Metadata{"k": "v"}, m.Metadata)
	}
	var want []string
	for _, m := range sent {
		want = append(want, m.UUID)
	}
	sort.Strings(uuids)
	sort.Strings(want)
	assert.Equal(t, want, uuids)
}

// Two replays of the same dead letters at once move each message once.
func TestReplayDeadLetters_ConcurrentReplaysDoNotDuplicate(t *testing.T) {
	t.Parallel()
	c, a := newAdmin(t)
	ctx := testCtx(t)
	const n = 300
	pipe := c.Pipeline()
	for i := 1; i <= n; i++ {
		msg := message.NewMessage(fmt.Sprintf("u-%d", i), []byte("p"))
		msg.Metadata.Set(middleware.PoisonedTopicKey, "t")
		fields, err := millrace.DefaultMarshaler{}.Marshal("t", msg)
		require.NoError(t, err)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: millrace.DeadLetterTopic("t"), ID: fixture.ID(i), Values: fields})
	}
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)

	var wg sync.WaitGroup
	results := make([]admin.ReplayResult, 3)
	for k := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := a.ReplayDeadLetters(ctx, "t", admin.ReplayOptions{BatchSize: 7})
			assert.NoError(t, err)
			results[k] = res
		}()
	}
	wg.Wait()
	total := 0
	for _, r := range results {
		total += len(r.Replayed)
	}
	assert.Equal(t, n, total)
	assert.EqualValues(t, n, xlen(t, c, "t"))
	assert.EqualValues(t, 0, xlen(t, c, millrace.DeadLetterTopic("t")))
}

// A dead-lettered foreign entry goes back with its original fields.
func TestReplayDeadLetters_ForeignEntry(t *testing.T) {
	t.Parallel()
	c, a := newAdmin(t)
	ctx := testCtx(t)
	topic := "foreign-" + watermill.NewShortUUID()
	pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{}, nil)
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: []interface{}{"a", "1", "b", "two"}}).Err())
	sub, err := millrace.NewSubscriber(c, millrace.SubscriberConfig{ConsumerGroup: "g", MaxDeliveries: 1, NackBackoff: time.Millisecond, BlockTime: 50 * time.Millisecond}, nil)
	require.NoError(t, err)
	sctx, cancel := context.WithCancel(ctx)
	ch, err := sub.Subscribe(sctx, topic)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		select {
		case m := <-ch:
			m.Nack()
		default:
		}
		return xlen(t, c, millrace.DeadLetterTopic(topic)) == 1
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, sub.Close())

	res, err := a.ReplayDeadLetters(ctx, topic, admin.ReplayOptions{})
	require.NoError(t, err)
	require.Len(t, res.Replayed, 1)
	back, err := c.XRange(ctx, topic, res.Replayed[0].NewID, res.Replayed[0].NewID).Result()
	require.NoError(t, err)
	require.Len(t, back, 1)
	assert.Equal(t, map[string]interface{}{"a": "1", "b": "two"}, back[0].Values)
}

func TestPurgeDeadLetters(t *testing.T) {
	t.Parallel()
	c, a := withTopology(t)
	ctx := testCtx(t)
	n, err := a.PurgeDeadLetters(ctx, "orders", admin.PurgeOptions{IDs: []string{fixture.ID(101), "1-1"}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	n, err = a.PurgeDeadLetters(ctx, "orders", admin.PurgeOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	assert.EqualValues(t, 0, xlen(t, c, "{orders}:dlq"))
	_, err = a.PurgeDeadLetters(ctx, "orders", admin.PurgeOptions{IDs: []string{"x"}})
	require.Error(t, err)
}
