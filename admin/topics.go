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

// TopicExists reports whether anything of topic exists: its stream, its
// dead-letter stream, its delayed messages or its first partition's stream
// (a partitioned topic). One EXISTS per key, in one pipeline.
func (a *Admin) TopicExists(ctx context.Context, topic string) (bool, error) {
	if err := checkTopic(topic); err != nil {
		return false, err
	}
	pipe := a.client.Pipeline()
	var cmds []*redis.IntCmd
	for _, k := range []string{keys.Stream(topic), a.deadLetterStream(topic), keys.Delayed(topic), keys.Stream(keys.Partition(topic, 0))} {
		cmds = append(cmds, pipe.Exists(ctx, k))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("cannot look up topic %s: %w", topic, err)
	}
	for _, c := range cmds {
		if c.Val() > 0 {
			return true, nil
		}
	}
	return false, nil
}

// mustExist returns a [ErrNoSuchTopic] error (also [ErrNoSuchGroup] when
// group is named) unless something of topic exists.
func (a *Admin) mustExist(ctx context.Context, topic, group string) error {
	ok, err := a.TopicExists(ctx, topic)
	if err != nil {
		return err
	}
	if !ok {
		return noSuchTopic{topic: topic, group: group}
	}
	return nil
}
