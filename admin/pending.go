package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
)

// PendingEntry is one entry of a group's pending entries list.
type PendingEntry struct {
	ID       string
	Consumer string
	// Idle is the time since the entry was last delivered.
	Idle time.Duration
	// Deliveries is Redis's delivery counter of the entry.
	Deliveries int64
}

// Pending lists up to count entries (100 if count <= 0) of group's pending
// entries list, oldest first (XPENDING key group - + count), or
// [ErrNoSuchGroup].
func (a *Admin) Pending(ctx context.Context, topic, group string, count int64) ([]PendingEntry, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	if count <= 0 {
		count = 100
	}
	res, err := a.client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: keys.Stream(topic), Group: group, Start: "-", End: "+", Count: count}).Result()
	if err != nil && !rediserr.IsNil(err) {
		if rediserr.IsNoGroup(err) {
			return nil, fmt.Errorf("%w: %s on topic %s", ErrNoSuchGroup, group, topic)
		}
		return nil, fmt.Errorf("cannot read the pending entries of group %s on topic %s: %w", group, topic, err)
	}
	out := make([]PendingEntry, len(res))
	for k, p := range res {
		out[k] = PendingEntry{ID: p.ID, Consumer: p.Consumer, Idle: p.Idle, Deliveries: p.RetryCount}
	}
	return out, nil
}
