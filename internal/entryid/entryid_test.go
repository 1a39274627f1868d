package entryid_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEntryTime(t *testing.T) {
	cases := []struct {
		id   string
		want time.Time
		ok   bool
	}{
		{"1700000000000-0", time.UnixMilli(1700000000000), true},
		{"1700000000123-42", time.UnixMilli(1700000000123), true},
		{"0-1", time.UnixMilli(0), true},
		{"", time.Time{}, false},
		{"garbage", time.Time{}, false},
		{"abc-0", time.Time{}, false},
		{"-1-0", time.Time{}, false},
	}
	for _, tc := range cases {
		got, ok := entryid.Time(tc.id)
		assert.Equal(t, tc.ok, ok, "EntryTime(%q)", tc.id)
		if tc.ok {
			assert.True(t, tc.want.Equal(got), "EntryTime(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}

	// The time Redis puts in the ID of an entry it adds.
	c := redistest.Start(t, redistest.Options{NoAOF: true}).Client(t)
	before := time.Now().Add(-time.Second)
	id, err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: "s", Values: []string{"k", "v"}}).Result()
	require.NoError(t, err)
	got, ok := entryid.Time(id)
	require.True(t, ok)
	assert.WithinRange(t, got, before, time.Now().Add(time.Second))
}

func TestCompareNextMin(t *testing.T) {
	assert.Equal(t, -1, entryid.Compare("9-0", "10-0"), "numeric, not lexical")
	assert.Equal(t, 1, entryid.Compare("10-2", "10-1"))
	assert.Equal(t, 0, entryid.Compare("10", "10-0"))
	assert.Equal(t, "10-3", entryid.Next("10-2"))
	assert.Equal(t, "0-1", entryid.Next("junk"))
	at := time.UnixMilli(1700000000123)
	assert.Equal(t, "1700000000123-0", entryid.MinAt(at))
	assert.Equal(t, "1700000000122-18446744073709551615", entryid.Before(at))
	assert.Equal(t, "0-0", entryid.Before(time.UnixMilli(0)))
	assert.True(t, entryid.Valid("1-0"))
	for _, s := range []string{"1", "1-", "-1", "a-1", "$", "0"} {
		assert.False(t, entryid.Valid(s), s)
	}
}

// A group set at Before(t) reads exactly the entries added at or after t;
// XTRIM MINID MinAt(t) keeps exactly those.
func TestBeforeAndMinAt_Redis(t *testing.T) {
	c := redistest.Start(t, redistest.Options{NoAOF: true}).Client(t)
	ctx := context.Background()
	for _, id := range []string{"1000-0", "1000-5", "1001-0", "1002-0"} {
		require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "s", ID: id, Values: []string{"k", "v"}}).Err())
	}
	at := time.UnixMilli(1001)
	require.NoError(t, c.XGroupCreate(ctx, "s", "g", entryid.Before(at)).Err())
	read, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"s", ">"}}).Result()
	require.NoError(t, err)
	require.Len(t, read[0].Messages, 2)
	assert.Equal(t, "1001-0", read[0].Messages[0].ID)
	require.NoError(t, c.XTrimMinID(ctx, "s", entryid.MinAt(at)).Err())
	assert.Equal(t, int64(2), c.XLen(ctx, "s").Val())
}
