package partition_test

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
	"github.com/millrace/millrace/partition"
)

// testLogger logs errors and warnings only.
var testLogger = watermill.NewStdLogger(false, false)

// redisClient returns a client of a redis-server started for the test (or
// of the one at REDIS_URL).
func redisClient(t *testing.T) redis.UniversalClient {
	t.Helper()
	return redistest.StartFromEnv(t).Client(t)
}

func newTopic() string { return "topic-" + watermill.NewShortUUID() }

// groupConfig is a consumer-group subscriber config with short timings, so
// that Close (bounded by BlockTime and CloseTimeout) stays fast.
func groupConfig(group string) millrace.SubscriberConfig {
	return millrace.SubscriberConfig{ConsumerGroup: group, BlockTime: 100 * time.Millisecond, CloseTimeout: 300 * time.Millisecond}
}

// newPublisher wraps a new millrace.Publisher on client; it is closed when
// the test ends.
func newPublisher(t *testing.T, client redis.UniversalClient, cfg partition.Config) *partition.Publisher {
	t.Helper()
	inner, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	pub, err := partition.NewPublisher(inner, cfg)
	closeAtEnd(t, pub, err)
	return pub
}

// newSubscriber wraps a new millrace.Subscriber on client; it is closed
// (and the wrapped one with it) when the test ends.
func newSubscriber(t *testing.T, client redis.UniversalClient, subCfg millrace.SubscriberConfig, cfg partition.Config) *partition.Subscriber {
	t.Helper()
	inner, err := millrace.NewSubscriber(client, subCfg, testLogger)
	require.NoError(t, err)
	sub, err := partition.NewSubscriber(inner, cfg)
	closeAtEnd(t, sub, err)
	return sub
}

// closeAtEnd fails t on a constructor's error and closes what it built
// when the test ends.
func closeAtEnd(t *testing.T, c io.Closer, err error) {
	t.Helper()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
}

// next returns the next message of ch, or nil once ch is closed; it fails
// the test after 15s.
func next(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	select {
	case msg := <-ch:
		return msg
	case <-timeout.C:
		t.Fatal("nothing on the channel within 15s")
		return nil
	}
}

// receive waits for the next message on ch.
func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	msg := next(t, ch)
	require.NotNil(t, msg, "channel closed")
	return msg
}

// requireClosed waits for ch to be closed, draining it.
func requireClosed(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	for next(t, ch) != nil {
	}
}

// requireClosedNow asserts that ch is closed already.
func requireClosedNow(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	select {
	case msg, open := <-ch:
		require.False(t, open, "message %v on a channel that should be closed", msg)
	default:
		t.Fatal("channel is not closed")
	}
}

// requireNoMessage asserts that nothing arrives on ch within d.
func requireNoMessage(t *testing.T, ch <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case msg := <-ch:
		t.Fatalf("unexpected message %v", msg)
	case <-time.After(d):
	}
}

// newMessages returns n messages without a partition key.
func newMessages(n int) []*message.Message {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))
	}
	return msgs
}

// xlen is XLEN stream (0 when it does not exist).
func xlen(t *testing.T, c redis.UniversalClient, stream string) int64 {
	t.Helper()
	cmd := c.XLen(context.Background(), stream)
	require.NoError(t, cmd.Err())
	return cmd.Val()
}

// pending is the number of entries in the PEL of group over streams.
func pending(t *testing.T, c redis.UniversalClient, group string, streams ...string) int64 {
	t.Helper()
	var n int64
	for _, s := range streams {
		p, err := c.XPending(context.Background(), s, group).Result()
		require.NoError(t, err)
		n += p.Count
	}
	return n
}
