package millrace_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// opsBaseMS is the time of the entries of the operations tests' topology
// (2023-11-14T22:13:20Z): fixed IDs keep the figures exact.
const opsBaseMS = 1700000000000

func opsID(n int) string { return strconv.FormatInt(opsBaseMS+int64(n), 10) + "-0" }

func opsCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// opsAdd adds a Watermill message with ID id to stream.
func opsAdd(t *testing.T, c redis.UniversalClient, stream, id, uuid, payload string, md message.Metadata) {
	t.Helper()
	msg := message.NewMessage(uuid, []byte(payload))
	if md != nil {
		msg.Metadata = md
	}
	fields, err := millrace.DefaultMarshaler{}.Marshal(stream, msg)
	require.NoError(t, err)
	require.NoError(t, c.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, ID: id, Values: fields}).Err())
}

// opsTopology builds topic "orders":
//   - entries 1..10 (IDs opsID(1..10));
//   - group "billing": "worker-dead" read entries 1-3 and never acked them,
//     "worker-live" read and acked 4-5: lag 5, pending 3;
//   - group "audit" set at entry 4 with XGROUP SETID: Redis reports no lag,
//     the computed lag is 6;
//   - 3 dead letters in "{orders}:dlq" from group billing;
//   - topic "payments": 1 entry, no group; "{refunds}:dlq" with 1 dead
//     letter and no "refunds" stream; a string key "not-a-stream".
func opsTopology(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	for n := 1; n <= 10; n++ {
		opsAdd(t, c, "orders", opsID(n), fmt.Sprintf("uuid-%02d", n), fmt.Sprintf(`{"order":%d}`, n), message.Metadata{"source": "test"})
	}
	require.NoError(t, c.XGroupCreate(ctx, "orders", "billing", "0").Err())
	_, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "worker-dead", Streams: []string{"orders", ">"}, Count: 3, Block: -1}).Result()
	require.NoError(t, err)
	live, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "worker-live", Streams: []string{"orders", ">"}, Count: 2, Block: -1}).Result()
	require.NoError(t, err)
	for _, m := range live[0].Messages {
		require.NoError(t, c.XAck(ctx, "orders", "billing", m.ID).Err())
	}
	require.NoError(t, c.XGroupCreate(ctx, "orders", "audit", "$").Err())
	require.NoError(t, c.XGroupSetID(ctx, "orders", "audit", opsID(4)).Err())

	for n := 1; n <= 3; n++ {
		opsAdd(t, c, millrace.DeadLetterTopic("orders"), opsID(100+n), fmt.Sprintf("dead-%d", n), fmt.Sprintf(`{"order":%d}`, 100+n), message.Metadata{
			"source":                                 "test",
			middleware.ReasonForPoisonedKey:          "max deliveries exceeded",
			middleware.PoisonedTopicKey:              "orders",
			middleware.PoisonedSubscriberKey:         "worker-dead",
			millrace.MetadataDeadLetterGroup:         "billing",
			millrace.MetadataDeadLetterConsumer:      "worker-dead",
			millrace.MetadataDeadLetterEntryID:       opsID(50 + n),
			millrace.MetadataDeadLetterDeliveries:    "6",
			millrace.MetadataDeadLetterTime:          "2023-11-14T22:13:20Z",
			middleware.PoisonedHandlerKey:            "",
			"_millrace_not_a_dead_letter_key_at_all": "kept",
		})
	}
	opsAdd(t, c, "payments", opsID(1), "pay-1", "{}", nil)
	opsAdd(t, c, millrace.DeadLetterTopic("refunds"), opsID(200), "dead-refund", "{}", message.Metadata{middleware.PoisonedTopicKey: "refunds", middleware.ReasonForPoisonedKey: "boom"})
	require.NoError(t, c.Set(ctx, "not-a-stream", "x", 0).Err())
}

func TestInspector_Topic(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	opsTopology(t, c)
	ctx := opsCtx(t)

	s, err := millrace.NewInspector(c).Topic(ctx, "orders")
	require.NoError(t, err)
	requireOrdersStats(t, s)
}

func requireOrdersStats(t *testing.T, s millrace.TopicStats) {
	t.Helper()
	assert.True(t, s.Exists)
	assert.EqualValues(t, 10, s.Length)
	assert.Equal(t, opsID(1), s.FirstEntryID)
	assert.Equal(t, opsID(10), s.LastEntryID)
	assert.Equal(t, time.UnixMilli(opsBaseMS+1), s.FirstEntryTime)
	assert.Equal(t, time.UnixMilli(opsBaseMS+10), s.LastEntryTime)
	assert.Equal(t, "{orders}:dlq", s.DeadLetterTopic)
	assert.EqualValues(t, 3, s.DeadLetters)
	assert.WithinDuration(t, time.Now(), s.Time, 5*time.Second)
	require.Len(t, s.Groups, 2)

	audit := s.Groups[0]
	assert.Equal(t, "audit", audit.Name)
	assert.EqualValues(t, 6, audit.Lag, "entries 5..10")
	assert.Equal(t, millrace.LagComputed, audit.LagSource, "Redis reports no lag after SETID")
	assert.Equal(t, opsID(5), audit.NextUndeliveredID)
	assert.Zero(t, audit.Pending)
	assert.Empty(t, audit.OldestPendingID)
	assert.Empty(t, audit.Consumers)

	billing := s.Groups[1]
	assert.Equal(t, "billing", billing.Name)
	assert.Equal(t, opsID(5), billing.LastDeliveredID)
	assert.EqualValues(t, 5, billing.Lag)
	assert.Equal(t, millrace.LagReported, billing.LagSource)
	assert.EqualValues(t, 3, billing.Pending)
	assert.Equal(t, opsID(1), billing.OldestPendingID)
	assert.Equal(t, s.Time.Sub(time.UnixMilli(opsBaseMS+1)), billing.OldestPendingAge)
	assert.Equal(t, opsID(6), billing.NextUndeliveredID)
	assert.Equal(t, s.Time.Sub(time.UnixMilli(opsBaseMS+6)), billing.OldestUndeliveredAge)
	require.Len(t, billing.Consumers, 2)
	assert.Equal(t, "worker-dead", billing.Consumers[0].Name)
	assert.EqualValues(t, 3, billing.Consumers[0].Pending)
	assert.Equal(t, "worker-live", billing.Consumers[1].Name)
	assert.EqualValues(t, 0, billing.Consumers[1].Pending)
	assert.Less(t, billing.Consumers[0].Idle, time.Minute)
}

// A user without scripting rights gets the same figures from plain commands.
func TestInspector_WithoutScripting(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	admin := srv.Client(t)
	opsTopology(t, admin)
	ctx := opsCtx(t)
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "monitor", "on", ">secret", "~*", "+@all", "-@scripting").Err())
	o := srv.Options(t)
	o.Username, o.Password = "monitor", "secret"
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	require.True(t, redis.HasErrorPrefix(c.Eval(ctx, "return 1", nil).Err(), "NOPERM"), "the user must not run scripts")

	in := millrace.NewInspector(c)
	s, err := in.Topic(ctx, "orders")
	require.NoError(t, err)
	requireOrdersStats(t, s)
	// Remembered: the second call goes straight to plain commands.
	s, err = in.Topic(ctx, "orders")
	require.NoError(t, err)
	requireOrdersStats(t, s)
}

func TestInspector_LagFallbacks(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	ctx := opsCtx(t)

	// A group left behind the whole stream by trimming: lag is the length.
	for n := 1; n <= 10; n++ {
		opsAdd(t, c, "trimmed", opsID(n), "u", "p", nil)
	}
	require.NoError(t, c.XGroupCreate(ctx, "trimmed", "slow", "0").Err())
	require.NoError(t, c.XGroupSetID(ctx, "trimmed", "slow", opsID(2)).Err())
	require.NoError(t, c.XTrimMaxLen(ctx, "trimmed", 4).Err())
	require.NoError(t, c.XDel(ctx, "trimmed", opsID(10)).Err()) // a tombstone: Redis reports no lag

	// A long backlog behind a group Redis has no lag for: a lower bound.
	pipe := c.Pipeline()
	for n := 1; n <= 1200; n++ {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: "long", ID: opsID(n), Values: []interface{}{"f", "v"}})
	}
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, c.XGroupCreate(ctx, "long", "g", "0").Err())
	require.NoError(t, c.XGroupSetID(ctx, "long", "g", opsID(10)).Err())

	// A group at the end: lag 0; a missing topic: no stream, no error.
	require.NoError(t, c.XGroupCreate(ctx, "trimmed", "done", "$").Err())

	stats, err := millrace.NewInspector(c).Stats(ctx, "trimmed", "long", "missing")
	require.NoError(t, err)
	require.Len(t, stats, 3)
	trimmed := stats[0]
	require.Len(t, trimmed.Groups, 2)
	assert.EqualValues(t, 0, trimmed.Groups[0].Lag)
	slow := trimmed.Groups[1]
	assert.EqualValues(t, 3, slow.Lag)
	assert.Equal(t, millrace.LagComputed, slow.LagSource)
	assert.Equal(t, opsID(7), slow.NextUndeliveredID)

	long := stats[1].Groups[0]
	assert.EqualValues(t, 1000, long.Lag)
	assert.Equal(t, millrace.LagLowerBound, long.LagSource)

	assert.False(t, stats[2].Exists)
	assert.Zero(t, stats[2].Length)
	assert.Empty(t, stats[2].Groups)

	_, err = millrace.NewInspector(c).Topic(ctx, "")
	require.ErrorIs(t, err, millrace.ErrEmptyTopic)
	require.NoError(t, c.Set(ctx, "plain", "x", 0).Err())
	_, err = millrace.NewInspector(c).Topic(ctx, "plain")
	require.ErrorContains(t, err, "WRONGTYPE")
}

func TestInspector_TopicsAndPending(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	opsTopology(t, c)
	ctx := opsCtx(t)
	in := millrace.NewInspector(c)

	topics, err := in.Topics(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"orders", "payments", "refunds"}, topics)

	pending, err := in.Pending(ctx, "orders", "billing", 2)
	require.NoError(t, err)
	require.Len(t, pending, 2)
	assert.Equal(t, opsID(1), pending[0].ID)
	assert.Equal(t, "worker-dead", pending[0].Consumer)
	assert.EqualValues(t, 1, pending[0].Deliveries)
	assert.Equal(t, opsID(2), pending[1].ID)

	_, err = in.Pending(ctx, "orders", "nope", 10)
	require.ErrorIs(t, err, millrace.ErrNoSuchGroup)

	topic, ok := millrace.IsDeadLetterTopic("{orders}:dlq")
	assert.True(t, ok)
	assert.Equal(t, "orders", topic)
	topic, ok = millrace.IsDeadLetterTopic("a{b}c:dlq")
	assert.True(t, ok)
	assert.Equal(t, "a{b}c", topic)
	_, ok = millrace.IsDeadLetterTopic("orders:dlq")
	assert.False(t, ok)
}
