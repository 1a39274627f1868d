package ui

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// RedisLogger writes go-redis's own log lines (a connection pool that
// cannot dial, a discarded bad connection) to an slog.Logger at Warn, in
// its format, and at most one line each period: those held back meanwhile
// are counted in the next line. Install it with redis.SetLogger; go-redis
// otherwise prints each line to stderr in its own format, about three a
// second while Redis is down.
type RedisLogger struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu       sync.Mutex
	loggedAt time.Time
	held     int
}

// NewRedisLogger returns a RedisLogger writing to log at most one line
// each period every.
func NewRedisLogger(log *slog.Logger, every time.Duration) *RedisLogger {
	return &RedisLogger{log: log, every: every, now: time.Now}
}

// Printf is go-redis's internal.Logging.
func (l *RedisLogger) Printf(ctx context.Context, format string, v ...interface{}) {
	now := l.now()
	l.mu.Lock()
	if !l.loggedAt.IsZero() && now.Sub(l.loggedAt) < l.every {
		l.held++
		l.mu.Unlock()
		return
	}
	held := l.held
	l.loggedAt, l.held = now, 0
	l.mu.Unlock()
	attrs := []any{"line", strings.TrimSpace(fmt.Sprintf(format, v...))}
	if held > 0 {
		attrs = append(attrs, "held_back", held, "over", l.every)
	}
	l.log.WarnContext(ctx, "go-redis", attrs...)
}
