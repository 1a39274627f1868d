package admin

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
)

// Topics lists the topics in the database, sorted: every stream, and the
// topic of every dead-letter stream with the default name ("{orders}:dlq"
// lists "orders"), so a topic whose stream is gone but whose dead letters
// are not still shows. Dead-letter streams are not listed themselves, nor is
// a stream that Options.DeadLetterTopic names for another listed topic. It
// uses SCAN ... TYPE stream, on every master of a Cluster: O(keys in the
// database), so call it rarely on large databases.
func (a *Admin) Topics(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	set := map[string]bool{}
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			found, next, err := c.ScanType(ctx, cursor, "", 1000, "stream").Result()
			if err != nil {
				return fmt.Errorf("cannot list streams (SCAN TYPE stream): %w", err)
			}
			mu.Lock()
			for _, k := range found {
				if base, ok := keys.DeadLetterBase(k); ok {
					k = base
				}
				set[k] = true
			}
			mu.Unlock()
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	var err error
	if cc, ok := a.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, a.client)
	}
	if err != nil {
		return nil, err
	}
	dlqs := map[string]bool{}
	for t := range set {
		if dlq := a.deadLetterTopic(t); dlq != t {
			dlqs[dlq] = true
		}
	}
	topics := make([]string, 0, len(set))
	for t := range set {
		if !dlqs[t] {
			topics = append(topics, t)
		}
	}
	slices.Sort(topics)
	return topics, nil
}
