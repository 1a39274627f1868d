package millrace

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of [ExpiringKeyRepositoryConfig].
const (
	DefaultDeduplicationWindow    = time.Minute
	DefaultDeduplicationKeyPrefix = "millrace:dedup:"
)

// ExpiringKeyRepositoryConfig configures an [ExpiringKeyRepository]. The zero
// value is valid.
type ExpiringKeyRepositoryConfig struct {
	// Window is how long a key is remembered after it was first seen: the
	// expiry of its Redis key (SET ... PX Window). Default: 1 minute, as
	// Watermill's in-memory repository.
	Window time.Duration
	// KeyPrefix starts the name of every Redis key, so that several
	// deduplicators (and other data) can share a database. Default:
	// "millrace:dedup:".
	KeyPrefix string
}

func (c *ExpiringKeyRepositoryConfig) setDefaults() {
	if c.Window == 0 {
		c.Window = DefaultDeduplicationWindow
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultDeduplicationKeyPrefix
	}
}

// Validate reports an invalid field. It does not change c.
func (c ExpiringKeyRepositoryConfig) Validate() error {
	if c.Window < 0 {
		return fmt.Errorf("Window must not be negative, got %s", c.Window)
	}
	if c.Window != 0 && c.Window < time.Millisecond {
		return fmt.Errorf("Window must be at least 1ms, got %s", c.Window)
	}
	return nil
}

// ExpiringKeyRepository is a Redis-backed ExpiringKeyRepository for
// Watermill's Deduplicator middleware (message/router/middleware), shared by
// every process that uses the same Redis, unlike Watermill's in-memory one:
//
//	repo, _ := millrace.NewExpiringKeyRepository(client, millrace.ExpiringKeyRepositoryConfig{Window: time.Hour})
//	dedup := &middleware.Deduplicator{KeyFactory: middleware.NewMessageHasherSHA256(0), Repository: repo}
//	router.AddMiddleware(dedup.Middleware)
//
// IsDuplicate is one SET key 1 NX PX window: atomic, so of several
// consumers that check the same key at once exactly one sees it as new.
//
// Like every ExpiringKeyRepository, it marks a key as seen when it is first
// checked, before the handler runs: a message whose handler then fails is
// dropped as a duplicate when it is redelivered within the window. Add it
// before (outside) Retry, so that retries are not taken for duplicates, and
// a PoisonQueue inside it to keep the messages that still fail; or use it on
// the publishing side (Deduplicator.Decorator).
type ExpiringKeyRepository struct {
	client redis.UniversalClient
	config ExpiringKeyRepositoryConfig
}

// NewExpiringKeyRepository returns a repository over client. The client is
// borrowed and never closed.
func NewExpiringKeyRepository(client redis.UniversalClient, config ExpiringKeyRepositoryConfig) (*ExpiringKeyRepository, error) {
	if client == nil {
		return nil, ErrNilClient
	}
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid expiring key repository config: %w", err)
	}
	return &ExpiringKeyRepository{client: client, config: config}, nil
}

// IsDuplicate reports whether key was seen within the window, and marks it
// as seen if not.
func (r *ExpiringKeyRepository) IsDuplicate(ctx context.Context, key string) (bool, error) {
	added, err := r.client.SetNX(ctx, r.config.KeyPrefix+key, 1, r.config.Window).Result()
	if err != nil {
		return false, fmt.Errorf("cannot check deduplication key %q: %w", key, err)
	}
	return !added, nil
}
