package millrace_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

func broadcastConfig() millrace.SubscriberConfig {
	return millrace.SubscriberConfig{BlockTime: 100 * time.Millisecond, CloseTimeout: 300 * time.Millisecond}
}

// Every broadcast subscriber gets every message published after its
// Subscribe returned, and none published before.
func TestBroadcast_EverySubscriberGetsEveryMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	publish(t, pub, topic, "before-1", "before-2")

	subA := subscribe(t, e.subscriber(t, broadcastConfig()), topic)
	subB := subscribe(t, e.subscriber(t, broadcastConfig()), topic)
	sent := publish(t, pub, topic, "after-1", "after-2", "after-3")

	for name, ch := range map[string]<-chan *message.Message{"A": subA, "B": subB} {
		for _, want := range sent {
			m := receive(t, ch)
			assert.Equal(t, want.UUID, m.UUID, "subscriber %s: in stream order, nothing from before Subscribe", name)
			assert.Equal(t, "1", m.Metadata.Get(millrace.MetadataDeliveryCount))
			assert.NotEmpty(t, m.Metadata.Get(millrace.MetadataEntryID))
			m.Ack()
		}
		requireNoMessage(t, ch, 200*time.Millisecond)
	}
	assert.Empty(t, groups(t, e.client, topic), "broadcast creates no consumer group")
}

// A broadcast subscriber on a stream that does not exist yet gets the
// messages of the stream once it is created.
func TestBroadcast_StreamCreatedLater(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	ch := subscribe(t, e.subscriber(t, broadcastConfig()), topic)
	sent := publish(t, e.publisher(t, millrace.PublisherConfig{}), topic, "first")
	m := receive(t, ch)
	assert.Equal(t, sent[0].UUID, m.UUID)
	m.Ack()
}

// Nack in broadcast mode delivers the same message again.
func TestBroadcast_NackRedelivers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	cfg := broadcastConfig()
	cfg.NackBackoff = 50 * time.Millisecond
	ch := subscribe(t, e.subscriber(t, cfg), topic)
	sent := publish(t, e.publisher(t, millrace.PublisherConfig{}), topic, "retry-me", "next")

	first := receive(t, ch)
	require.Equal(t, sent[0].UUID, first.UUID)
	first.Nack()
	requireDone(t, first.Context(), "nacked message")

	var again, next bool
	for range 2 {
		m := receive(t, ch)
		switch m.UUID {
		case sent[0].UUID:
			again = true
			assert.Equal(t, "retry-me", string(m.Payload))
			assert.Equal(t, first.Metadata.Get(millrace.MetadataEntryID), m.Metadata.Get(millrace.MetadataEntryID))
			assert.Equal(t, "1", m.Metadata.Get(millrace.MetadataDeliveryCount), "no delivery counter without a group")
			require.NoError(t, m.Context().Err())
		case sent[1].UUID:
			next = true
		}
		m.Ack()
	}
	assert.True(t, again, "the Nacked message was not redelivered")
	assert.True(t, next)
	requireNoMessage(t, ch, 200*time.Millisecond)
}
