package millrace

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// Retry pacing of background loops when Redis fails: 50ms doubling to 5s,
// with jitter so that many subscribers do not reconnect in step.
const (
	retryInitial = 50 * time.Millisecond
	retryMax     = 5 * time.Second
	// errorLogEvery rate-limits the error log of one loop.
	errorLogEvery = 5 * time.Second
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

// errorLog logs a loop's failures at most once per errorLogEvery, with the
// number of failures it kept quiet about, and logs the recovery once.
// Not safe for concurrent use: each loop owns one.
type errorLog struct {
	logger     watermill.LoggerAdapter
	last       time.Time
	suppressed int
	failing    bool
}

func (l *errorLog) failure(msg string, err error, fields watermill.LogFields) {
	l.failing = true
	if !l.last.IsZero() && time.Since(l.last) < errorLogEvery {
		l.suppressed++
		return
	}
	if l.suppressed > 0 {
		fields = fields.Add(watermill.LogFields{"suppressed_errors": l.suppressed})
	}
	l.logger.Error(msg, err, fields)
	l.last = time.Now()
	l.suppressed = 0
}

func (l *errorLog) recovered(msg string, fields watermill.LogFields) {
	if !l.failing {
		return
	}
	l.failing = false
	l.last = time.Time{}
	l.suppressed = 0
	l.logger.Info(msg, fields)
}

// lockedErrorLog is an errorLog shared by goroutines.
type lockedErrorLog struct {
	mu  sync.Mutex
	log errorLog
}

func (l *lockedErrorLog) failure(logger watermill.LoggerAdapter, msg string, err error, fields watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.logger = logger
	l.log.failure(msg, err, fields)
}
