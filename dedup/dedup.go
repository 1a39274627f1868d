// Package dedup keeps the keys of Watermill's Deduplicator middleware in
// Redis, so that every process using the same Redis shares them.
package dedup

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"
)

// ExpiringKeyRepository is a Redis-backed ExpiringKeyRepository for
// Watermill's Deduplicator middleware (message/router/middleware), shared by
// every process that uses the same Redis, unlike Watermill's in-memory one:
//
//	repo, _ := dedup.NewExpiringKeyRepository(client, dedup.Config{Window: time.Hour})
//	d := &middleware.Deduplicator{KeyFactory: middleware.NewMessageHasherSHA256(0), Repository: repo}
//	router.AddMiddleware(d.Middleware)
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
	config Config
}

var _ middleware.ExpiringKeyRepository = (*ExpiringKeyRepository)(nil)

// NewExpiringKeyRepository returns a repository over client. The client is
// borrowed and never closed.
func NewExpiringKeyRepository(client redis.UniversalClient, config Config) (*ExpiringKeyRepository, error) {
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
