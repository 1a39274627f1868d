package millrace_test

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
	"github.com/millrace/millrace/internal/redistest"
)

// opsDeadLetters publishes n messages to topic and lets a subscriber with
// MaxDeliveries 1 Nack each of them until it is dead-lettered: real dead
// letters, written by the library.
func opsDeadLetters(t *testing.T, c redis.UniversalClient, topic string, n int) []*message.Message {
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
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	ctx := opsCtx(t)
	topic := "replay-" + watermill.NewShortUUID()
	dlq := millrace.DeadLetterTopic(topic)
	sent := opsDeadLetters(t, c, topic, 6)
	before := xlenOps(t, c, topic)

	letters, err := millrace.ListDeadLetters(ctx, c, topic, millrace.DeadLetterQuery{})
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
	page, err := millrace.ListDeadLetters(ctx, c, topic, millrace.DeadLetterQuery{After: letters[1].ID, Count: 2})
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, letters[2].ID, page[0].ID)
	one, err := millrace.GetDeadLetter(ctx, c, topic, letters[3].ID)
	require.NoError(t, err)
	assert.Equal(t, letters[3].UUID, one.UUID)
	_, err = millrace.GetDeadLetter(ctx, c, topic, "1-1")
	require.ErrorIs(t, err, millrace.ErrNoSuchDeadLetter)

	// Dry run: nothing moves.
	res, err := millrace.ReplayDeadLetters(ctx, c, topic, millrace.ReplayOptions{DryRun: true})
	require.NoError(t, err)
	assert.Len(t, res.Replayed, 6)
	assert.EqualValues(t, 6, xlenOps(t, c, dlq))
	assert.Equal(t, before, xlenOps(t, c, topic))

	// By IDs, one of them unknown.
	res, err = millrace.ReplayDeadLetters(ctx, c, topic, millrace.ReplayOptions{IDs: []string{letters[4].ID, "1-1", letters[1].ID}})
	require.NoError(t, err)
	require.Len(t, res.Replayed, 2)
	assert.Equal(t, letters[4].ID, res.Replayed[0].DeadLetterID)
	assert.Equal(t, letters[1].ID, res.Replayed[1].DeadLetterID)
	assert.Equal(t, []string{"1-1"}, res.Missing)

	// With a limit and progress.
	var calls [][2]int
	res, err = millrace.ReplayDeadLetters(ctx, c, topic, millrace.ReplayOptions{Limit: 3, BatchSize: 2, Progress: func(done, total int) {
		calls = append(calls, [2]int{done, total})
	}})
	require.NoError(t, err)
	require.Len(t, res.Replayed, 3)
	assert.Equal(t, []string{letters[0].ID, letters[2].ID, letters[3].ID},
		[]string{res.Replayed[0].DeadLetterID, res.Replayed[1].DeadLetterID, res.Replayed[2].DeadLetterID})
	assert.Equal(t, [][2]int{{2, 3}, {3, 3}}, calls)
	assert.EqualValues(t, 1, xlenOps(t, c, dlq))

	// The rest.
	res, err = millrace.ReplayDeadLetters(ctx, c, topic, millrace.ReplayOptions{})
	require.NoError(t, err)
	require.Len(t, res.Replayed, 1)
	assert.Equal(t, letters[5].ID, res.Replayed[0].DeadLetterID)
	assert.EqualValues(t, 0, xlenOps(t, c, dlq))

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
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	ctx := opsCtx(t)
	const n = 300
	pipe := c.Pipeline()
	for i := 1; i <= n; i++ {
		msg := message.NewMessage(fmt.Sprintf("u-%d", i), []byte("p"))
		msg.Metadata.Set(middleware.PoisonedTopicKey, "t")
		fields, err := millrace.DefaultMarshaler{}.Marshal("t", msg)
		require.NoError(t, err)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: millrace.DeadLetterTopic("t"), ID: opsID(i), Values: fields})
	}
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)

	var wg sync.WaitGroup
	results := make([]millrace.ReplayResult, 3)
	for k := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := millrace.ReplayDeadLetters(ctx, c, "t", millrace.ReplayOptions{BatchSize: 7})
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
	assert.EqualValues(t, n, xlenOps(t, c, "t"))
	assert.EqualValues(t, 0, xlenOps(t, c, millrace.DeadLetterTopic("t")))
}

// A dead-lettered foreign entry goes back with its original fields.
func TestReplayDeadLetters_ForeignEntry(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	ctx := opsCtx(t)
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
		return xlenOps(t, c, millrace.DeadLetterTopic(topic)) == 1
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, sub.Close())

	res, err := millrace.ReplayDeadLetters(ctx, c, topic, millrace.ReplayOptions{})
	require.NoError(t, err)
	require.Len(t, res.Replayed, 1)
	back, err := c.XRange(ctx, topic, res.Replayed[0].NewID, res.Replayed[0].NewID).Result()
	require.NoError(t, err)
	require.Len(t, back, 1)
	assert.Equal(t, map[string]interface{}{"a": "1", "b": "two"}, back[0].Values)
}

func TestPurgeDeadLetters(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	opsTopology(t, c)
	ctx := opsCtx(t)
	n, err := millrace.PurgeDeadLetters(ctx, c, "orders", millrace.PurgeOptions{IDs: []string{opsID(101), "1-1"}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	n, err = millrace.PurgeDeadLetters(ctx, c, "orders", millrace.PurgeOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	assert.EqualValues(t, 0, xlenOps(t, c, "{orders}:dlq"))
	_, err = millrace.PurgeDeadLetters(ctx, c, "orders", millrace.PurgeOptions{IDs: []string{"x"}})
	require.Error(t, err)
}

func TestGroupAdmin(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	opsTopology(t, c)
	ctx := opsCtx(t)
	in := millrace.NewInspector(c)

	require.NoError(t, millrace.CreateGroup(ctx, c, "orders", "new", millrace.StartOldest))
	require.ErrorIs(t, millrace.CreateGroup(ctx, c, "orders", "new", millrace.StartOldest), millrace.ErrGroupExists)
	require.Error(t, millrace.CreateGroup(ctx, c, "orders", "bad", "yesterday"))
	require.NoError(t, millrace.CreateGroup(ctx, c, "fresh-topic", "g", millrace.StartNewest), "creates the stream")

	require.NoError(t, millrace.ResetGroup(ctx, c, "orders", "billing", millrace.StartNewest))
	s, err := in.Topic(ctx, "orders")
	require.NoError(t, err)
	assert.EqualValues(t, 0, groupByName(t, s, "billing").Lag)
	assert.EqualValues(t, 3, groupByName(t, s, "billing").Pending, "pending entries stay")

	require.NoError(t, millrace.ResetGroupToTime(ctx, c, "orders", "billing", time.UnixMilli(opsBaseMS+8)))
	s, err = in.Topic(ctx, "orders")
	require.NoError(t, err)
	assert.Equal(t, opsID(8), groupByName(t, s, "billing").NextUndeliveredID)
	assert.EqualValues(t, 3, groupByName(t, s, "billing").Lag)

	require.ErrorIs(t, millrace.ResetGroup(ctx, c, "orders", "nope", "0"), millrace.ErrNoSuchGroup)
	require.ErrorIs(t, millrace.ResetGroup(ctx, c, "no-stream", "nope", "0"), millrace.ErrNoSuchGroup)
	require.NoError(t, millrace.DeleteGroup(ctx, c, "orders", "new"))
	require.ErrorIs(t, millrace.DeleteGroup(ctx, c, "orders", "new"), millrace.ErrNoSuchGroup)
	require.ErrorIs(t, millrace.DeleteGroup(ctx, c, "no-stream", "new"), millrace.ErrNoSuchGroup)
}

func groupByName(t *testing.T, s millrace.TopicStats, name string) millrace.GroupStats {
	t.Helper()
	for _, g := range s.Groups {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("no group %s", name)
	return millrace.GroupStats{}
}

func TestPruneConsumers(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	opsTopology(t, c)
	ctx := opsCtx(t)
	// worker-dead holds 3 entries, worker-live none; "idle-empty" never read.
	require.NoError(t, c.XGroupCreateConsumer(ctx, "orders", "billing", "idle-empty").Err())
	time.Sleep(1100 * time.Millisecond)
	require.NoError(t, c.XGroupCreateConsumer(ctx, "orders", "billing", "fresh").Err())

	res, err := millrace.PruneConsumers(ctx, c, "orders", "billing", time.Second)
	require.NoError(t, err)
	assert.Equal(t, []string{"idle-empty", "worker-live"}, res.Removed)
	require.Len(t, res.Kept, 1)
	assert.Equal(t, "worker-dead", res.Kept[0].Name)
	assert.EqualValues(t, 3, res.Kept[0].Pending)

	s, err := millrace.NewInspector(c).Topic(ctx, "orders")
	require.NoError(t, err)
	billing := groupByName(t, s, "billing")
	var names []string
	for _, cs := range billing.Consumers {
		names = append(names, cs.Name)
	}
	assert.Equal(t, []string{"fresh", "worker-dead"}, names)
	assert.EqualValues(t, 3, billing.Pending, "no pending entry is dropped")

	_, err = millrace.PruneConsumers(ctx, c, "orders", "nope", time.Second)
	require.ErrorIs(t, err, millrace.ErrNoSuchGroup)
	_, err = millrace.PruneConsumers(ctx, c, "no-stream", "nope", time.Second)
	require.ErrorIs(t, err, millrace.ErrNoSuchGroup)
}

func TestTrim(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	opsTopology(t, c)
	ctx := opsCtx(t)
	n, err := millrace.TrimMinID(ctx, c, "orders", millrace.MinIDAt(time.UnixMilli(opsBaseMS+3)), false)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	n, err = millrace.TrimMaxLen(ctx, c, "orders", 5, false)
	require.NoError(t, err)
	assert.EqualValues(t, 3, n)
	first, err := c.XRangeN(ctx, "orders", "-", "+", 1).Result()
	require.NoError(t, err)
	assert.Equal(t, opsID(6), first[0].ID)
	n, err = millrace.TrimMaxLen(ctx, c, "orders", 0, true)
	require.NoError(t, err)
	assert.LessOrEqual(t, n, int64(5))
	_, err = millrace.TrimMinID(ctx, c, "orders", "soon", false)
	require.Error(t, err)
	_, err = millrace.TrimMaxLen(ctx, c, "orders", -1, false)
	require.Error(t, err)
}

func xlenOps(t *testing.T, c redis.UniversalClient, stream string) int64 {
	t.Helper()
	n, err := c.XLen(context.Background(), stream).Result()
	require.NoError(t, err)
	return n
}
