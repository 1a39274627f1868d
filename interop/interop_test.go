package interop_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/redistest"
)

// logger logs warnings and errors only.
var logger = watermill.NewSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

type env struct {
	srv    *redistest.Server
	client *redis.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := redistest.StartFromEnv(t)
	return &env{srv: srv, client: srv.Client(t)}
}

// ownClient is a client of its own for a watermill-redisstream publisher or
// subscriber: their Close closes the client they were given.
func (e *env) ownClient(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(e.srv.Options(t))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (e *env) rsPublisher(t *testing.T) *redisstream.Publisher {
	t.Helper()
	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: e.ownClient(t)}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

func (e *env) rsSubscriber(t *testing.T, group, consumer string) *redisstream.Subscriber {
	t.Helper()
	sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
		Client:                        e.ownClient(t),
		ConsumerGroup:                 group,
		Consumer:                      consumer,
		BlockTime:                     100 * time.Millisecond,
		DisableIndefiniteInitialBlock: true,
	}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { closeRS(sub) })
	return sub
}

// closeRS closes a watermill-redisstream subscriber and waits for its
// reader goroutine, which Close does not wait for: after the closed client
// fails its read, it sleeps 500ms before it sees that it is closing.
func closeRS(sub *redisstream.Subscriber) {
	_ = sub.Close()
	time.Sleep(700 * time.Millisecond)
}

func (e *env) mrPublisher(t *testing.T, cfg millrace.PublisherConfig) *millrace.Publisher {
	t.Helper()
	pub, err := millrace.NewPublisher(e.client, cfg, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

func mrConfig(group string) millrace.SubscriberConfig {
	return millrace.SubscriberConfig{
		ConsumerGroup: group,
		BlockTime:     100 * time.Millisecond,
		CloseTimeout:  300 * time.Millisecond,
	}
}

func (e *env) mrSubscriber(t *testing.T, cfg millrace.SubscriberConfig) *millrace.Subscriber {
	t.Helper()
	sub, err := millrace.NewSubscriber(e.client, cfg, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func subscribe(t *testing.T, sub message.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	return ch
}

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

func requireNoMessage(t *testing.T, ch <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case msg := <-ch:
		t.Fatalf("unexpected message %s %q", msg.UUID, msg.Payload)
	case <-time.After(d):
	}
}

func newTopic() string { return "interop-" + watermill.NewShortUUID() }

// testMessages covers what the wire format must carry: metadata, no
// metadata, an empty and a binary payload.
func testMessages() []*message.Message {
	withMD := message.NewMessage(watermill.NewUUID(), []byte(`{"order_id":1}`))
	withMD.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	withMD.Metadata.Set("unicode", "ünïcödé")
	withMD.Metadata.Set("empty", "")
	noMD := message.NewMessage(watermill.NewUUID(), []byte("no metadata"))
	empty := message.NewMessage(watermill.NewUUID(), nil)
	binary := message.NewMessage(watermill.NewUUID(), []byte("\x00\xff\xc0\n:binary"))
	binary.Metadata.Set("k", "v")
	return []*message.Message{withMD, noMD, empty, binary}
}

// requireSame compares what the sending side published with what the
// receiving side got, without the metadata Millrace adds on delivery.
func requireSame(t *testing.T, sent, got *message.Message) {
	t.Helper()
	assert.Equal(t, sent.UUID, got.UUID)
	assert.Equal(t, string(sent.Payload), string(got.Payload))
	md := message.Metadata{}
	for k, v := range got.Metadata {
		if k != millrace.MetadataEntryID && k != millrace.MetadataDeliveryCount {
			md[k] = v
		}
	}
	want := sent.Metadata
	if len(want) == 0 {
		want = message.Metadata{}
	}
	assert.Equal(t, want, md, "metadata of %s", sent.UUID)
}

func TestRedisstreamPublishes_MillraceConsumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	ch := subscribe(t, e.mrSubscriber(t, mrConfig("g")), topic)
	sent := testMessages()
	require.NoError(t, e.rsPublisher(t).Publish(topic, sent...))
	for _, want := range sent {
		got := receive(t, ch)
		requireSame(t, want, got)
		got.Ack()
	}
}

func TestMillracePublishes_RedisstreamConsumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, m := range []millrace.Marshaler{millrace.DefaultMarshaler{}} {
		topic := newTopic()
		ch := subscribe(t, e.rsSubscriber(t, "g", "rs-1"), topic)
		sent := testMessages()
		require.NoError(t, e.mrPublisher(t, millrace.PublisherConfig{Marshaler: m}).Publish(topic, sent...))
		for _, want := range sent {
			got := receive(t, ch)
			requireSame(t, want, got)
			got.Ack()
		}
	}
}

// Broadcast subscribers of both adapters read the same stream.
func TestBroadcast_BothWays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	// redisstream's fan-out reads from "$" until it gets its first entry, so
	// an entry added between two of its reads would be missed: it starts
	// after a marker entry instead.
	marker, err := e.client.XAdd(context.Background(), &redis.XAddArgs{Stream: topic, Values: []string{"marker", "1"}}).Result()
	require.NoError(t, err)
	rsSub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
		Client: e.ownClient(t), BlockTime: 100 * time.Millisecond, DisableIndefiniteInitialBlock: true,
		FanOutOldestId: marker,
	}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { closeRS(rsSub) })
	rsCh := subscribe(t, rsSub, topic)
	mrCh := subscribe(t, e.mrSubscriber(t, millrace.SubscriberConfig{BlockTime: 100 * time.Millisecond}), topic)

	fromRS := message.NewMessage(watermill.NewUUID(), []byte("from redisstream"))
	fromMR := message.NewMessage(watermill.NewUUID(), []byte("from millrace"))
	require.NoError(t, e.rsPublisher(t).Publish(topic, fromRS))
	require.NoError(t, e.mrPublisher(t, millrace.PublisherConfig{}).Publish(topic, fromMR))
	for _, ch := range []<-chan *message.Message{rsCh, mrCh} {
		for _, want := range []*message.Message{fromRS, fromMR} {
			got := receive(t, ch)
			requireSame(t, want, got)
			got.Ack()
		}
	}
}

// publishNumbered publishes n messages with payloads "0".."n-1" and returns
// their entry IDs in order.
func publishNumbered(t *testing.T, e *env, pub message.Publisher, topic string, n int) []string {
	t.Helper()
	for i := range n {
		require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))))
	}
	all, err := e.client.XRange(context.Background(), topic, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, all, n)
	ids := make([]string, n)
	for i, m := range all {
		ids[i] = m.ID
	}
	return ids
}

// pendingIDs lists the entries pending in group, with their consumer.
func pendingIDs(t *testing.T, e *env, topic, group string) map[string]string {
	t.Helper()
	p, err := e.client.XPendingExt(context.Background(), &redis.XPendingExtArgs{
		Stream: topic, Group: group, Start: "-", End: "+", Count: 1000,
	}).Result()
	require.NoError(t, err)
	out := map[string]string{}
	for _, x := range p {
		out[x.ID] = x.Consumer
	}
	return out
}

// collect receives until every payload of want arrived, acking each, and
// fails on a payload outside want or received twice.
func collect(t *testing.T, ch <-chan *message.Message, want []string) []*message.Message {
	t.Helper()
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	seen := map[string]bool{}
	var got []*message.Message
	for len(seen) < len(want) {
		msg := receive(t, ch)
		p := string(msg.Payload)
		require.True(t, wanted[p], "payload %q was acknowledged by the peer, or never published", p)
		require.False(t, seen[p], "payload %q delivered twice", p)
		seen[p] = true
		got = append(got, msg)
		msg.Ack()
	}
	return got
}

func numbers(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// watermill-redisstream creates the group, handles and acknowledges part of
// the stream and stops with some entries delivered but not acknowledged.
// Millrace continues the group: it never gets what was acknowledged, takes
// over the unacknowledged entries (after ClaimMinIdle), and reads the rest.
func TestGroupContinued_RedisstreamThenMillrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	const n, acked = 12, 4
	ids := publishNumbered(t, e, e.rsPublisher(t), topic, n)

	rs := e.rsSubscriber(t, "g", "rs-1")
	rsCh := subscribe(t, rs, topic)
	for i := range acked {
		msg := receive(t, rsCh)
		require.Equal(t, strconv.Itoa(i), string(msg.Payload))
		msg.Ack()
	}
	// redisstream acknowledges synchronously before it hands out the next
	// message; wait for that, then stop it with entries still pending.
	receive(t, rsCh)
	require.Eventually(t, func() bool {
		pending := pendingIDs(t, e, topic, "g")
		for _, id := range ids[:acked] {
			if _, ok := pending[id]; ok {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond)
	// Close does not wait for redisstream's reader goroutine, whose last
	// XREADGROUP may still deliver an entry; closeRS lets it end first.
	closeRS(rs)
	left := pendingIDs(t, e, topic, "g")
	require.NotEmpty(t, left, "redisstream left entries delivered but unacknowledged")
	for _, consumer := range left {
		require.Equal(t, "rs-1", consumer)
	}

	cfg := mrConfig("g")
	cfg.Consumer = "millrace-1"
	cfg.ClaimMinIdle = 200 * time.Millisecond
	ch := subscribe(t, e.mrSubscriber(t, cfg), topic)
	got := collect(t, ch, numbers(acked, n))
	requireNoMessage(t, ch, 500*time.Millisecond)
	reclaimed := 0
	for _, msg := range got {
		if msg.Metadata.Get(millrace.MetadataDeliveryCount) != "1" {
			reclaimed++
		}
	}
	assert.Equal(t, len(left), reclaimed, "the entries redisstream left pending were reclaimed, with Redis's delivery count")
	require.Eventually(t, func() bool { return len(pendingIDs(t, e, topic, "g")) == 0 }, 5*time.Second, 10*time.Millisecond)
}

// Millrace creates the group, reads ahead (Prefetch), acknowledges part of
// the stream and closes. watermill-redisstream continues the group: it
// never gets what was acknowledged, and takes over at once the entries
// Millrace read ahead, which Close released.
func TestGroupContinued_MillraceThenRedisstream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	const n, acked = 12, 4
	publishNumbered(t, e, e.mrPublisher(t, millrace.PublisherConfig{}), topic, n)

	cfg := mrConfig("g")
	cfg.Consumer = "millrace-1"
	mr, err := millrace.NewSubscriber(e.client, cfg, logger)
	require.NoError(t, err)
	ch := subscribe(t, mr, topic)
	for i := range acked {
		msg := receive(t, ch)
		require.Equal(t, strconv.Itoa(i), string(msg.Payload))
		msg.Ack()
	}
	receive(t, ch) // in a handler, never acknowledged
	require.NoError(t, mr.Close())
	left := pendingIDs(t, e, topic, "g")
	require.Len(t, left, n-acked, "Close flushed the acknowledgements; what was read ahead stays pending")

	rsCh := subscribe(t, e.rsSubscriber(t, "g", "rs-1"), topic)
	collect(t, rsCh, numbers(acked, n))
	requireNoMessage(t, rsCh, 500*time.Millisecond)
	require.Eventually(t, func() bool { return len(pendingIDs(t, e, topic, "g")) == 0 }, 5*time.Second, 10*time.Millisecond)
}

// Both adapters compete in one group: every entry is handled once.
func TestGroupShared_Concurrently(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	const n = 200
	rsCh := subscribe(t, e.rsSubscriber(t, "g", "rs-1"), topic)
	mrCh := subscribe(t, e.mrSubscriber(t, mrConfig("g")), topic)

	type got struct{ payload, by string }
	out := make(chan got, 2*n)
	for by, ch := range map[string]<-chan *message.Message{"redisstream": rsCh, "millrace": mrCh} {
		go func() {
			for msg := range ch {
				out <- got{string(msg.Payload), by}
				msg.Ack()
			}
		}()
	}
	rsPub, mrPub := e.rsPublisher(t), e.mrPublisher(t, millrace.PublisherConfig{})
	for i := range n {
		var pub message.Publisher = mrPub
		if i%2 == 0 {
			pub = rsPub
		}
		require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))))
	}
	seen := map[string]string{}
	timeout := time.After(20 * time.Second)
	for len(seen) < n {
		select {
		case g := <-out:
			prev, dup := seen[g.payload]
			require.False(t, dup, "payload %s handled by %s and %s", g.payload, prev, g.by)
			seen[g.payload] = g.by
		case <-timeout:
			t.Fatalf("handled %d of %d", len(seen), n)
		}
	}
	by := map[string]int{}
	for _, b := range seen {
		by[b]++
	}
	t.Logf("handled by: %v", by)
	assert.Len(t, by, 2, "both adapters took part")
}

// Millrace's delayed messages reach a redisstream consumer once something
// moves them: MoveDueDelayed of package admin, for topics without Millrace
// subscribers.
func TestDelayed_ForRedisstreamConsumers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	rsCh := subscribe(t, e.rsSubscriber(t, "g", "rs-1"), topic)
	msg := message.NewMessage(watermill.NewUUID(), []byte("later"))
	delay.Message(msg, delay.For(300*time.Millisecond))
	start := time.Now()
	require.NoError(t, e.mrPublisher(t, millrace.PublisherConfig{}).Publish(topic, msg))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := admin.New(e.client, admin.Options{})
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				_, _ = a.MoveDueDelayed(ctx, topic, 0)
			case <-ctx.Done():
				return
			}
		}
	}()
	got := receive(t, rsCh)
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	assert.Equal(t, msg.UUID, got.UUID)
	got.Ack()
}

// The FieldsMarshaler keeps the UUID and payload fields, so a redisstream
// consumer still gets those (not the metadata, which it looks for in the
// msgpack field only).
func TestFieldsMarshaler_ReadByRedisstream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	rsCh := subscribe(t, e.rsSubscriber(t, "g", "rs-1"), topic)
	msg := message.NewMessage(watermill.NewUUID(), []byte("fields"))
	msg.Metadata.Set("k", "v")
	require.NoError(t, e.mrPublisher(t, millrace.PublisherConfig{Marshaler: millrace.FieldsMarshaler{}}).Publish(topic, msg))
	got := receive(t, rsCh)
	assert.Equal(t, msg.UUID, got.UUID)
	assert.Equal(t, "fields", string(got.Payload))
	assert.Empty(t, got.Metadata.Get("k"))
	got.Ack()
}
