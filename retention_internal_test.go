package millrace

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/redistest"
)

// A stream deleted while its Publisher trims it (KeepUnacked) is nothing to
// trim, not an error to log every round.
func TestTrimAcked_DeletedStream(t *testing.T) {
	c := redistest.Start(t, redistest.Options{NoAOF: true}).Client(t)
	ctx := context.Background()
	require.NoError(t, trimAcked(ctx, c, "gone", 0))

	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []string{"k", "v"}}).Err())
	require.NoError(t, c.XGroupCreate(ctx, "s", "g", "$").Err())
	require.NoError(t, trimAcked(ctx, c, "s", 0))
	assert.Zero(t, c.XLen(ctx, "s").Val(), "acknowledged by its only group: trimmed")
}

// The default retention trims what every group acknowledged more than
// MaxAge ago, never what a group still needs, and a stream without groups
// by age alone. Nodes of two entries let approximate trimming show.
func TestTrimAcked_DefaultRetention(t *testing.T) {
	c := redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{"stream-node-max-entries 2"}}).Client(t)
	ctx := context.Background()
	r := PublisherConfig{}.retention("any")
	require.Equal(t, Retention{KeepUnacked: true, MaxAge: time.Hour}, r)
	old := time.Now().Add(-2 * time.Hour).UnixMilli()
	add := func(stream string, ms int64) {
		require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: strconv.FormatInt(ms, 10) + "-0", Values: []string{"k", "v"}}).Err())
	}
	for i := range 6 {
		add("grouped", old+int64(i))
		add("lonely", old+int64(i))
	}
	now := time.Now().UnixMilli()
	add("grouped", now)
	add("lonely", now)

	// Group g read and acknowledged the first four old entries and holds
	// the fifth pending.
	require.NoError(t, c.XGroupCreate(ctx, "grouped", "g", "0").Err())
	read, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"grouped", ">"}, Count: 5}).Result()
	require.NoError(t, err)
	for _, m := range read[0].Messages[:4] {
		require.NoError(t, c.XAck(ctx, "grouped", "g", m.ID).Err())
	}

	require.NoError(t, trimAcked(ctx, c, "grouped", r.MaxAge))
	first, err := c.XRangeN(ctx, "grouped", "-", "+", 1).Result()
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatInt(old+4, 10)+"-0", first[0].ID, "trimmed up to the pending entry")

	require.NoError(t, trimAcked(ctx, c, "lonely", r.MaxAge))
	assert.EqualValues(t, 1, c.XLen(ctx, "lonely").Val(), "no group: the old entries go by age")
	add("kept", old)
	require.NoError(t, trimAcked(ctx, c, "kept", 0))
	assert.EqualValues(t, 1, c.XLen(ctx, "kept").Val(), "no group and no MaxAge: nothing is trimmed")
}
