package streams_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/millrace/millrace/internal/redistest"
	"github.com/millrace/millrace/internal/streams"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A member written by EncodeDelayed comes out of MoveDue as the entry it
// describes, bytes as go-redis would have sent them; a member in another
// format comes out whole under DelayedRawField.
func TestEncodeDelayed_MoveDue(t *testing.T) {
	c := redistest.Start(t, redistest.Options{NoAOF: true}).Client(t)
	ctx := context.Background()
	member, err := streams.EncodeDelayed("01ID", []interface{}{"a", []byte("1:2\n3"), "n", 42, "f", 1.5, "b", true, "nil", nil})
	require.NoError(t, err)
	_, err = streams.EncodeDelayed("01ID", []interface{}{"k", struct{}{}})
	require.Error(t, err)

	now := float64(time.Now().UnixMilli())
	require.NoError(t, c.ZAdd(ctx, "d",
		redis.Z{Score: now - 1000, Member: member},
		redis.Z{Score: now - 500, Member: "not a member"},
		redis.Z{Score: now + 60_000, Member: "later"},
	).Err())
	moved, wait, err := streams.MoveDue(ctx, c, "d", "s", 100)
	require.NoError(t, err)
	assert.Equal(t, 2, moved)
	assert.InDelta(t, 60*time.Second, wait, float64(5*time.Second))
	msgs, err := c.XRange(ctx, "s", "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	assert.Equal(t, map[string]interface{}{"a": "1:2\n3", "n": "42", "f": "1.5", "b": "1", "nil": ""}, msgs[0].Values)
	assert.Equal(t, map[string]interface{}{streams.DelayedRawField: "not a member"}, msgs[1].Values)
	assert.Equal(t, []string{"later"}, c.ZRange(ctx, "d", 0, -1).Val())

	require.NoError(t, c.Del(ctx, "d").Err())
	moved, wait, err = streams.MoveDue(ctx, c, "d", "s", 100)
	require.NoError(t, err)
	assert.Zero(t, moved)
	assert.Equal(t, time.Duration(-1), wait, "empty set")
}

// PruneConsumers removes idle consumers that hold nothing and keeps those
// that hold entries.
func TestPruneConsumers(t *testing.T) {
	c := redistest.Start(t, redistest.Options{NoAOF: true}).Client(t)
	ctx := context.Background()
	exists, err := streams.CreateGroup(ctx, c, "s", "g", "0")
	require.NoError(t, err)
	assert.False(t, exists)
	exists, err = streams.CreateGroup(ctx, c, "s", "g", "0")
	require.NoError(t, err)
	assert.True(t, exists, "BUSYGROUP")

	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []string{"k", "v"}}).Err())
	require.NoError(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "holder", Streams: []string{"s", ">"}}).Err())
	require.NoError(t, c.XGroupCreateConsumer(ctx, "s", "g", "empty").Err())
	removed, kept, err := streams.PruneConsumers(ctx, c, "s", "g", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"empty"}, removed)
	require.Len(t, kept, 1)
	assert.Equal(t, "holder", kept[0].Name)
	assert.Equal(t, int64(1), kept[0].Pending)

	removed, kept, err = streams.PruneConsumers(ctx, c, "s", "g", time.Hour)
	require.NoError(t, err)
	assert.Empty(t, removed)
	assert.Empty(t, kept)
	_, _, err = streams.PruneConsumers(ctx, c, "s", "nope", 0)
	require.Error(t, err)
}

// Flatten orders the fields by name, whatever order the map yields them in.
func TestFlatten(t *testing.T) {
	fields := map[string]interface{}{"payload": []byte("p"), "_watermill_message_uuid": "u", "metadata": "m", "b": 2}
	want := []interface{}{"_watermill_message_uuid", "u", "b", 2, "metadata", "m", "payload", []byte("p")}
	for range 20 {
		assert.Equal(t, want, streams.Flatten(fields))
	}
	assert.Empty(t, streams.Flatten(nil))
}
