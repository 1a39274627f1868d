package millrace_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/keys"
)

// With RecordErrors on a Watermill Router, a failing handler's error is
// kept with the pending entry (shown by admin.Pending) and, once the entry
// is delivered more than MaxDeliveries times, in the dead letter, the last
// failure's error, beside the usual reason. A panic recovered by Recoverer
// inside it counts as an error too. Nothing is left behind in Redis.
func TestLastError_RouterMiddlewareKeepsErrorUntilDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	cfg := groupConfig("g")
	cfg.MaxDeliveries = 3
	cfg.NackBackoff = 400 * time.Millisecond
	sub := e.subscriber(t, cfg)

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: time.Second}, testLogger)
	require.NoError(t, err)
	router.AddMiddleware(millrace.RecordErrors, middleware.Recoverer)
	var calls atomic.Int32
	router.AddConsumerHandler("h", topic, sub, func(msg *message.Message) error {
		n := calls.Add(1)
		if n == 2 {
			panic("handler panicked")
		}
		return fmt.Errorf("payment declined (attempt %d)", n)
	})
	runRouter(t, router)
	sent := publish(t, pub, topic, "refund")
	id := entries(t, e.client, topic)[0].ID

	adm := admin.New(e.client, admin.Options{})
	ctx := ctxTimeout(t, 20*time.Second)
	require.Eventually(t, func() bool {
		p, err := adm.Pending(ctx, topic, "g", 10)
		return err == nil && len(p) == 1 && p[0].LastError == "payment declined (attempt 1)"
	}, 5*time.Second, 5*time.Millisecond, "the first failure's error is kept with the pending entry")
	detail, err := adm.PendingEntry(ctx, topic, "g", id)
	require.NoError(t, err)
	assert.Equal(t, "payment declined (attempt 1)", detail.LastError)
	assert.Equal(t, "refund", string(detail.Message.Payload))
	assert.Equal(t, sent[0].UUID, detail.Message.UUID)
	assert.EqualValues(t, 1, detail.Deliveries)
	assert.NotEmpty(t, detail.Consumer, "the generated consumer name")
	assert.GreaterOrEqual(t, detail.Age, detail.Idle-time.Second, "an entry is at least as old as its last delivery")

	require.Eventually(t, func() bool {
		p, err := adm.Pending(ctx, topic, "g", 10)
		return err == nil && len(p) == 1 && strings.Contains(p[0].LastError, "handler panicked")
	}, 5*time.Second, 5*time.Millisecond, "a recovered panic's error replaces it")

	dead := awaitDeadLetters(t, e.client, millrace.DeadLetterTopic(topic), 1)[0]
	assert.Equal(t, "payment declined (attempt 3)", dead.Metadata.Get(millrace.MetadataLastError))
	assert.Equal(t, "delivered 4 times, more than MaxDeliveries 3", dead.Metadata.Get(middleware.ReasonForPoisonedKey))
	letters, err := adm.DeadLetters(ctx, topic, admin.DeadLetterQuery{})
	require.NoError(t, err)
	require.Len(t, letters, 1)
	assert.Equal(t, "payment declined (attempt 3)", letters[0].LastError)

	requireNoPending(t, e.client, topic, "g")
	n, err := e.client.Exists(ctx, keys.LastError(topic, "g", id)).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the dead letter takes the error with it")
	assert.EqualValues(t, 3, calls.Load())
}

// A handler that Nacks by itself keeps its error with RecordError; the
// error is deleted when the entry is acknowledged at its next delivery,
// and it never reaches the handler as metadata.
func TestLastError_RecordErrorDeletedOnAck(t *testing.T) {
	t.Parallel()
	fx := newGroupTopic(t, func(cfg *millrace.SubscriberConfig) { cfg.NackBackoff = 100 * time.Millisecond })
	e, topic, ch := fx.env, fx.topic, fx.ch
	publish(t, fx.pub, topic, "x")
	ctx := ctxTimeout(t, 10*time.Second)

	m := receive(t, ch)
	id := m.Metadata.Get(millrace.MetadataEntryID)
	millrace.RecordError(m, errors.New("database is down"))
	m.Nack()
	key := keys.LastError(topic, "g", id)
	require.Eventually(t, func() bool { return e.client.Get(ctx, key).Val() == "database is down" },
		5*time.Second, time.Millisecond, "the error is kept")
	ttl, err := e.client.PTTL(ctx, key).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 24*time.Hour, "kept for days")
	assert.LessOrEqual(t, ttl, 7*24*time.Hour, "and not for ever")

	again := receive(t, ch)
	assert.Empty(t, again.Metadata.Get(millrace.MetadataLastError))
	again.Ack()
	require.Eventually(t, func() bool { return e.client.Exists(ctx, key).Val() == 0 }, 5*time.Second, 5*time.Millisecond,
		"acknowledged: its error is deleted")

	// A Nack without an error keeps nothing.
	publish(t, fx.pub, topic, "y")
	m = receive(t, ch)
	m.Nack()
	again = receive(t, ch)
	assert.Zero(t, e.client.Exists(ctx, keys.LastError(topic, "g", m.Metadata.Get(millrace.MetadataEntryID))).Val())
	again.Ack()
}

// The error kept by one consumer reaches the dead letter written by
// another: a consumer that Nacked with an error closes, and the one that
// takes the entry over finds it delivered too often.
func TestLastError_DeadLetteredByAnotherConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	nackThenClose(t, e, topic, func(m *message.Message) {
		millrace.RecordError(m, errors.New(strings.Repeat("é", 2000)))
	})

	second := groupConfig("g")
	second.MaxDeliveries = 1
	subscribe(t, e.subscriber(t, second), topic)
	dead := awaitDeadLetters(t, e.client, millrace.DeadLetterTopic(topic), 1)[0]
	last := dead.Metadata.Get(millrace.MetadataLastError)
	assert.True(t, strings.HasPrefix(last, "éé"), "the first consumer's error")
	assert.True(t, strings.HasSuffix(last, "é…"), "cut at a character, marked")
	assert.LessOrEqual(t, len(last), 1024, "cut to 1 KiB")
	requireNoPending(t, e.client, topic, "g")
	assert.Zero(t, e.client.Exists(context.Background(), keys.LastError(topic, "g", dead.Metadata.Get(millrace.MetadataDeadLetterEntryID))).Val())
}
