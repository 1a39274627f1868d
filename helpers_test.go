package millrace_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/rediserr"
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

// groupConfig is a consumer-group subscriber config with short timings, so
// that Close (bounded by BlockTime and CloseTimeout) stays fast in tests.
func groupConfig(group string) millrace.SubscriberConfig {
	return millrace.SubscriberConfig{
		ConsumerGroup: group,
		BlockTime:     100 * time.Millisecond,
		CloseTimeout:  300 * time.Millisecond,
	}
}

// subscribe starts a subscription on sub that lives until sub is closed.
func subscribe(t *testing.T, sub *millrace.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	return ch
}

// pendingCount is the number of entries in group's PEL (XPENDING summary).
func pendingCount(t *testing.T, c redis.UniversalClient, stream, group string) int64 {
	t.Helper()
	p, err := c.XPending(context.Background(), stream, group).Result()
	require.NoError(t, err)
	return p.Count
}

// pendingEntry is the PEL record of one entry (XPENDING stream group id id 1).
func pendingEntry(t *testing.T, c redis.UniversalClient, stream, group, id string) (redis.XPendingExt, bool) {
	t.Helper()
	p, err := c.XPendingExt(context.Background(), &redis.XPendingExtArgs{
		Stream: stream, Group: group, Start: id, End: id, Count: 1,
	}).Result()
	require.NoError(t, err)
	if len(p) == 0 {
		return redis.XPendingExt{}, false
	}
	return p[0], true
}

// groups returns XINFO GROUPS of stream; nil when the stream does not exist.
func groups(t *testing.T, c redis.UniversalClient, stream string) []redis.XInfoGroup {
	t.Helper()
	g, err := c.XInfoGroups(context.Background(), stream).Result()
	if rediserr.IsNoSuchKey(err) {
		return nil
	}
	require.NoError(t, err)
	return g
}

// groupInfo returns the XINFO GROUPS record of group, if the group exists.
func groupInfo(t *testing.T, c redis.UniversalClient, stream, group string) (redis.XInfoGroup, bool) {
	t.Helper()
	for _, g := range groups(t, c, stream) {
		if g.Name == group {
			return g, true
		}
	}
	return redis.XInfoGroup{}, false
}

// entries returns every entry of stream (XRANGE - +).
func entries(t *testing.T, c redis.UniversalClient, stream string) []redis.XMessage {
	t.Helper()
	msgs, err := c.XRange(context.Background(), stream, "-", "+").Result()
	require.NoError(t, err)
	return msgs
}

// xlen is XLEN stream (0 when it does not exist).
func xlen(t *testing.T, c redis.UniversalClient, stream string) int64 {
	t.Helper()
	n, err := c.XLen(context.Background(), stream).Result()
	require.NoError(t, err)
	return n
}

// decode decodes the fields of a stream entry with the DefaultMarshaler.
func decode(t *testing.T, values map[string]interface{}) *message.Message {
	t.Helper()
	msg, err := millrace.DefaultMarshaler{}.Unmarshal(values)
	require.NoError(t, err)
	return msg
}

// readAs reads up to count new entries of stream as consumer of group with a
// raw XREADGROUP and never acknowledges them: a consumer that crashed after
// reading. The group is created (from the start of the stream) if missing.
func readAs(t *testing.T, c redis.UniversalClient, stream, group, consumer string, count int64) []redis.XMessage {
	t.Helper()
	ctx := context.Background()
	err := c.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		require.NoError(t, err)
	}
	res, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: count, Block: -1,
	}).Result()
	require.NoError(t, err)
	require.Len(t, res, 1)
	return res[0].Messages
}

// requireDone waits for ctx to be done.
func requireDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: context not cancelled within 5s", what)
	}
}

// requireClosedNow asserts that ch is already closed (draining anything left).
func requireClosedNow(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		default:
			t.Fatal("channel is not closed")
		}
	}
}

// publishCatchingPanic calls pub.Publish and turns a panic into an error, so
// that a library panic fails one test instead of the whole test binary.
func publishCatchingPanic(pub message.Publisher, topic string, msgs ...*message.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("Publish panicked: %v", r)
		}
	}()
	return pub.Publish(topic, msgs...)
}

// groupTopic is the setup most behaviour tests share: a fresh topic on the
// test's server, a publisher to it, and a subscription of group "g" made
// with groupConfig("g") plus configure's changes (configure may be nil).
type groupTopic struct {
	*env
	topic string
	pub   *millrace.Publisher
	ch    <-chan *message.Message
}

func newGroupTopic(t *testing.T, configure func(*millrace.SubscriberConfig)) *groupTopic {
	t.Helper()
	e := newEnv(t)
	g := &groupTopic{env: e, topic: newTopic(), pub: e.publisher(t, millrace.PublisherConfig{})}
	cfg := groupConfig("g")
	if configure != nil {
		configure(&cfg)
	}
	g.ch = subscribe(t, e.subscriber(t, cfg), g.topic)
	return g
}

// broadcast adds a broadcast subscription of the topic.
func (g *groupTopic) broadcast(t *testing.T) <-chan *message.Message {
	t.Helper()
	return subscribe(t, g.subscriber(t, millrace.SubscriberConfig{BlockTime: 100 * time.Millisecond}), g.topic)
}

// requireNoPending waits until group has nothing pending on stream.
func requireNoPending(t *testing.T, c redis.UniversalClient, stream, group string) {
	t.Helper()
	require.Eventually(t, func() bool { return pendingCount(t, c, stream, group) == 0 },
		5*time.Second, 10*time.Millisecond, "%s still has entries pending in group %s", stream, group)
}

// awaitDeadLetters waits up to 15s for n entries in the dead-letter stream
// dlq and returns them decoded.
func awaitDeadLetters(t *testing.T, c redis.UniversalClient, dlq string, n int) []*message.Message {
	t.Helper()
	require.Eventually(t, func() bool { return xlen(t, c, dlq) == int64(n) }, 15*time.Second, 10*time.Millisecond,
		"%s does not hold %d dead letters", dlq, n)
	var out []*message.Message
	for _, m := range entries(t, c, dlq) {
		out = append(out, decode(t, m.Values))
	}
	return out
}

// usedMemory is used_memory from the INFO memory of c's server.
func usedMemory(t *testing.T, c redis.UniversalClient) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "memory").Result()
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}
