package millrace_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/entryid"
)

// redisLagNow reads, in one MULTI, the lag Redis reports for group (XINFO
// GROUPS lag, what KEDA's redis-streams scaler reads; -1 for nil) and the
// entries of stream after the group's last-delivered-id; ok is false while
// the group does not exist.
func redisLagNow(t *testing.T, c redis.UniversalClient, stream, group string) (lag, want int64, ok bool) {
	t.Helper()
	ctx := context.Background()
	pipe := c.TxPipeline()
	infos := pipe.XInfoGroups(ctx, stream)
	all := pipe.XRange(ctx, stream, "-", "+")
	_, _ = pipe.Exec(ctx)
	if infos.Err() != nil {
		return 0, 0, false
	}
	require.NoError(t, all.Err())
	for _, g := range infos.Val() {
		if g.Name != group {
			continue
		}
		for _, e := range all.Val() {
			if entryid.Compare(e.ID, g.LastDeliveredID) > 0 {
				want++
			}
		}
		return g.Lag, want, true
	}
	return 0, 0, false
}

// addEntries adds n entries to stream and returns their IDs.
func addEntries(t *testing.T, c redis.UniversalClient, stream string, n int) []string {
	t.Helper()
	pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{Retention: millrace.Retention{KeepAll: true}}, testLogger)
	require.NoError(t, err)
	defer pub.Close()
	payloads := make([]string, n)
	for i := range payloads {
		payloads[i] = fmt.Sprint(i)
	}
	publish(t, pub, stream, payloads...)
	var ids []string
	for _, e := range entries(t, c, stream) {
		ids = append(ids, e.ID)
	}
	require.Len(t, ids, n)
	return ids
}

// A subscriber that creates its group at an entry ID (NewGroupStartID)
// leaves Redis a lag it can report at once, and keeps right while the
// subscriber reads: a plain XGROUP CREATE there leaves it nil until the
// group reads the stream's last entry, which a backlog longer than what the
// subscriber holds never lets happen.
func TestGroupLag_SubscriberCreatesAtAnID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	ids := addEntries(t, e.client, topic, 30)
	start := ids[9] // 20 entries after it

	require.NoError(t, e.client.XGroupCreate(context.Background(), topic, "plain", start).Err())
	plain, _, _ := redisLagNow(t, e.client, topic, "plain")
	assert.EqualValues(t, -1, plain, "a plain XGROUP CREATE at an ID: Redis reports no lag")

	cfg := groupConfig("g")
	cfg.NewGroupStartID = start
	cfg.Prefetch = 2
	sub := e.subscriber(t, cfg)
	ch := subscribe(t, sub, topic)
	lag, want, ok := redisLagNow(t, e.client, topic, "g")
	require.True(t, ok, "Subscribe created the group")
	assert.Equal(t, want, lag)
	t.Logf("created at entry 10 of 30: Redis lag %d (plain XGROUP CREATE: %d), entries after the group %d", lag, plain, want)

	// The subscriber reads what it can hold (its handler holds the first
	// message): the lag Redis reports follows.
	msg := receive(t, ch)
	require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") >= 2 }, 5*time.Second, 10*time.Millisecond)
	lag, want, _ = redisLagNow(t, e.client, topic, "g")
	assert.Equal(t, want, lag, "while the subscriber holds some")
	assert.Less(t, want, int64(20))
	msg.Ack()
}

// A group deleted under a running subscriber is recreated where it had read
// up to, with the lag Redis reports right; a plain XGROUP CREATE there
// leaves it nil.
func TestGroupLag_RecreatedGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	topic := newTopic()
	addEntries(t, e.client, topic, 30)

	cfg := groupConfig("g")
	cfg.Prefetch = 2
	sub := e.subscriber(t, cfg)
	ch := subscribe(t, sub, topic)
	msg := receive(t, ch)
	require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") >= 2 }, 5*time.Second, 10*time.Millisecond)
	info, _ := groupInfo(t, e.client, topic, "g")
	read := info.LastDeliveredID

	require.NoError(t, e.client.XGroupDestroy(ctx, topic, "g").Err())
	require.NoError(t, e.client.XGroupCreate(ctx, topic, "plain", read).Err())
	plain, _, _ := redisLagNow(t, e.client, topic, "plain")
	assert.EqualValues(t, -1, plain, "a plain XGROUP CREATE where the group had read up to: Redis reports no lag")

	// Room for more makes the subscriber read: NOGROUP, and it recreates
	// the group.
	msg.Ack()
	held := receive(t, ch)
	defer held.Ack()
	var lag, want int64
	require.Eventually(t, func() bool {
		var ok bool
		lag, want, ok = redisLagNow(t, e.client, topic, "g")
		return ok
	}, 10*time.Second, 10*time.Millisecond, "the group is recreated")
	assert.Equal(t, want, lag)
	assert.Greater(t, want, int64(0))
	t.Logf("recreated after entry %s: Redis lag %d (plain XGROUP CREATE: %d), entries after the group %d", read, lag, plain, want)
	time.Sleep(200 * time.Millisecond) // the subscriber reads what it has room for
	lag, want, _ = redisLagNow(t, e.client, topic, "g")
	assert.Equal(t, want, lag, "after the subscriber read on")
}
