package millrace

import (
	"context"
	"math/rand/v2"
	"time"
)

// Retry pacing of background loops when Redis fails: 50ms doubling to 5s,
// with jitter so that many subscribers do not reconnect in step.
const (
	retryInitial = 50 * time.Millisecond
	retryMax     = 5 * time.Second
)

// backoff is an exponential delay with full jitter. Not safe for concurrent
// use: each loop owns one.
type backoff struct {
	initial, max time.Duration
	attempt      int
}

func newRetryBackoff() backoff { return backoff{initial: retryInitial, max: retryMax} }

// next returns the delay before the next attempt and counts one failure.
func (b *backoff) next() time.Duration {
	d := expDelay(b.initial, b.max, b.attempt)
	b.attempt++
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.attempt = 0 }

// expDelay is initial·2^attempt, capped at max.
func expDelay(initial, max time.Duration, attempt int) time.Duration {
	d := initial
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// sleepCtx waits d or until ctx is done; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
