// Package exampleutil holds what the examples share and is not about
// Millrace itself: a Redis client (a real Redis named by REDIS_URL, or an
// embedded miniredis), a quiet logger, starting a Router, and counting the
// messages handled.
//
// miniredis only makes the examples runnable with nothing installed. It is
// not Redis: the library is tested against real redis-server processes.
package exampleutil

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// EnvURL names the environment variable read by Redis.
const EnvURL = "REDIS_URL"

// Redis returns a client for $REDIS_URL (parsed by redis.ParseURL, e.g.
// "redis://127.0.0.1:6379/0"), or, when it is unset, for an embedded
// miniredis started in this process. It says on stdout which one it uses.
// cleanup closes the client and stops the embedded server, if any.
func Redis() (client redis.UniversalClient, cleanup func(), err error) {
	if url := os.Getenv(EnvURL); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, nil, fmt.Errorf("parse %s: %w", EnvURL, err)
		}
		c := redis.NewClient(opts)
		fmt.Printf("using Redis at %s (from %s)\n", opts.Addr, EnvURL)
		return c, func() { _ = c.Close() }, nil
	}

	srv, err := miniredis.Run()
	if err != nil {
		return nil, nil, fmt.Errorf("start embedded miniredis: %w", err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	fmt.Printf("%s is not set: using an embedded miniredis at %s (set %s=redis://host:port/0 for a real Redis)\n",
		EnvURL, srv.Addr(), EnvURL)
	return c, func() {
		_ = c.Close()
		srv.Close()
	}, nil
}

// Logger returns a Watermill logger that writes warnings and errors to
// stderr, so that the examples' own output stays readable.
func Logger() watermill.LoggerAdapter {
	return watermill.NewSlogLogger(slog.New(slog.NewTextHandler(os.Stderr,
		&slog.HandlerOptions{Level: slog.LevelWarn})))
}

// StartRouter runs router in the background and returns once every handler
// has subscribed: from then on, nothing published to their topics is
// missed. The returned channel receives Run's result when the router stops.
func StartRouter(ctx context.Context, router *message.Router) (<-chan error, error) {
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	select {
	case <-router.Running():
		return done, nil
	case err := <-done:
		return nil, fmt.Errorf("router stopped before running: %v", err)
	}
}

// Countdown counts distinct keys (message UUIDs) until it has seen want of
// them. Delivery is at-least-once, so a redelivered message must not be
// counted twice.
type Countdown struct {
	mu   sync.Mutex
	seen map[string]bool
	want int
	all  chan struct{}
}

// NewCountdown returns a Countdown that completes after want distinct keys.
func NewCountdown(want int) *Countdown {
	return &Countdown{seen: make(map[string]bool), want: want, all: make(chan struct{})}
}

// Done marks key as handled. It reports false for a key seen before.
func (c *Countdown) Done(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[key] {
		return false
	}
	c.seen[key] = true
	if len(c.seen) == c.want {
		close(c.all)
	}
	return true
}

// Wait blocks until every countdown has completed, the router stops or
// timeout passes.
func Wait(timeout time.Duration, routerDone <-chan error, countdowns ...*Countdown) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, c := range countdowns {
		select {
		case <-c.all:
		case err := <-routerDone:
			return fmt.Errorf("router stopped early: %v", err)
		case <-deadline.C:
			return errors.New("timed out waiting for the messages to be handled")
		}
	}
	return nil
}
