package millrace

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/errlog"
)

// The README: a subscription's loops retry "with a backoff of 50 ms doubling
// to 5 s (each wait drawn between half and all of it)".
func TestClaims_RetryBackoff(t *testing.T) {
	b := newRetryBackoff()
	want := 50 * time.Millisecond
	for attempt := range 12 {
		for range 50 { // the draw is random: many draws of one step
			c := b
			got := c.next()
			assert.GreaterOrEqual(t, got, want/2, "attempt %d", attempt)
			assert.LessOrEqual(t, got, want, "attempt %d", attempt)
		}
		b.next()
		want = min(2*want, 5*time.Second)
	}
	assert.Equal(t, 5*time.Second, want, "capped at 5 s")
	b.reset()
	assert.LessOrEqual(t, b.next(), 50*time.Millisecond, "a success starts again at 50 ms")
}

// The README: each loop "logs a failure at most once per 5 s and the
// recovery once".
func TestClaims_FailureLoggedOncePerFiveSeconds(t *testing.T) {
	require.Equal(t, 5*time.Second, errlog.Every)
	logger := &countingLogger{}
	log := errlog.New(logger)
	for range 100 {
		log.Failure("Cannot read from Redis; retrying", errors.New("connection refused"), nil)
	}
	assert.Equal(t, 1, logger.errors(), "100 failures within 5 s log once")
	log.Recovered("Reading again", nil)
	log.Recovered("Reading again", nil)
	assert.Equal(t, 1, logger.infos(), "the recovery is logged once")
	log.Failure("Cannot read from Redis; retrying", errors.New("connection refused"), nil)
	assert.Equal(t, 2, logger.errors(), "a failure after a recovery is logged at once")
}

type countingLogger struct {
	mu           sync.Mutex
	nerr, ninfos int
}

func (l *countingLogger) Error(string, error, watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nerr++
}

func (l *countingLogger) Info(string, watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ninfos++
}
func (l *countingLogger) Debug(string, watermill.LogFields)                {}
func (l *countingLogger) Trace(string, watermill.LogFields)                {}
func (l *countingLogger) With(watermill.LogFields) watermill.LoggerAdapter { return l }

func (l *countingLogger) errors() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nerr
}

func (l *countingLogger) infos() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ninfos
}
