package millrace_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/redistest"
)

// The writes that count what a ceiling cost, with their replies lost:
// the script that counts dropped entries is sent again by go-redis and
// counts each entry once (the count goes with the group's move past the
// entries); the HINCRBY of refused messages is sent once (NoRetry), so a
// lost reply never counts them twice.
func TestContract_CeilingCountsReplyLost(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	direct := srv.Client(t)
	proxy := startFaultProxy(t, srv.Addr())
	ctx := context.Background()
	messages := func(n int) []*message.Message {
		msgs := make([]*message.Message, n)
		for i := range msgs {
			msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("m"))
		}
		return msgs
	}

	t.Run("dropped", func(t *testing.T) {
		// A first round caches the script: the reply lost below is that of
		// a script Redis ran, not a NOSCRIPT.
		warm, err := millrace.NewPublisher(direct, millrace.PublisherConfig{Retention: millrace.Retention{Ceiling: 100}}, testLogger)
		require.NoError(t, err)
		require.NoError(t, direct.XGroupCreateMkStream(ctx, "warm", "gone", "$").Err())
		require.NoError(t, warm.Publish("warm", messages(300)...))
		require.NoError(t, warm.Close())

		topic := newTopic()
		require.NoError(t, direct.XGroupCreateMkStream(ctx, topic, "gone", "$").Err())
		pub, err := millrace.NewPublisher(proxiedClient(t, srv, proxy), millrace.PublisherConfig{
			Retention: millrace.Retention{Ceiling: 100}, TrimInterval: time.Hour, // only Close's round
		}, testLogger)
		require.NoError(t, err)
		require.NoError(t, pub.Publish(topic, messages(1000)...))
		lost := proxy.LoseReply(func(args []string) bool {
			return len(args) > 4 && strings.EqualFold(args[0], "evalsha") && args[2] == "2" && args[3] == topic && args[4] == keys.Overflow(topic)
		})
		require.NoError(t, pub.Close())
		awaitLost(t, lost, "the count of dropped entries")
		length := xlen(t, direct, topic)
		assert.Equal(t, 1000-length, dropped(t, direct, topic, "gone"), "each dropped entry counted once")
		g, ok := groupInfo(t, direct, topic, "gone")
		require.True(t, ok)
		assert.Equal(t, length, g.Lag)
	})

	t.Run("refused", func(t *testing.T) {
		topic := newTopic()
		require.NoError(t, direct.XGroupCreateMkStream(ctx, topic, "gone", "$").Err())
		pub, err := millrace.NewPublisher(proxiedClient(t, srv, proxy), millrace.PublisherConfig{
			Retention: millrace.Retention{Ceiling: 100, Overflow: millrace.RefusePublish},
		}, testLogger)
		require.NoError(t, err)
		defer pub.Close()
		require.NoError(t, pub.Publish(topic, messages(100)...))
		lost := proxy.LoseReply(func(args []string) bool {
			return len(args) > 2 && strings.EqualFold(args[0], "hincrby") && args[1] == keys.Overflow(topic)
		})
		require.ErrorIs(t, pub.Publish(topic, messages(7)...), millrace.ErrTopicFull)
		awaitLost(t, lost, "the count of refused messages")
		n, err := direct.HGet(ctx, keys.Overflow(topic), keys.OverflowRefused).Int()
		require.NoError(t, err)
		assert.Equal(t, 7, n, "counted once: the HINCRBY is never sent again")
	})
}
