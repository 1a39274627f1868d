package millrace_test

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// loseReplies is a go-redis hook that lets the first n commands or
// pipelines of messages (XADD or EVALSHA) reach Redis and then replaces
// their replies with a network error: the writes happened, the client
// cannot know.
type loseReplies struct{ n atomic.Int32 }

func (h *loseReplies) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *loseReplies) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if name := cmd.Name(); name != "xadd" && name != "evalsha" || h.n.Add(-1) < 0 {
			return err
		}
		cmd.SetErr(io.ErrUnexpectedEOF)
		return io.ErrUnexpectedEOF
	}
}
func (h *loseReplies) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if name := cmds[0].Name(); name != "xadd" && name != "evalsha" || h.n.Add(-1) < 0 {
			return err
		}
		for _, cmd := range cmds {
			cmd.SetErr(io.ErrUnexpectedEOF)
		}
		return io.ErrUnexpectedEOF
	}
}

func idempotentPublisher(t *testing.T, c redis.UniversalClient, window time.Duration) *millrace.Publisher {
	t.Helper()
	pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{Idempotency: millrace.Idempotency{Window: window}}, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	return pub
}

func newMessages(payloads ...string) []*message.Message {
	msgs := make([]*message.Message, len(payloads))
	for i, p := range payloads {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(p))
	}
	return msgs
}

// A message published again within the window is not added again, and
// Publish succeeds; another topic, or the same one after the window, takes
// it.
func TestIdempotency_SameUUIDOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := idempotentPublisher(t, e.client, 300*time.Millisecond)
	topic, other := newTopic(), newTopic()
	msgs := newMessages("a", "b")
	require.NoError(t, pub.Publish(topic, msgs...))
	require.NoError(t, pub.Publish(topic, msgs...), "a repeated Publish succeeds")
	require.NoError(t, pub.Publish(topic, msgs[1], newMessages("c")[0]))
	assert.EqualValues(t, 3, xlen(t, e.client, topic))
	require.NoError(t, pub.Publish(other, msgs...))
	assert.EqualValues(t, 2, xlen(t, e.client, other), "the window is per topic")

	// The entry as a subscriber decodes it is the message, once.
	ids := entries(t, e.client, topic)
	assert.Equal(t, msgs[0].UUID, decode(t, ids[0].Values).UUID)

	// After the window the UUID is forgotten.
	require.Eventually(t, func() bool {
		return e.client.Exists(context.Background(), "{"+topic+"}:published:"+msgs[0].UUID).Val() == 0
	}, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, pub.Publish(topic, msgs[0]))
	assert.EqualValues(t, 4, xlen(t, e.client, topic))
}

// A pipeline whose replies are lost after Redis ran it is sent again, and
// the messages are in the stream once: Publish succeeds, by default (the
// producer sequence) and with Idempotency. With PlainXAdd the same loss is
// ErrOutcomeUnknown, and the messages were added.
func TestIdempotency_RetryAfterLostReply(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	ctx := context.Background()

	t.Run("idempotent", func(t *testing.T) {
		c := srv.Client(t)
		hook := &loseReplies{}
		hook.n.Store(1)
		c.AddHook(hook)
		pub := idempotentPublisher(t, c, time.Minute)
		topic := newTopic()
		require.NoError(t, pub.Publish(topic, newMessages("1", "2", "3")...))
		assert.EqualValues(t, 3, c.XLen(ctx, topic).Val(), "written once")
	})
	t.Run("every attempt lost", func(t *testing.T) {
		c := srv.Client(t)
		hook := &loseReplies{}
		hook.n.Store(100)
		c.AddHook(hook)
		pub := idempotentPublisher(t, c, time.Minute)
		topic := newTopic()
		err := pub.Publish(topic, newMessages("1", "2")...)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.ErrorIs(t, err, millrace.ErrOutcomeUnknown)
		assert.EqualValues(t, 2, c.XLen(ctx, topic).Val(), "an error after the retries: written once, or not at all")
		assert.EqualValues(t, 97, hook.n.Load(), "one send and two retries")
	})
	t.Run("default", func(t *testing.T) {
		c := srv.Client(t)
		hook := &loseReplies{}
		hook.n.Store(1)
		c.AddHook(hook)
		pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{}, testLogger)
		require.NoError(t, err)
		defer pub.Close()
		topic := newTopic()
		require.NoError(t, pub.Publish(topic, newMessages("1", "2")...))
		assert.EqualValues(t, 2, c.XLen(ctx, topic).Val(), "written once")
	})
	t.Run("PlainXAdd", func(t *testing.T) {
		c := srv.Client(t)
		hook := &loseReplies{}
		hook.n.Store(1)
		c.AddHook(hook)
		pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{PlainXAdd: true}, testLogger)
		require.NoError(t, err)
		defer pub.Close()
		topic := newTopic()
		err = pub.Publish(topic, newMessages("1", "2")...)
		require.ErrorIs(t, err, millrace.ErrOutcomeUnknown)
		assert.EqualValues(t, 2, c.XLen(ctx, topic).Val(), "the error says the outcome is unknown: here they were added")
	})
}

// A script flushed from Redis's cache (a restart, SCRIPT FLUSH, a new
// master) is loaded again; retention applies inside the script.
func TestIdempotency_NoScriptAndRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub, err := millrace.NewPublisher(e.client, millrace.PublisherConfig{
		Idempotency: millrace.Idempotency{Window: time.Minute},
		Retention:   millrace.Retention{MaxLen: 1},
	}, testLogger)
	require.NoError(t, err)
	defer pub.Close()
	topic := newTopic()
	require.NoError(t, pub.Publish(topic, newMessages("warm")...))
	require.NoError(t, e.client.ScriptFlush(context.Background()).Err())
	for range 300 {
		require.NoError(t, pub.Publish(topic, newMessages("x")...))
	}
	assert.Less(t, xlen(t, e.client, topic), int64(300), "MAXLEN ~ 1 trims inside the script")
}

// On Redis Cluster every key the script touches is in the topic's slot.
func TestIdempotency_Cluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3, 0)
	c := cl.Client(t)
	pub := idempotentPublisher(t, c, time.Minute)
	for _, topic := range []string{"orders", "payments", "a{b}c", "x}y"} {
		msgs := newMessages("1", "2")
		require.NoError(t, pub.Publish(topic, msgs...))
		require.NoError(t, pub.Publish(topic, msgs...))
		assert.EqualValues(t, 2, c.XLen(context.Background(), topic).Val(), topic)
	}
}

// A resend that succeeds reports its own WAIT, not the lost first
// attempt's: Publish succeeds once a replica confirmed the messages.
func TestIdempotency_RetryConfirmedByReplica(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t, redistest.Options{NoAOF: true})
	host, port, _ := strings.Cut(master.Addr(), ":")
	redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{"replicaof " + host + " " + port}})
	direct := master.Client(t)
	ctx := context.Background()
	require.Eventually(t, func() bool {
		info, err := direct.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
	}, 15*time.Second, 20*time.Millisecond)
	for _, cfg := range []millrace.PublisherConfig{
		{Durability: millrace.Durability{Replicas: 1, Timeout: 5 * time.Second}},
		{Durability: millrace.Durability{Replicas: 1, Timeout: 5 * time.Second}, Idempotency: millrace.Idempotency{Window: time.Minute}},
	} {
		c := master.Client(t)
		hook := &loseReplies{}
		hook.n.Store(1)
		c.AddHook(hook)
		pub, err := millrace.NewPublisher(c, cfg, testLogger)
		require.NoError(t, err)
		topic := newTopic()
		require.NoError(t, pub.Publish(topic, newMessages("1", "2")...), "the resend's WAIT confirmed them")
		assert.EqualValues(t, 2, direct.XLen(ctx, topic).Val(), "written once")
		assert.Less(t, hook.n.Load(), int32(0), "the first attempt's replies were lost, and it was sent again")
		require.NoError(t, pub.Close())
	}
}
