package millrace_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// testLogger logs errors and warnings only; the universal suite is chatty.
var testLogger = watermill.NewStdLogger(false, false)

// env is one test's Redis server and client.
type env struct {
	srv    *redistest.Server
	client redis.UniversalClient
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := redistest.StartFromEnv(t)
	return &env{srv: srv, client: srv.Client(t)}
}

func (e *env) publisher(t *testing.T, cfg millrace.PublisherConfig) *millrace.Publisher {
	t.Helper()
	pub, err := millrace.NewPublisher(e.client, cfg, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	return pub
}

func (e *env) subscriber(t *testing.T, cfg millrace.SubscriberConfig) *millrace.Subscriber {
	t.Helper()
	sub, err := millrace.NewSubscriber(e.client, cfg, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	return sub
}

func newTopic() string { return "topic-" + watermill.NewShortUUID() }

// receive waits for the next message on ch.
func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-ch:
		require.True(t, ok, "channel closed")
		return msg
	case <-time.After(15 * time.Second):
		t.Fatal("no message within 15s")
		return nil
	}
}

// requireNoMessage asserts that nothing arrives on ch within d.
func requireNoMessage(t *testing.T, ch <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case msg := <-ch:
		t.Fatalf("unexpected message %s", msg.UUID)
	case <-time.After(d):
	}
}

// requireClosed waits for ch to be closed, draining it.
func requireClosed(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed within 15s")
		}
	}
}

func publish(t *testing.T, pub message.Publisher, topic string, payloads ...string) []*message.Message {
	t.Helper()
	msgs := make([]*message.Message, len(payloads))
	for i, p := range payloads {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(p))
	}
	require.NoError(t, pub.Publish(topic, msgs...))
	return msgs
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
