package millrace_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

// docs/reliability.md: a subscription resets the idle time of every entry
// it holds every ClaimMinIdle/6, and lets none idle much past
// ClaimMinIdle/3 (while Redis answers). The entry in the handler and the
// ones queued behind it are sampled with XPENDING for 2×ClaimMinIdle.
func TestClaims_HeldEntriesIdleAboutAThirdAtMost(t *testing.T) {
	e := newEnv(t)
	topic := newTopic()
	const minIdle = 600 * time.Millisecond
	cfg := groupConfig("g")
	cfg.ClaimMinIdle = minIdle
	ch := subscribe(t, e.subscriber(t, cfg), topic)
	publish(t, e.publisher(t, millrace.PublisherConfig{}), topic, "held-1", "held-2", "held-3")

	first := receive(t, ch) // held in the "handler"; the other two wait in the queue
	var maxIdle time.Duration
	samples := 0
	for end := time.Now().Add(2 * minIdle); time.Now().Before(end); {
		pending, err := e.client.XPendingExt(ctxTimeout(t, 5*time.Second), &redis.XPendingExtArgs{
			Stream: topic, Group: "g", Start: "-", End: "+", Count: 10,
		}).Result()
		require.NoError(t, err)
		require.Len(t, pending, 3, "all three entries are held by the subscription")
		for _, p := range pending {
			maxIdle = max(maxIdle, p.Idle)
		}
		samples++
		time.Sleep(10 * time.Millisecond) // the sampling period, not a synchronisation
	}
	t.Logf("%d samples, longest idle time of a held entry %s (ClaimMinIdle %s)", samples, maxIdle, minIdle)
	assert.LessOrEqual(t, maxIdle, minIdle/3+minIdle/12, "a held entry idled past ClaimMinIdle/3 (a twelfth allowed for a busy machine)")
	first.Ack()
	for range 2 {
		receive(t, ch).Ack()
	}
}
