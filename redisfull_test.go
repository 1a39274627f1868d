package millrace_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// Redis at maxmemory with noeviction refuses new messages: Publish says so
// with ErrRedisFull, and nothing of the call is added. The subscription
// goes on: it hands out what was published before and its Acks go through.
// Once Redis has room again, Publish works and nothing was lost.
func TestRedisFull(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{"maxmemory-policy noeviction"}})
	client := srv.Client(t)
	ctx := context.Background()
	e := &env{srv: srv, client: client}
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)
	before := publish(t, pub, topic, "1", "2", "3")
	first := receive(t, ch) // in a handler while Redis fills up

	used, err := client.MemoryUsage(ctx, topic).Result()
	require.NoError(t, err)
	require.Positive(t, used)
	require.NoError(t, client.ConfigSet(ctx, "maxmemory", "1").Err())

	err = pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("refused")))
	require.ErrorIs(t, err, millrace.ErrRedisFull)
	delayed := message.NewMessage(watermill.NewUUID(), []byte("refused, delayed"))
	delay.Message(delayed, delay.For(time.Minute))
	require.ErrorIs(t, pub.Publish(topic, delayed), millrace.ErrRedisFull)
	assert.EqualValues(t, 3, xlen(t, client, topic), "nothing of a refused call is added")

	// Reads and Acks go on while Redis is full.
	got := []string{string(first.Payload)}
	first.Ack()
	for range 2 {
		m := receive(t, ch)
		got = append(got, string(m.Payload))
		m.Ack()
	}
	assert.Equal(t, []string{"1", "2", "3"}, got)
	requireNoPending(t, client, topic, "g")

	require.NoError(t, client.ConfigSet(ctx, "maxmemory", "0").Err())
	after := publish(t, pub, topic, "4")
	m := receive(t, ch)
	assert.Equal(t, after[0].UUID, m.UUID)
	m.Ack()
	requireNoPending(t, client, topic, "g")
	assert.EqualValues(t, len(before)+1, xlen(t, client, topic))
}
