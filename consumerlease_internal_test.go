package millrace

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/redistest"
)

// A name the holder had left to give up (its release did not reach Redis)
// and that a subscription of the process takes again is no longer given
// up: the holder's next drop of what was left keeps it.
func TestNameHolder_TakenAgainIsNotLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := redistest.Start(t, redistest.Options{NoAOF: true}).Client(t)
	sub, err := NewSubscriber(c, SubscriberConfig{ConsumerGroup: "g", Consumer: "worker-1", ConsumerLease: time.Minute}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	l, ok, err := sub.leaseName(ctx, "orders", "worker-1", false)
	require.NoError(t, err)
	require.True(t, ok)
	t.Cleanup(func() { sub.unclaim(ctx, l, false) })

	l.holder.leave(l.key, l.value) // an earlier release of the name failed
	ok, err = l.take(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	l.holder.dropLeft(ctx)
	assert.Equal(t, l.value, c.Get(ctx, l.key).Val(), "the name is held")
	ttl, err := c.PTTL(ctx, l.key).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Minute, "not given up (SET PX 1)")
}
