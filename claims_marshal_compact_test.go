package millrace_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

// The README: the Publisher writes an entry's fields "in sorted order, so
// Redis stores entries compactly" (a stream node stores the fields once
// when its entries repeat them in the same order). The same messages added
// with the fields in varying order take more memory.
func TestClaims_SortedFieldsStoreCompactly(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t, 30*time.Second)
	const n = 1000
	sorted, shuffled := newTopic(), newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf("payload-%08d", i)))
		msgs[i].Metadata.Set("trace", "abc")
	}
	require.NoError(t, pub.Publish(sorted, msgs...))

	written, err := e.client.XRange(ctx, sorted, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, written, n)
	var order []string
	raw, err := e.client.Do(ctx, "xrange", sorted, "-", "+", "count", 1).Slice()
	require.NoError(t, err)
	fields := raw[0].([]any)[1].([]any)
	for i := 0; i < len(fields); i += 2 {
		order = append(order, fields[i].(string))
	}
	assert.Equal(t, []string{"_watermill_message_uuid", "metadata", "payload"}, order, "fields in sorted order")

	// The same entries, their fields in two orders taking turns.
	_, err = e.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range written {
			v := m.Values
			args := []any{"_watermill_message_uuid", v["_watermill_message_uuid"], "metadata", v["metadata"], "payload", v["payload"]}
			if i%2 == 1 {
				args = []any{"payload", v["payload"], "metadata", v["metadata"], "_watermill_message_uuid", v["_watermill_message_uuid"]}
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: shuffled, Values: args})
		}
		return nil
	})
	require.NoError(t, err)
	same, err := e.client.MemoryUsage(ctx, sorted, 0).Result()
	require.NoError(t, err)
	mixed, err := e.client.MemoryUsage(ctx, shuffled, 0).Result()
	require.NoError(t, err)
	t.Logf("%d entries: %d bytes with the fields in one order, %d with two orders", n, same, mixed)
	assert.Less(t, same, mixed, "one field order stores more compactly")
}
