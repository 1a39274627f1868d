package millrace_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

// A Nacked message comes back after the backoff, as a new message with a
// live context, counted by Redis's delivery counter.
func TestNack_RedeliveredAfterBackoffWithRedisCount(t *testing.T) {
	t.Parallel()
	const backoff = 300 * time.Millisecond
	fx := newGroupTopic(t, func(cfg *millrace.SubscriberConfig) {
		cfg.NackBackoff = backoff
	})
	e, topic, pub, ch := fx.env, fx.topic, fx.pub, fx.ch
	sent := publish(t, pub, topic, "again")

	var prev *message.Message
	var nackedAt time.Time
	for delivery := 1; delivery <= 3; delivery++ {
		m := receive(t, ch)
		if prev != nil {
			// NackBackoff doubles with each Nack of the entry.
			wait := backoff << (delivery - 2)
			assert.GreaterOrEqual(t, time.Since(nackedAt), wait*9/10, "delivery %d came before the backoff", delivery)
			assert.NotSame(t, prev, m, "every delivery is a new message")
			requireDone(t, prev.Context(), "previous delivery")
		}
		require.Equal(t, sent[0].UUID, m.UUID)
		require.Equal(t, "again", string(m.Payload))
		require.NoError(t, m.Context().Err(), "delivery %d: the context must be live", delivery)
		assert.Equal(t, strconv.Itoa(delivery), m.Metadata.Get(millrace.MetadataDeliveryCount))
		p, ok := pendingEntry(t, e.client, topic, "g", m.Metadata.Get(millrace.MetadataEntryID))
		require.True(t, ok, "a Nacked entry stays pending")
		assert.EqualValues(t, delivery, p.RetryCount, "the metadata is Redis's counter")

		if delivery == 3 {
			m.Ack()
			break
		}
		nackedAt = time.Now()
		m.Nack()
		prev = m
	}
	requireNoPending(t, e.client, topic, "g")
}

// With one message in flight, a Nacked message waits for its backoff aside:
// the next message is delivered meanwhile.
func TestNack_DoesNotBlockNextMessages(t *testing.T) {
	t.Parallel()
	fx := newGroupTopic(t, func(cfg *millrace.SubscriberConfig) {
		cfg.MaxInFlight = 1
		cfg.NackBackoff = 500 * time.Millisecond
	})
	topic, pub, ch := fx.topic, fx.pub, fx.ch
	sent := publish(t, pub, topic, "A", "B")

	a := receive(t, ch)
	require.Equal(t, sent[0].UUID, a.UUID)
	a.Nack()

	b := receive(t, ch)
	assert.Equal(t, sent[1].UUID, b.UUID, "B must arrive before A's redelivery")
	b.Ack()

	again := receive(t, ch)
	assert.Equal(t, sent[0].UUID, again.UUID)
	assert.Equal(t, "2", again.Metadata.Get(millrace.MetadataDeliveryCount))
	again.Ack()
}

// MaxDeliveries 3 with a handler that always Nacks: three deliveries, then
// the entry is moved to the dead-letter topic and acknowledged.
func TestMaxDeliveries_DeadLetters(t *testing.T) {
	t.Parallel()
	fx := newGroupTopic(t, func(cfg *millrace.SubscriberConfig) {
		cfg.Consumer = "worker-1"
		cfg.MaxDeliveries = 3
		cfg.NackBackoff = 20 * time.Millisecond
	})
	e, topic, pub, ch := fx.env, fx.topic, fx.pub, fx.ch
	poison := message.NewMessage("poison-uuid", []byte("poison"))
	poison.Metadata.Set("custom", "kept")
	require.NoError(t, pub.Publish(topic, poison))
	entryID := entries(t, e.client, topic)[0].ID
	dlq := millrace.DeadLetterTopic(topic)

	for delivery := 1; delivery <= 3; delivery++ {
		m := receive(t, ch)
		require.Equal(t, "poison-uuid", m.UUID)
		require.Equal(t, strconv.Itoa(delivery), m.Metadata.Get(millrace.MetadataDeliveryCount))
		m.Nack()
	}
	require.Eventually(t, func() bool { return xlen(t, e.client, dlq) == 1 }, 5*time.Second, 10*time.Millisecond,
		"the entry never reached the dead-letter topic %s", dlq)
	requireNoMessage(t, ch, 300*time.Millisecond) // no fourth delivery
	assert.Zero(t, pendingCount(t, e.client, topic, "g"), "a dead-lettered entry is acknowledged")
	assert.EqualValues(t, 1, xlen(t, e.client, topic), "the original entry stays in its stream")
	assert.EqualValues(t, 1, xlen(t, e.client, dlq), "dead-lettered exactly once")

	dead := decode(t, entries(t, e.client, dlq)[0].Values)
	assert.Equal(t, "poison-uuid", dead.UUID)
	assert.Equal(t, "poison", string(dead.Payload))
	md := dead.Metadata
	assert.Equal(t, "kept", md.Get("custom"))
	assert.Contains(t, md.Get(middleware.ReasonForPoisonedKey), "MaxDeliveries")
	assert.Equal(t, topic, md.Get(middleware.PoisonedTopicKey))
	assert.Equal(t, entryID, md.Get(millrace.MetadataDeadLetterEntryID))
	assert.Equal(t, "g", md.Get(millrace.MetadataDeadLetterGroup))
	assert.Equal(t, "worker-1", md.Get(millrace.MetadataDeadLetterConsumer))
	assert.Equal(t, "worker-1", md.Get(middleware.PoisonedSubscriberKey))
	// Redis counted a fourth delivery when the entry was claimed back after
	// the third Nack, which is what exceeded MaxDeliveries.
	assert.Equal(t, "4", md.Get(millrace.MetadataDeadLetterDeliveries))
	ts, err := time.Parse(time.RFC3339Nano, md.Get(millrace.MetadataDeadLetterTime))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), ts, time.Minute)
	assert.Empty(t, md.Get(millrace.MetadataEntryID), "delivery metadata is not copied")
	assert.Empty(t, md.Get(millrace.MetadataDeliveryCount), "delivery metadata is not copied")

	// The subscription goes on.
	next := publish(t, pub, topic, "healthy")
	got := receive(t, ch)
	assert.Equal(t, next[0].UUID, got.UUID)
	got.Ack()
}

// A custom DeadLetterTopic is used instead of the default.
func TestMaxDeliveries_CustomDeadLetterTopic(t *testing.T) {
	t.Parallel()
	fx := newGroupTopic(t, func(cfg *millrace.SubscriberConfig) {
		cfg.MaxDeliveries = 1
		cfg.NackBackoff = 10 * time.Millisecond
		cfg.DeadLetterTopic = func(topic string) string { return "dead-" + topic }
	})
	e, topic, pub, ch := fx.env, fx.topic, fx.pub, fx.ch
	publish(t, pub, topic, "x")
	receive(t, ch).Nack()
	require.Eventually(t, func() bool { return xlen(t, e.client, "dead-"+topic) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Zero(t, xlen(t, e.client, millrace.DeadLetterTopic(topic)))
}

// An entry deleted (XDEL) while it waits for its redelivery is dropped:
// not delivered, and gone from the PEL.
func TestNack_EntryDeletedWhileWaiting(t *testing.T) {
	t.Parallel()
	fx := newGroupTopic(t, func(cfg *millrace.SubscriberConfig) {
		cfg.NackBackoff = 300 * time.Millisecond
	})
	e, topic, pub, ch := fx.env, fx.topic, fx.pub, fx.ch
	publish(t, pub, topic, "doomed")
	m := receive(t, ch)
	m.Nack()
	require.NoError(t, e.client.XDel(context.Background(), topic, m.Metadata.Get(millrace.MetadataEntryID)).Err())

	requireNoMessage(t, ch, time.Second)
	requireNoPending(t, e.client, topic, "g")

	sent := publish(t, pub, topic, "next")
	got := receive(t, ch)
	assert.Equal(t, sent[0].UUID, got.UUID)
	got.Ack()
}

// A Nacked message waiting for its backoff when the subscriber closes stays
// pending and is released: another consumer takes it at once, long before
// ClaimMinIdle or the backoff.
func TestNack_WaitingMessageReleasedOnClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	sent := nackThenClose(t, e, topic, nil)
	assert.EqualValues(t, 1, pendingCount(t, e.client, topic, "g"), "a Nacked entry stays pending")

	start := time.Now()
	got := receive(t, subscribe(t, e.subscriber(t, groupConfig("g")), topic)) // ClaimMinIdle 30s
	assert.Equal(t, sent.UUID, got.UUID)
	assert.Less(t, time.Since(start), 10*time.Second)
	got.Ack()
}

// nackThenClose publishes one message to topic and Nacks it (after mark,
// if any) in a subscriber of group "g" that would redeliver it a minute
// later, then closes that subscriber. It returns the message published.
func nackThenClose(t *testing.T, e *env, topic string, mark func(*message.Message)) *message.Message {
	t.Helper()
	cfg := groupConfig("g")
	cfg.NackBackoff = time.Minute
	sub := e.subscriber(t, cfg)
	ch := subscribe(t, sub, topic)
	sent := publish(t, e.publisher(t, millrace.PublisherConfig{}), topic, "nacked")
	m := receive(t, ch)
	if mark != nil {
		mark(m)
	}
	m.Nack()
	require.NoError(t, sub.Close())
	return sent[0]
}
