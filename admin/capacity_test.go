package admin_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/redistest"
)

// The capacity figures: entries the ceiling dropped per group and messages
// it refused (the topic's overflow counts), a group nobody reads any more,
// and a group placed past the stream's end; alike with and without scripts.
func TestStats_Capacity(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	ctx := testCtx(t)
	for n := 1; n <= 5; n++ {
		fixture.Add(t, c, "cap", fixture.ID(n), "u", "p", nil)
	}
	// gone: no consumer, entries waiting since 2023.
	require.NoError(t, c.XGroupCreate(ctx, "cap", "gone", "0").Err())
	// live: its consumer read just now, entries still waiting.
	require.NoError(t, c.XGroupCreate(ctx, "cap", "live", "0").Err())
	require.NoError(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "live", Consumer: "c", Streams: []string{"cap", ">"}, Count: 1}).Err())
	// caught: read everything, nobody around: nothing to read is no problem.
	require.NoError(t, c.XGroupCreate(ctx, "cap", "caught", "$").Err())
	// ahead: moved past the end.
	require.NoError(t, c.XGroupCreate(ctx, "cap", "ahead", "$").Err())
	require.NoError(t, c.XGroupSetID(ctx, "cap", "ahead", "99999999999999-0").Err())
	require.NoError(t, c.HSet(ctx, keys.Overflow("cap"), keys.OverflowDropped+"gone", 4200, keys.OverflowRefused, 17).Err())

	check := func(t *testing.T, a *admin.Admin) {
		s, err := a.Topic(ctx, "cap")
		require.NoError(t, err)
		assert.EqualValues(t, 17, s.Refused)
		byName := map[string]admin.GroupStats{}
		for _, g := range s.Groups {
			byName[g.Name] = g
		}
		require.Len(t, byName, 4)
		assert.EqualValues(t, 4200, byName["gone"].Dropped)
		assert.Zero(t, byName["live"].Dropped)
		assert.True(t, byName["gone"].Abandoned)
		assert.False(t, byName["live"].Abandoned, "a consumer read less than AbandonedAfter ago")
		assert.False(t, byName["caught"].Abandoned, "nothing to read")
		assert.True(t, byName["ahead"].BeyondEnd)
		for _, g := range []string{"gone", "live", "caught"} {
			assert.False(t, byName[g].BeyondEnd, g)
		}
	}
	t.Run("script", func(t *testing.T) { check(t, admin.New(c, admin.Options{AbandonedAfter: time.Hour})) })
	t.Run("plain", func(t *testing.T) {
		check(t, admin.New(noScriptClient(t, srv), admin.Options{AbandonedAfter: time.Hour}))
	})

	// With the default AbandonedAfter (a day) too.
	s, err := admin.New(c, admin.Options{}).Topic(ctx, "cap")
	require.NoError(t, err)
	for _, g := range s.Groups {
		assert.Equal(t, g.Name == "gone", g.Abandoned, g.Name)
	}
}
