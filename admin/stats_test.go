package admin_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/redistest"
)

func TestTopic(t *testing.T) {
	t.Parallel()
	_, a := withTopology(t)
	s, err := a.Topic(testCtx(t), "orders")
	require.NoError(t, err)
	requireOrdersStats(t, s)
}

func requireOrdersStats(t *testing.T, s admin.TopicStats) {
	t.Helper()
	assert.True(t, s.Exists)
	assert.EqualValues(t, 10, s.Length)
	assert.Equal(t, fixture.ID(1), s.FirstEntryID)
	assert.Equal(t, fixture.ID(10), s.LastEntryID)
	assert.Equal(t, time.UnixMilli(fixture.BaseMS+1), s.FirstEntryTime)
	assert.Equal(t, time.UnixMilli(fixture.BaseMS+10), s.LastEntryTime)
	assert.Equal(t, "{orders}:dlq", s.DeadLetterTopic)
	assert.EqualValues(t, 3, s.DeadLetters)
	assert.WithinDuration(t, time.Now(), s.Time, 5*time.Second)
	assert.Greater(t, s.Memory, int64(10*20), "MEMORY USAGE of ten entries")
	require.Len(t, s.Groups, 2)

	audit := s.Groups[0]
	assert.Equal(t, "audit", audit.Name)
	assert.EqualValues(t, 6, audit.Lag, "entries 5..10")
	assert.Equal(t, admin.LagComputed, audit.LagSource, "Redis reports no lag after SETID")
	assert.Equal(t, fixture.ID(5), audit.NextUndeliveredID)
	assert.Zero(t, audit.Pending)
	assert.Empty(t, audit.OldestPendingID)
	assert.Empty(t, audit.Consumers)

	billing := s.Groups[1]
	assert.Equal(t, "billing", billing.Name)
	assert.Equal(t, fixture.ID(5), billing.LastDeliveredID)
	assert.EqualValues(t, 5, billing.Lag)
	assert.Equal(t, admin.LagReported, billing.LagSource)
	assert.EqualValues(t, 3, billing.Pending)
	assert.Equal(t, fixture.ID(1), billing.OldestPendingID)
	assert.Equal(t, s.Time.Sub(time.UnixMilli(fixture.BaseMS+1)), billing.OldestPendingAge)
	assert.Equal(t, fixture.ID(6), billing.NextUndeliveredID)
	assert.Equal(t, s.Time.Sub(time.UnixMilli(fixture.BaseMS+6)), billing.OldestUndeliveredAge)
	require.Len(t, billing.Consumers, 2)
	assert.Equal(t, "worker-dead", billing.Consumers[0].Name)
	assert.EqualValues(t, 3, billing.Consumers[0].Pending)
	assert.Equal(t, "worker-live", billing.Consumers[1].Name)
	assert.EqualValues(t, 0, billing.Consumers[1].Pending)
	assert.Less(t, billing.Consumers[0].Idle, time.Minute)
}

// A user without scripting rights gets the same figures from plain commands.
func TestTopic_WithoutScripting(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	fixture.Topology(t, srv.Client(t))
	c := noScriptClient(t, srv)
	a := admin.New(c, admin.Options{})
	s, err := a.Topic(testCtx(t), "orders")
	require.NoError(t, err)
	requireOrdersStats(t, s)
	// Remembered: the second call goes straight to plain commands.
	s, err = a.Topic(testCtx(t), "orders")
	require.NoError(t, err)
	requireOrdersStats(t, s)
}

// noScriptClient is a client of srv whose user may run every command but
// scripts.
func noScriptClient(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	ctx := testCtx(t)
	require.NoError(t, srv.Client(t).Do(ctx, "ACL", "SETUSER", "monitor", "on", ">secret", "~*", "+@all", "-@scripting").Err())
	o := srv.Options(t)
	o.Username, o.Password = "monitor", "secret"
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	require.True(t, redis.HasErrorPrefix(c.Eval(ctx, "return 1", nil).Err(), "NOPERM"), "the user must not run scripts")
	return c
}

func TestStats_LagFallbacks(t *testing.T) {
	t.Parallel()
	c := redistest.StartFromEnv(t).Client(t)
	ctx := testCtx(t)

	// A group left behind the whole stream by trimming: lag is the length.
	for n := 1; n <= 10; n++ {
		fixture.Add(t, c, "trimmed", fixture.ID(n), "u", "p", nil)
	}
	require.NoError(t, c.XGroupCreate(ctx, "trimmed", "slow", "0").Err())
	require.NoError(t, c.XGroupSetID(ctx, "trimmed", "slow", fixture.ID(2)).Err())
	require.NoError(t, c.XTrimMaxLen(ctx, "trimmed", 4).Err())
	require.NoError(t, c.XDel(ctx, "trimmed", fixture.ID(10)).Err()) // a tombstone: Redis reports no lag

	// A long backlog behind a group Redis has no lag for: a lower bound.
	pipe := c.Pipeline()
	for n := 1; n <= 1200; n++ {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: "long", ID: fixture.ID(n), Values: []interface{}{"f", "v"}})
	}
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, c.XGroupCreate(ctx, "long", "g", "0").Err())
	require.NoError(t, c.XGroupSetID(ctx, "long", "g", fixture.ID(10)).Err())

	// A group at the end: lag 0; a missing topic: no stream, no error.
	require.NoError(t, c.XGroupCreate(ctx, "trimmed", "done", "$").Err())

	a := admin.New(c, admin.Options{})
	stats, err := a.Stats(ctx, "trimmed", "long", "missing")
	require.NoError(t, err)
	require.Len(t, stats, 3)
	trimmed := stats[0]
	require.Len(t, trimmed.Groups, 2)
	assert.EqualValues(t, 0, trimmed.Groups[0].Lag)
	slow := trimmed.Groups[1]
	assert.EqualValues(t, 3, slow.Lag)
	assert.Equal(t, admin.LagComputed, slow.LagSource)
	assert.Equal(t, fixture.ID(7), slow.NextUndeliveredID)

	long := stats[1].Groups[0]
	assert.EqualValues(t, 1000, long.Lag)
	assert.Equal(t, admin.LagLowerBound, long.LagSource)

	assert.False(t, stats[2].Exists)
	assert.Zero(t, stats[2].Length)
	assert.Empty(t, stats[2].Groups)

	_, err = a.Topic(ctx, "")
	require.ErrorIs(t, err, millrace.ErrEmptyTopic)
	require.NoError(t, c.Set(ctx, "plain", "x", 0).Err())
	_, err = a.Topic(ctx, "plain")
	require.ErrorContains(t, err, "WRONGTYPE")
}

func TestGroupsAndConsumers(t *testing.T) {
	t.Parallel()
	_, a := withTopology(t)
	ctx := testCtx(t)

	groups, err := a.Groups(ctx, "orders")
	require.NoError(t, err)
	require.Len(t, groups, 2)
	assert.Equal(t, []string{"audit", "billing"}, []string{groups[0].Name, groups[1].Name})
	groups, err = a.Groups(ctx, "refunds")
	require.NoError(t, err)
	assert.Empty(t, groups, "no stream, no groups")

	billing, err := a.Group(ctx, "orders", "billing")
	require.NoError(t, err)
	assert.EqualValues(t, 3, billing.Pending)
	_, err = a.Group(ctx, "orders", "nope")
	require.ErrorIs(t, err, admin.ErrNoSuchGroup)
	_, err = a.Group(ctx, "refunds", "billing")
	require.ErrorIs(t, err, admin.ErrNoSuchGroup)

	consumers, err := a.Consumers(ctx, "orders", "billing")
	require.NoError(t, err)
	require.Len(t, consumers, 2)
	assert.Equal(t, "worker-dead", consumers[0].Name)
	assert.EqualValues(t, 3, consumers[0].Pending)
	assert.Equal(t, "worker-live", consumers[1].Name)
	_, err = a.Consumers(ctx, "orders", "nope")
	require.ErrorIs(t, err, admin.ErrNoSuchGroup)
}

func TestTopicsAndPending(t *testing.T) {
	t.Parallel()
	c, a := withTopology(t)
	ctx := testCtx(t)
	require.NoError(t, c.Set(ctx, "not-a-stream", "x", 0).Err())

	topics, err := a.Topics(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"orders", "payments", "refunds"}, topics)

	pending, err := a.Pending(ctx, "orders", "billing", 2)
	require.NoError(t, err)
	require.Len(t, pending, 2)
	assert.Equal(t, fixture.ID(1), pending[0].ID)
	assert.Equal(t, "worker-dead", pending[0].Consumer)
	assert.EqualValues(t, 1, pending[0].Deliveries)
	assert.Equal(t, fixture.ID(2), pending[1].ID)

	_, err = a.Pending(ctx, "orders", "nope", 10)
	require.ErrorIs(t, err, admin.ErrNoSuchGroup)
	_, err = a.Pending(ctx, "", "billing", 10)
	require.ErrorIs(t, err, millrace.ErrEmptyTopic)
}
