package admin_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/fixture"
)

// redisLag reads, in one MULTI, the lag Redis reports for group (XINFO
// GROUPS lag: what KEDA's redis-streams scaler and redis_exporter read; -1
// when Redis reports nil) and the true figure: the entries of the stream
// after the group's last-delivered-id.
func redisLag(t *testing.T, c redis.UniversalClient, stream, group string) (lag, want int64) {
	t.Helper()
	ctx := context.Background()
	pipe := c.TxPipeline()
	groups := pipe.XInfoGroups(ctx, stream)
	entries := pipe.XRange(ctx, stream, "-", "+")
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)
	for _, g := range groups.Val() {
		if g.Name != group {
			continue
		}
		for _, e := range entries.Val() {
			if entryid.Compare(e.ID, g.LastDeliveredID) > 0 {
				want++
			}
		}
		return g.Lag, want
	}
	t.Fatalf("no group %s on %s", group, stream)
	return 0, 0
}

// addN adds n entries to stream at IDs fixture.ID(from) to fixture.ID(from+n-1).
func addN(t *testing.T, c redis.UniversalClient, stream string, from, n int) {
	t.Helper()
	pipe := c.Pipeline()
	for i := from; i < from+n; i++ {
		pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, ID: fixture.ID(i), Values: []string{"n", fmt.Sprint(i)}})
	}
	_, err := pipe.Exec(context.Background())
	require.NoError(t, err)
}

// TestGroupMovesKeepRedisLag moves a group every way the operator API
// does and reads XINFO GROUPS after each: Redis's own lag is the entries
// after the group's position, where a plain XGROUP SETID/CREATE (what
// ResetGroup and CreateGroup sent before) leaves it nil.
func TestGroupMovesKeepRedisLag(t *testing.T) {
	t.Parallel()
	c, a := newAdmin(t)
	ctx := testCtx(t)
	addN(t, c, "orders", 1, 10) // entries 1..10

	type move struct {
		name  string
		do    func() error // the operator API's move
		plain func() error // the bare XGROUP command it replaces; nil: same as do
		lag   int64
	}
	reset := func(id string) func() error {
		return func() error { return a.ResetGroup(ctx, "orders", "g", id) }
	}
	setid := func(id string) func() error {
		return func() error { return c.XGroupSetID(ctx, "orders", "g", id).Err() }
	}
	require.NoError(t, a.CreateGroup(ctx, "orders", "g", millrace.StartOldest))
	for _, m := range []move{
		{"reset by ID to entry 4", reset(fixture.ID(4)), setid(fixture.ID(4)), 6},
		{"reset by time to entry 8", func() error {
			return a.ResetGroupToTime(ctx, "orders", "g", time.UnixMilli(fixture.BaseMS+8))
		}, setid(entryid.Before(time.UnixMilli(fixture.BaseMS + 8))), 3},
		{"reset to oldest", reset(millrace.StartOldest), setid(millrace.StartOldest), 10},
		{"reset to newest", reset(millrace.StartNewest), setid(millrace.StartNewest), 0},
		{"reset to the last entry", reset(fixture.ID(10)), setid(fixture.ID(10)), 0},
		{"reset to the first entry", reset(fixture.ID(1)), setid(fixture.ID(1)), 9},
		{"reset by ID with leading zeros", reset("0" + fixture.ID(2)), setid("0" + fixture.ID(2)), 8},
		{"reset to an ID between entries", reset(fixture.ID(5) + "5"), setid(fixture.ID(5) + "5"), 5},
	} {
		require.NoError(t, m.plain(), m.name)
		before, _ := redisLag(t, c, "orders", "g")
		require.NoError(t, m.do(), m.name)
		lag, want := redisLag(t, c, "orders", "g")
		t.Logf("%-32s Redis lag %3d (plain XGROUP SETID: %3d), entries after the group %3d", m.name, lag, before, want)
		assert.Equal(t, m.lag, want, m.name)
		assert.Equal(t, want, lag, "%s: Redis's lag", m.name)
	}

	// Redis keeps the lag right from there: reads take it down, publishes
	// up.
	require.NoError(t, a.ResetGroup(ctx, "orders", "g", fixture.ID(4)))
	require.NoError(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "w", Streams: []string{"orders", ">"}, Count: 2, Block: -1}).Err())
	addN(t, c, "orders", 11, 3)
	lag, want := redisLag(t, c, "orders", "g")
	assert.EqualValues(t, 7, want)
	assert.Equal(t, want, lag, "after reading 2 and adding 3")

	t.Run("create", func(t *testing.T) {
		for _, m := range []struct {
			name, group, start string
			lag                int64
		}{
			{"create at oldest", "c-oldest", millrace.StartOldest, 13},
			{"create at newest", "c-newest", millrace.StartNewest, 0},
			{"create at entry 4", "c-id", fixture.ID(4), 9},
			{"create at a time (entry 8)", "c-time", entryid.Before(time.UnixMilli(fixture.BaseMS + 8)), 6},
		} {
			require.NoError(t, c.XGroupCreate(ctx, "orders", "plain-"+m.group, m.start).Err())
			before, _ := redisLag(t, c, "orders", "plain-"+m.group)
			require.NoError(t, a.CreateGroup(ctx, "orders", m.group, m.start), m.name)
			lag, want := redisLag(t, c, "orders", m.group)
			t.Logf("%-32s Redis lag %3d (plain XGROUP CREATE: %3d), entries after the group %3d", m.name, lag, before, want)
			assert.Equal(t, m.lag, want, m.name)
			assert.Equal(t, want, lag, "%s: Redis's lag", m.name)
			require.ErrorIs(t, a.CreateGroup(ctx, "orders", m.group, m.start), admin.ErrGroupExists)
		}
		require.NoError(t, a.CreateGroup(ctx, "new-topic", "g", fixture.ID(4)), "creates the stream")
		addN(t, c, "new-topic", 5, 2)
		lag, want := redisLag(t, c, "new-topic", "g")
		assert.EqualValues(t, 2, want)
		assert.Equal(t, want, lag, "a group created with its stream")
	})

	t.Run("trimmed stream", func(t *testing.T) {
		addN(t, c, "trimmed", 1, 10)
		require.NoError(t, a.CreateGroup(ctx, "trimmed", "g", millrace.StartOldest))
		require.NoError(t, c.XTrimMaxLen(ctx, "trimmed", 6).Err()) // entries 5..10 left
		for _, m := range []struct {
			to  string
			lag int64
		}{
			{fixture.ID(2), 6}, // before the first entry
			{fixture.ID(5), 5}, // the first entry
			{fixture.ID(7), 3},
			{millrace.StartOldest, 6},
		} {
			require.NoError(t, a.ResetGroup(ctx, "trimmed", "g", m.to))
			lag, want := redisLag(t, c, "trimmed", "g")
			assert.Equal(t, m.lag, want, m.to)
			assert.Equal(t, want, lag, "reset to %s: Redis's lag", m.to)
		}
		require.NoError(t, c.XTrimMaxLen(ctx, "trimmed", 0).Err())
		require.NoError(t, a.ResetGroup(ctx, "trimmed", "g", fixture.ID(3)))
		lag, want := redisLag(t, c, "trimmed", "g")
		assert.Equal(t, int64(0), want)
		assert.Equal(t, want, lag, "an emptied stream")
	})

	t.Run("longer backlog than one count", func(t *testing.T) {
		// 2,500 entries after the position: counted in three calls.
		addN(t, c, "long", 1, 3000)
		require.NoError(t, a.CreateGroup(ctx, "long", "g", fixture.ID(500)))
		lag, want := redisLag(t, c, "long", "g")
		assert.EqualValues(t, 2500, want)
		assert.Equal(t, want, lag, "create")
		require.NoError(t, a.ResetGroup(ctx, "long", "g", fixture.ID(1000)))
		lag, want = redisLag(t, c, "long", "g")
		assert.EqualValues(t, 2000, want)
		assert.Equal(t, want, lag, "reset")
		require.NoError(t, a.ResetGroup(ctx, "long", "g", fixture.ID(2000)))
		lag, want = redisLag(t, c, "long", "g")
		assert.EqualValues(t, 1000, want, "exactly one count")
		assert.Equal(t, want, lag, "reset")
	})

	t.Run("publishing while the group moves", func(t *testing.T) {
		// Entries added while the backlog is counted are after the
		// stream's end the count started from: the lag stays exact.
		addN(t, c, "busy", 1, 5000)
		require.NoError(t, a.CreateGroup(ctx, "busy", "g", millrace.StartOldest))
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				_ = c.XAdd(context.Background(), &redis.XAddArgs{Stream: "busy", Values: []string{"n", "x"}}).Err()
			}
		}()
		for i, to := range []string{fixture.ID(100), fixture.ID(3000), fixture.ID(10)} {
			require.NoError(t, a.ResetGroup(ctx, "busy", "g", to))
			require.NoError(t, a.CreateGroup(ctx, "busy", fmt.Sprintf("g%d", i), to))
		}
		stop.Store(true)
		wg.Wait()
		assert.Greater(t, xlen(t, c, "busy"), int64(5000), "entries were added meanwhile")
		for _, g := range []string{"g", "g0", "g1", "g2"} {
			lag, want := redisLag(t, c, "busy", g)
			assert.Equal(t, want, lag, "group %s", g)
		}
	})

	t.Run("what Redis cannot tell", func(t *testing.T) {
		addN(t, c, "holes", 1, 10)
		require.NoError(t, a.CreateGroup(ctx, "holes", "g", millrace.StartOldest))
		// An entry deleted ahead of the group: Redis reports no lag until
		// the group has read past it, whatever ENTRIESREAD says.
		require.NoError(t, c.XDel(ctx, "holes", fixture.ID(8)).Err())
		require.NoError(t, a.ResetGroup(ctx, "holes", "g", fixture.ID(4)))
		lag, want := redisLag(t, c, "holes", "g")
		assert.EqualValues(t, 5, want)
		assert.EqualValues(t, -1, lag, "a deleted entry ahead: nil")
		require.NoError(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "w", Streams: []string{"holes", ">"}, Count: 10, Block: -1}).Err())
		lag, want = redisLag(t, c, "holes", "g")
		assert.Equal(t, want, lag, "read past it")

		// Entries trimmed before the group read them stay in Redis's lag
		// (Redis 7.0, Valkey 8) until the group is moved again.
		addN(t, c, "dropped", 1, 10)
		require.NoError(t, a.CreateGroup(ctx, "dropped", "g", millrace.StartOldest))
		require.NoError(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "w", Streams: []string{"dropped", ">"}, Count: 2, Block: -1}).Err())
		require.NoError(t, c.XTrimMaxLen(ctx, "dropped", 5).Err()) // 2 read and 3 unread entries gone
		lag, want = redisLag(t, c, "dropped", "g")
		assert.EqualValues(t, 5, want)
		assert.EqualValues(t, 8, lag, "the 3 unread entries trimmed are still counted")
		info, err := c.XInfoGroups(ctx, "dropped").Result()
		require.NoError(t, err)
		require.NoError(t, a.ResetGroup(ctx, "dropped", "g", info[0].LastDeliveredID))
		lag, want = redisLag(t, c, "dropped", "g")
		assert.Equal(t, want, lag, "moved again")

		// A position ahead of the stream: the entries published later
		// with IDs up to it are skipped by the group, yet counted.
		addN(t, c, "ahead", 1, 10)
		require.NoError(t, a.CreateGroup(ctx, "ahead", "g", fixture.ID(20)))
		lag, _ = redisLag(t, c, "ahead", "g")
		assert.EqualValues(t, 0, lag)
		addN(t, c, "ahead", 15, 1) // skipped
		addN(t, c, "ahead", 25, 2) // to read
		lag, want = redisLag(t, c, "ahead", "g")
		assert.EqualValues(t, 2, want)
		assert.EqualValues(t, 3, lag, "too high by the entry skipped, never too low")
	})

	t.Run("errors", func(t *testing.T) {
		require.ErrorIs(t, a.ResetGroup(ctx, "orders", "nope", fixture.ID(4)), admin.ErrNoSuchGroup)
		require.ErrorIs(t, a.ResetGroup(ctx, "orders", "nope", millrace.StartNewest), admin.ErrNoSuchGroup)
		require.ErrorIs(t, a.ResetGroup(ctx, "no-stream", "nope", fixture.ID(4)), admin.ErrNoSuchGroup)
		require.NoError(t, c.Set(ctx, "a-string", "x", 0).Err())
		require.ErrorContains(t, a.ResetGroup(ctx, "a-string", "g", fixture.ID(4)), "WRONGTYPE")
		require.ErrorContains(t, a.CreateGroup(ctx, "a-string", "g", fixture.ID(4)), "WRONGTYPE")
	})
}

// TestGroupMovesWithoutScripts: a user that may not run the script (no
// EVAL) or a command in it (no XINFO STREAM) still creates and moves
// groups, with plain XGROUP commands.
func TestGroupMovesWithoutScripts(t *testing.T) {
	t.Parallel()
	c, _ := newAdmin(t)
	ctx := testCtx(t)
	addN(t, c, "orders", 1, 10)
	// In this order: the first user's move leaves the only group with a
	// lag Redis does not know, which its read of the group's figures after
	// the move may not work out.
	for _, u := range []struct {
		name  string
		rules []string
	}{
		{"no-xrevrange", []string{"+@all", "-xinfo|consumers", "-xrevrange"}},
		{"no-eval", []string{"+@all", "-eval", "-evalsha"}},
		{"no-xinfo", []string{"+@all", "-xinfo|stream"}},
	} {
		name, rules := u.name, u.rules
		args := []interface{}{"acl", "setuser", name, "on", ">pw", "~*", "&*"}
		for _, r := range rules {
			args = append(args, r)
		}
		require.NoError(t, c.Do(ctx, args...).Err())
		opts := *c.Options()
		opts.Username, opts.Password = name, "pw"
		uc := redis.NewClient(&opts)
		defer uc.Close()
		a := admin.New(uc, admin.Options{})
		require.NoError(t, a.CreateGroup(ctx, "orders", name, fixture.ID(4)), name)
		require.ErrorIs(t, a.CreateGroup(ctx, "orders", name, fixture.ID(4)), admin.ErrGroupExists, name)
		require.NoError(t, a.ResetGroup(ctx, "orders", name, fixture.ID(6)), name)
		require.ErrorIs(t, a.ResetGroup(ctx, "orders", "nope", fixture.ID(6)), admin.ErrNoSuchGroup, name)
		lag, want := redisLag(t, c, "orders", name)
		assert.EqualValues(t, 4, want, name)
		assert.EqualValues(t, -1, lag, "%s: a plain XGROUP SETID, Redis reports no lag", name)
	}
}
