package harness

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"
)

// prefillBatch is how many XADDs one pre-fill pipeline carries.
const prefillBatch = 1000

// NewTopic returns a fresh topic name.
func NewTopic() string { return "bench_" + watermill.NewShortUUID() }

// TopicNames returns k topic names made from base: base itself when k is at
// most 1, otherwise base_0, base_1, … (all found by [DeleteTopic] of base).
func TopicNames(base string, k int) []string {
	if k <= 1 {
		return []string{base}
	}
	names := make([]string, k)
	for i := range names {
		names[i] = base + "_" + strconv.Itoa(i)
	}
	return names
}

// NewGroup returns a fresh consumer group name.
func NewGroup() string { return "bench_group_" + watermill.NewShortUUID() }

// Payload returns size random bytes, the one payload every message of a run
// carries.
func Payload(size int) []byte {
	p := make([]byte, size)
	rand.Read(p)
	return p
}

// newMessage returns a message with a fresh ULID and payload.
func newMessage(payload []byte) *message.Message {
	return message.NewMessage(ulid.Make().String(), payload)
}

// prefiller is an implementation that fills a backlog its own way.
type prefiller interface {
	prefill(ctx context.Context, topic string, payload []byte, n int) error
}

// Prefill adds n entries to topic's stream with pipelined XADDs, each entry
// encoded as impl's publisher would write it (GoChannel keeps them in
// memory instead).
func Prefill(ctx context.Context, admin *redis.Client, impl Impl, topic string, payload []byte, n int) error {
	if p, ok := impl.(prefiller); ok {
		return p.prefill(ctx, topic, payload, n)
	}
	for done := 0; done < n; {
		pipe := admin.Pipeline()
		for range min(prefillBatch, n-done) {
			values, err := impl.Encode(topic, newMessage(payload))
			if err != nil {
				return err
			}
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: values})
			done++
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("pre-fill %s: %w", topic, err)
		}
	}
	return nil
}

// topicPreparer is an implementation whose topics must exist before
// messages are published to them.
type topicPreparer interface {
	prepareTopic(topic string) error
}

// topicDeleter is an implementation whose topics live outside Redis.
type topicDeleter interface {
	deleteTopic(ctx context.Context, topic string) error
}

// DeleteImplTopic deletes topic as impl keeps it: with [DeleteTopic] on
// Redis, or in the implementation's own broker.
func DeleteImplTopic(ctx context.Context, admin *redis.Client, impl Impl, topic string) error {
	if d, ok := impl.(topicDeleter); ok {
		return d.deleteTopic(ctx, topic)
	}
	return DeleteTopic(ctx, admin, topic)
}

// DeleteTopic deletes topic's stream and every auxiliary key of it (such as
// Millrace's "{topic}:dlq"), so that the server's memory does not grow from
// run to run.
func DeleteTopic(ctx context.Context, admin *redis.Client, topic string) error {
	keys := []string{topic}
	iter := admin.Scan(ctx, 0, "*"+topic+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return admin.Del(ctx, keys...).Err()
}
