package millrace_test

// Bad input: each case gets a clear error or a dead letter, loses nothing,
// and leaves the subscription running. Cases already covered elsewhere are
// not repeated here: nil messages and empty topics (publisher_test.go,
// subscriber_test.go), Publish/Subscribe after Close (TestPublisher_Close,
// TestSubscriber_Close), a single foreign or malformed entry
// (TestSubscribe_ForeignEntry, TestSubscribe_MalformedEntryDeadLettered),
// entries deleted while pending (TestClaim_DeletedPendingEntryCleared,
// TestNack_EntryDeletedWhileWaiting) and the marshaler's decoding errors
// (marshaler_test.go, with its fuzz target).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// captureLogger records the errors a component logs.
type captureLogger struct {
	mu   sync.Mutex
	errs []string
}

func (l *captureLogger) Error(msg string, err error, fields watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf("%s: %v %v", msg, err, fields))
}
func (l *captureLogger) Info(string, watermill.LogFields)                 {}
func (l *captureLogger) Debug(string, watermill.LogFields)                {}
func (l *captureLogger) Trace(string, watermill.LogFields)                {}
func (l *captureLogger) With(watermill.LogFields) watermill.LoggerAdapter { return l }

// logged reports whether an error containing every one of parts was logged.
func (l *captureLogger) logged(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(e, p)
		}
		if all {
			return true
		}
	}
	return false
}

// xadd adds a raw entry, as redis-cli or a program in another language would.
func xadd(t *testing.T, c redis.UniversalClient, stream string, values ...string) string {
	t.Helper()
	id, err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: values}).Result()
	require.NoError(t, err)
	return id
}

// A stream holding every kind of entry a foreign or broken producer can
// write, between good messages. In a group: the decodable ones are delivered
// in stream order, the undecodable ones are dead-lettered with the decode
// error (and the entry ID) as reason, and nothing stays pending. A broadcast
// subscriber on the same stream skips the undecodable ones and goes on.
func TestBadInput_MixedEntries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	group := subscribe(t, e.subscriber(t, groupConfig("g")), topic)
	broadcast := subscribe(t, e.subscriber(t, millrace.SubscriberConfig{BlockTime: 100 * time.Millisecond}), topic)

	manyFields := make([]string, 0, 2000)
	manyJSON := map[string]string{}
	for i := range 1000 {
		k, v := fmt.Sprintf("f%04d", i), fmt.Sprintf("v%d", i)
		manyFields = append(manyFields, k, v)
		manyJSON[k] = v
	}

	type want struct {
		uuid    string // "" = the entry ID
		payload string // exact, or JSON when json is set
		json    bool
		id      string
	}
	var wants []want
	var bad []string // entry IDs that must be dead-lettered
	good := func(p string) {
		m := publish(t, pub, topic, p)[0]
		wants = append(wants, want{uuid: m.UUID, payload: p})
	}
	raw := func(w want, values ...string) {
		w.id = xadd(t, e.client, topic, values...)
		wants = append(wants, w)
	}
	broken := func(values ...string) { bad = append(bad, xadd(t, e.client, topic, values...)) }
	U, P, M := millrace.UUIDField, millrace.PayloadField, millrace.MetadataField

	good("good-1")
	raw(want{payload: `{"user_id":"1001","item":"iPhone 15"}`, json: true}, "user_id", "1001", "item", "iPhone 15")
	broken(U, "bad-truncated", P, "p", M, "\x82\xa1k")                  // a map of 2 pairs, cut short
	broken(U, "bad-int-values", P, "p", M, "\x81\xa1k\x01")             // {"k": 1}: not a map of strings
	broken(U, "bad-huge-map", P, "p", M, "\xdf\xff\xff\xff\xff")        // claims 4 billion pairs
	broken(U, "bad-array", P, "p", M, "\x92\xa1a\xa1b")                 // ["a", "b"]
	broken(U, "bad-trailing", P, "p", M, "\x81\xa1k\xa1v\xa1x")         // {"k":"v"} and a stray byte
	broken(U, "bad-huge-string", P, "p", M, "\x81\xdb\xff\xff\xff\xff") // a key of 4 GB
	good("good-2")
	raw(want{uuid: "only-uuid", payload: ""}, U, "only-uuid")
	raw(want{payload: "empty uuid"}, U, "", P, "empty uuid", M, "\xc0")
	raw(want{payload: `{"payload":"p","metadata":"garbage"}`, json: true}, P, "p", M, "garbage")
	raw(want{payload: `{"\ufffd\ufffd":"\u0000\u0001"}`, json: true}, "\xff\xfe", "\x00\x01")
	raw(want{payload: mustJSON(t, manyJSON), json: true}, manyFields...)
	good("good-3")

	for _, w := range wants {
		m := receive(t, group)
		if w.id != "" {
			assert.Equal(t, w.id, m.Metadata.Get(millrace.MetadataEntryID))
		}
		if w.uuid == "" {
			assert.Equal(t, m.Metadata.Get(millrace.MetadataEntryID), m.UUID, "no UUID: the entry ID stands in")
		} else {
			assert.Equal(t, w.uuid, m.UUID)
		}
		if w.json {
			assert.JSONEq(t, w.payload, string(m.Payload))
			assert.Equal(t, "true", m.Metadata.Get(millrace.MetadataForeign))
		} else {
			assert.Equal(t, w.payload, string(m.Payload))
		}
		m.Ack()

		b := receive(t, broadcast)
		assert.Equal(t, m.UUID, b.UUID, "broadcast: same entries in the same order")
		b.Ack()
	}
	requireNoMessage(t, group, 200*time.Millisecond)
	requireNoMessage(t, broadcast, 100*time.Millisecond)

	dlq := millrace.DeadLetterTopic(topic)
	require.Eventually(t, func() bool { return xlen(t, e.client, dlq) == int64(len(bad)) }, 5*time.Second, 10*time.Millisecond)
	for i, d := range entries(t, e.client, dlq) {
		dead := decode(t, d.Values)
		reason := dead.Metadata.Get(middleware.ReasonForPoisonedKey)
		assert.Equal(t, bad[i], dead.Metadata.Get(millrace.MetadataDeadLetterEntryID))
		assert.Contains(t, reason, bad[i], "the reason names the entry")
		assert.Contains(t, reason, "metadata", "the reason is the decode error")
		t.Logf("dead-letter reason: %s", reason)
	}
	requireNoPending(t, e.client, topic, "g")

	// Both subscriptions go on.
	after := publish(t, pub, topic, "after")[0]
	for _, ch := range []<-chan *message.Message{group, broadcast} {
		m := receive(t, ch)
		assert.Equal(t, after.UUID, m.UUID)
		m.Ack()
	}
}

func mustJSON(t *testing.T, v map[string]string) string {
	t.Helper()
	m, err := millrace.DefaultMarshaler{}.Unmarshal(func() map[string]interface{} {
		out := make(map[string]interface{}, len(v))
		for k, x := range v {
			out[k] = x
		}
		return out
	}())
	require.NoError(t, err)
	return string(m.Payload)
}

// An entry deleted while pending at a consumer that restarts, with
// MaxDeliveries set: the hole is cleared from the PEL, neither delivered nor
// dead-lettered as an empty message; its neighbour is delivered.
func TestBadInput_DeletedWhilePendingNotDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	sent := publish(t, pub, topic, "deleted", "kept")
	read := readAs(t, e.client, topic, "g", "worker-1", 10)
	require.Len(t, read, 2)
	require.NoError(t, e.client.XDel(context.Background(), topic, read[0].ID).Err())

	cfg := groupConfig("g")
	cfg.Consumer = "worker-1"
	cfg.MaxDeliveries = 2
	ch := subscribe(t, e.subscriber(t, cfg), topic)
	m := receive(t, ch)
	assert.Equal(t, sent[1].UUID, m.UUID)
	m.Ack()
	requireNoPending(t, e.client, topic, "g")
	requireNoMessage(t, ch, 200*time.Millisecond)
	assert.Zero(t, xlen(t, e.client, millrace.DeadLetterTopic(topic)), "a deleted entry is not a dead letter")
}

// A 10 MB payload (random bytes, every byte value) with metadata makes the
// round trip intact, to a group, to a broadcast subscriber and into the
// dead-letter stream; the messages after it still arrive.
func TestBadInput_LargePayload(t *testing.T) {
	t.Parallel()
	fx := newGroupTopic(t, func(cfg *millrace.SubscriberConfig) {
		cfg.MaxDeliveries = 1
		cfg.NackBackoff = 10 * time.Millisecond
	})
	e, topic, pub, group := fx.env, fx.topic, fx.pub, fx.ch
	broadcast := fx.broadcast(t)

	payload := make([]byte, 10<<20)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = rng.Read(payload)
	big := message.NewMessage(watermill.NewUUID(), payload)
	big.Metadata.Set("big-value", strings.Repeat("m", 1<<20))
	big.Metadata.Set("k", "v")
	start := time.Now()
	require.NoError(t, pub.Publish(topic, big))
	published := time.Since(start)
	small := publish(t, pub, topic, "after")[0]

	check := func(m *message.Message) {
		t.Helper()
		require.Equal(t, big.UUID, m.UUID)
		require.Len(t, m.Payload, len(payload))
		require.True(t, string(payload) == string(m.Payload), "payload changed on the way")
		assert.Equal(t, big.Metadata.Get("big-value"), m.Metadata.Get("big-value"))
		assert.Equal(t, "v", m.Metadata.Get("k"))
	}
	m := receive(t, group)
	received := time.Since(start)
	check(m)
	m.Nack() // MaxDeliveries 1: dead-lettered at the next delivery
	b := receive(t, broadcast)
	check(b)
	b.Ack()
	b = receive(t, broadcast)
	assert.Equal(t, small.UUID, b.UUID)
	b.Ack()
	next := receive(t, group)
	assert.Equal(t, small.UUID, next.UUID)
	next.Ack()

	dlq := millrace.DeadLetterTopic(topic)
	dead := awaitDeadLetters(t, e.client, dlq, 1)[0]
	assert.Equal(t, big.UUID, dead.UUID)
	assert.True(t, string(payload) == string(dead.Payload), "dead-lettered payload changed")
	requireNoPending(t, e.client, topic, "g")
	t.Logf("10 MB payload: Publish took %s, first delivery after %s", published.Round(time.Millisecond), received.Round(time.Millisecond))
}

// Topic names are stream keys used as given: spaces, control characters,
// unicode, braces (hash tags or not), colons, Redis ID syntax and a long
// name all make the round trip, in a group and in broadcast, and their
// dead letters land in DeadLetterTopic(topic).
func TestBadInput_OddTopicNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})
	names := []string{
		"with space", " leading and trailing ", "tab\tnew\nline", "nul\x00byte",
		"ünïcödé-主题-🚀", "\xff\xfe not utf-8",
		"{braces}", "a{b}c", "{}", "}{", "{", "}", "a{}b", "{a}{b}",
		"colon:a:b", ":", "::",
		"$", ">", "*", "+", "-", "0", "0-0", "1700000000000-0", "?[a-z]*",
		strings.Repeat("long-", 400),
	}
	for _, topic := range names {
		t.Run(fmt.Sprintf("%q", topic), func(t *testing.T) {
			t.Parallel()
			cfg := groupConfig("g")
			cfg.MaxDeliveries = 1
			cfg.NackBackoff = 10 * time.Millisecond
			sub := e.subscriber(t, cfg)
			require.NoError(t, sub.SubscribeInitialize(topic))
			group := subscribe(t, sub, topic)
			broadcast := subscribe(t, e.subscriber(t, millrace.SubscriberConfig{BlockTime: 100 * time.Millisecond}), topic)

			sent := publish(t, pub, topic, "ok", "poison")
			n, err := e.client.Exists(context.Background(), topic).Result()
			require.NoError(t, err)
			require.EqualValues(t, 1, n, "the stream key is the topic name")
			assert.EqualValues(t, 2, xlen(t, e.client, topic))

			ok := receive(t, group)
			assert.Equal(t, sent[0].UUID, ok.UUID)
			ok.Ack()
			poison := receive(t, group)
			assert.Equal(t, sent[1].UUID, poison.UUID)
			poison.Nack()
			for _, want := range sent {
				b := receive(t, broadcast)
				assert.Equal(t, want.UUID, b.UUID)
				b.Ack()
			}

			dlq := millrace.DeadLetterTopic(topic)
			require.Eventually(t, func() bool { return xlen(t, e.client, dlq) == 1 }, 5*time.Second, 10*time.Millisecond,
				"dead letter not in %q", dlq)
			dead := decode(t, entries(t, e.client, dlq)[0].Values)
			assert.Equal(t, sent[1].UUID, dead.UUID)
			assert.Equal(t, topic, dead.Metadata.Get(middleware.PoisonedTopicKey))
			requireNoPending(t, e.client, topic, "g")
		})
	}
}

// Metadata is one msgpack field, so metadata keys named like the entry's
// own fields, or like Watermill's and Millrace's keys, cannot collide with
// anything: they round-trip with the DefaultMarshaler, in a group, in
// broadcast and into the dead-letter stream. Only the keys the subscriber
// sets on delivery (entry ID, delivery count) are overwritten with the real
// values, so a publisher cannot forge them.
func TestBadInput_ReservedMetadataKeys(t *testing.T) {
	t.Parallel()
	fx := newGroupTopic(t, func(cfg *millrace.SubscriberConfig) {
		cfg.MaxDeliveries = 1
		cfg.NackBackoff = 10 * time.Millisecond
	})
	e, topic, pub, group := fx.env, fx.topic, fx.pub, fx.ch
	broadcast := fx.broadcast(t)

	md := message.Metadata{
		millrace.UUIDField:     "not-the-uuid",
		millrace.PayloadField:  "not-the-payload",
		millrace.MetadataField: "\x81\xa1k\xa1v", // msgpack-looking bytes as a value
		"":                     "empty key",
		"empty value":          "",
		"\x00\xff":             "\xc0\xc1\xff binary value",
		"ünïcödé 🚀":            "ü",
		"name":                 "order_created",
		"reason_poisoned":      "set by the publisher",
	}
	forged := message.Metadata{
		millrace.MetadataEntryID:       "0-1",
		millrace.MetadataDeliveryCount: "99",
	}
	msg := message.NewMessage(watermill.NewUUID(), []byte("the payload"))
	for k, v := range md {
		msg.Metadata.Set(k, v)
	}
	for k, v := range forged {
		msg.Metadata.Set(k, v)
	}
	require.NoError(t, pub.Publish(topic, msg))
	entry := entries(t, e.client, topic)[0]
	assert.Len(t, entry.Values, 3, "metadata keys never become entry fields")

	check := func(m *message.Message, what string) {
		t.Helper()
		assert.Equal(t, msg.UUID, m.UUID, what)
		assert.Equal(t, "the payload", string(m.Payload), what)
		for k, v := range md {
			assert.Equal(t, v, m.Metadata.Get(k), "%s: metadata %q", what, k)
		}
		assert.Equal(t, entry.ID, m.Metadata.Get(millrace.MetadataEntryID), "%s: the real entry ID", what)
		assert.Equal(t, "1", m.Metadata.Get(millrace.MetadataDeliveryCount), "%s: the real delivery count", what)
	}
	g := receive(t, group)
	check(g, "group")
	b := receive(t, broadcast)
	check(b, "broadcast")
	b.Ack()
	g.Nack()

	dlq := millrace.DeadLetterTopic(topic)
	dead := awaitDeadLetters(t, e.client, dlq, 1)[0]
	assert.Equal(t, msg.UUID, dead.UUID)
	for k, v := range md {
		if k == middleware.ReasonForPoisonedKey {
			assert.Contains(t, dead.Metadata.Get(k), "MaxDeliveries", "the dead-letter reason replaces the publisher's")
			continue
		}
		assert.Equal(t, v, dead.Metadata.Get(k), "dead letter: metadata %q", k)
	}
}

// Redis unreachable when the application starts, with a client built with
// go-redis defaults: Publish, Subscribe and SubscribeInitialize fail within
// a bounded time with an error that says what happened, and the same
// Publisher and Subscriber work once Redis is reachable.
func TestBadInput_RedisUnreachableAtStart(t *testing.T) {
	t.Parallel()
	const bound = 10 * time.Second
	msg := func() *message.Message { return message.NewMessage(watermill.NewUUID(), []byte("x")) }

	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		client := redis.NewClient(&redis.Options{Addr: addr}) // go-redis defaults
		t.Cleanup(func() { client.Close() })

		pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { pub.Close() })
		sub, err := millrace.NewSubscriber(client, groupConfig("g"), testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { sub.Close() })

		for name, call := range map[string]func() error{
			"Publish":             func() error { return pub.Publish("topic", msg()) },
			"Subscribe":           func() error { _, err := sub.Subscribe(context.Background(), "topic"); return err },
			"SubscribeInitialize": func() error { return sub.SubscribeInitialize("topic") },
		} {
			start := time.Now()
			err := call()
			took := time.Since(start)
			require.Error(t, err, name)
			assert.Less(t, took, bound, name)
			assert.Contains(t, err.Error(), "connection refused", name)
			t.Logf("closed port: %s failed after %s: %v", name, took.Round(time.Millisecond), err)
		}
	})

	t.Run("refused then reachable", func(t *testing.T) {
		t.Parallel()
		srv := redistest.StartFromEnv(t)
		proxy := startFaultProxy(t, srv.Addr())
		proxy.setMode(proxyReject)
		o := srv.Options(t)
		o.Addr = proxy.Addr()
		client := redis.NewClient(o)
		t.Cleanup(func() { client.Close() })
		pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { pub.Close() })
		sub, err := millrace.NewSubscriber(client, groupConfig("g"), testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { sub.Close() })
		topic := newTopic()

		start := time.Now()
		require.Error(t, pub.Publish(topic, msg()))
		_, err = sub.Subscribe(context.Background(), topic)
		require.Error(t, err)
		assert.Less(t, time.Since(start), bound)
		t.Logf("connection closed by peer: Publish and Subscribe failed after %s: %v", time.Since(start).Round(time.Millisecond), err)

		proxy.setMode(proxyForward)
		ch, err := sub.Subscribe(context.Background(), topic)
		require.NoError(t, err, "the same Subscriber works once Redis is reachable")
		sent := msg()
		require.NoError(t, pub.Publish(topic, sent), "the same Publisher works once Redis is reachable")
		got := receive(t, ch)
		assert.Equal(t, sent.UUID, got.UUID)
		got.Ack()
	})

	// A server that accepts connections and never answers (hung, or a
	// network path that drops packets), client with go-redis defaults and
	// no deadline anywhere: the client's timeouts still bound the wait.
	t.Run("no answer, go-redis defaults", func(t *testing.T) {
		t.Parallel()
		proxy := startFaultProxy(t, "127.0.0.1:1")
		proxy.setMode(proxyBlackhole)
		client := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
		t.Cleanup(func() { client.Close() })
		pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { pub.Close() })
		sub, err := millrace.NewSubscriber(client, groupConfig("g"), testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { sub.Close() })

		calls := map[string]func() error{
			"Publish":   func() error { return pub.Publish("topic", msg()) },
			"Subscribe": func() error { _, err := sub.Subscribe(context.Background(), "topic"); return err },
		}
		type result struct {
			name string
			took time.Duration
			err  error
		}
		results := make(chan result, len(calls))
		for name, call := range calls {
			go func() {
				start := time.Now()
				err := call()
				results <- result{name, time.Since(start), err}
			}()
		}
		for range calls {
			select {
			case r := <-results:
				require.Error(t, r.err, r.name)
				assert.Less(t, r.took, bound, r.name)
				t.Logf("no answer: %s failed after %s: %v", r.name, r.took.Round(time.Millisecond), r.err)
			case <-time.After(2 * bound):
				t.Fatalf("a call to a server that never answers did not return within %s", 2*bound)
			}
		}
	})

	// The same with the caller's context: its deadline bounds the wait.
	t.Run("no answer, context deadline", func(t *testing.T) {
		t.Parallel()
		proxy := startFaultProxy(t, "127.0.0.1:1")
		proxy.setMode(proxyBlackhole)
		client := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { client.Close() })
		pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { pub.Close() })
		sub, err := millrace.NewSubscriber(client, groupConfig("g"), testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { sub.Close() })

		const deadline = time.Second
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		_, err = sub.Subscribe(ctx, "topic")
		took := time.Since(start)
		require.Error(t, err)
		assert.Less(t, took, deadline+2*time.Second)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		t.Logf("no answer: Subscribe with a %s deadline failed after %s: %v", deadline, took.Round(time.Millisecond), err)

		m := msg()
		ctx2, cancel2 := context.WithTimeout(context.Background(), deadline)
		defer cancel2()
		m.SetContext(ctx2)
		start = time.Now()
		err = pub.Publish("topic", m)
		took = time.Since(start)
		require.Error(t, err)
		assert.Less(t, took, deadline+2*time.Second)
		t.Logf("no answer: Publish with a %s message deadline failed after %s: %v", deadline, took.Round(time.Millisecond), err)
	})
}

// ACL: a user with no rights but PING gets errors that say NOPERM from
// Publish, Subscribe and SubscribeInitialize (acl_test.go checks every rule
// of the documented minimal rule sets one by one). And a right revoked under
// a running subscription loses nothing: with XACK refused, the
// acknowledgement is logged and retried, the entry stays pending, and it
// goes through once the right is back, while the subscription goes on.
func TestBadInput_ACL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{}) // its own server: the test changes its users
	admin := srv.Client(t)
	ctx := context.Background()
	setUser := func(t *testing.T, name string, rules ...string) *redis.Client {
		t.Helper()
		args := []interface{}{"acl", "setuser", name, "reset", "on", ">pw"}
		for _, r := range rules {
			args = append(args, r)
		}
		require.NoError(t, admin.Do(ctx, args...).Err())
		o := srv.Options(t)
		o.Username, o.Password = name, "pw"
		c := redis.NewClient(o)
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("ping only", func(t *testing.T) {
		client := setUser(t, "ping-only", "+ping")
		topic := newTopic()
		pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { pub.Close() })
		err = pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x")))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "NOPERM", "Publish")
		t.Logf("Publish: %v", err)
		for name, cfg := range map[string]millrace.SubscriberConfig{
			"group":     groupConfig("g"),
			"broadcast": {BlockTime: 100 * time.Millisecond},
		} {
			sub, err := millrace.NewSubscriber(client, cfg, testLogger)
			require.NoError(t, err)
			t.Cleanup(func() { sub.Close() })
			_, err = sub.Subscribe(ctx, topic)
			require.Error(t, err, name)
			assert.Contains(t, err.Error(), "NOPERM", "Subscribe, %s", name)
			t.Logf("Subscribe, %s: %v", name, err)
			if cfg.ConsumerGroup != "" {
				err = sub.SubscribeInitialize(topic)
				require.Error(t, err)
				assert.Contains(t, err.Error(), "NOPERM", "SubscribeInitialize")
			}
		}
	})

	t.Run("XACK revoked while subscribed", func(t *testing.T) {
		client := setUser(t, "revoked", "~*", "+@stream", "+multi", "+exec")
		topic := newTopic()
		log := &captureLogger{}
		sub, err := millrace.NewSubscriber(client, groupConfig("g"), log)
		require.NoError(t, err)
		t.Cleanup(func() { sub.Close() })
		ch, err := sub.Subscribe(ctx, topic)
		require.NoError(t, err)
		pub, err := millrace.NewPublisher(admin, millrace.PublisherConfig{}, testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { pub.Close() })

		require.NoError(t, admin.Do(ctx, "acl", "setuser", "revoked", "-xack").Err())
		sent := publish(t, pub, topic, "ack denied")
		m := receive(t, ch)
		assert.Equal(t, sent[0].UUID, m.UUID)
		m.Ack()
		require.Eventually(t, func() bool { return log.logged("NOPERM") }, 5*time.Second, 10*time.Millisecond, "the failed XACK is not logged")
		assert.EqualValues(t, 1, pendingCount(t, admin, topic, "g"), "the entry stays pending while XACK is refused")

		require.NoError(t, admin.Do(ctx, "acl", "setuser", "revoked", "+xack").Err())
		require.Eventually(t, func() bool { return pendingCount(t, admin, topic, "g") == 0 }, 15*time.Second, 10*time.Millisecond,
			"the acknowledgement is not retried once the right is back")
		next := publish(t, pub, topic, "after")
		got := receive(t, ch)
		assert.Equal(t, next[0].UUID, got.UUID, "the subscription goes on")
		got.Ack()
	})
}

// Keys of the wrong type where Millrace expects streams: the topic key
// holding a string gives Publish and Subscribe a WRONGTYPE error; a
// dead-letter key holding a string makes dead-lettering fail, and the entry
// stays pending (nothing lost) while the subscription delivers the others,
// until the key is fixed.
func TestBadInput_WrongTypeKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	pub := e.publisher(t, millrace.PublisherConfig{})

	t.Run("topic is a string", func(t *testing.T) {
		topic := newTopic()
		require.NoError(t, e.client.Set(ctx, topic, "not a stream", 0).Err())
		err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), nil))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "WRONGTYPE")
		for name, cfg := range map[string]millrace.SubscriberConfig{
			"group":     groupConfig("g"),
			"broadcast": {BlockTime: 100 * time.Millisecond},
		} {
			_, err := e.subscriber(t, cfg).Subscribe(ctx, topic)
			require.Error(t, err, name)
			assert.Contains(t, err.Error(), "WRONGTYPE", name)
		}
	})

	t.Run("dead-letter key is a string", func(t *testing.T) {
		topic := newTopic()
		dlq := millrace.DeadLetterTopic(topic)
		require.NoError(t, e.client.Set(ctx, dlq, "not a stream", 0).Err())
		log := &captureLogger{}
		cfg := groupConfig("g")
		cfg.MaxDeliveries = 1
		cfg.NackBackoff = 10 * time.Millisecond
		sub, err := millrace.NewSubscriber(e.client, cfg, log)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sub.Close()) })
		ch := subscribe(t, sub, topic)

		sent := publish(t, pub, topic, "poison", "good")
		p := receive(t, ch)
		require.Equal(t, sent[0].UUID, p.UUID)
		p.Nack()
		g := receive(t, ch)
		assert.Equal(t, sent[1].UUID, g.UUID, "the others go on")
		g.Ack()
		require.Eventually(t, func() bool { return log.logged("WRONGTYPE") }, 5*time.Second, 10*time.Millisecond)
		// Dead-lettering failed: the entry must still be pending, or it is lost.
		time.Sleep(200 * time.Millisecond)
		require.EqualValues(t, 1, pendingCount(t, e.client, topic, "g"),
			"the entry was acknowledged although adding it to the dead-letter stream failed: it is in neither stream")

		require.NoError(t, e.client.Del(ctx, dlq).Err())
		require.Eventually(t, func() bool { return xlen(t, e.client, dlq) == 1 }, 15*time.Second, 10*time.Millisecond,
			"dead-lettering not retried once the key is fixed")
		requireNoPending(t, e.client, topic, "g")
		assert.Equal(t, sent[0].UUID, decode(t, entries(t, e.client, dlq)[0].Values).UUID)
		requireNoMessage(t, ch, 200*time.Millisecond)
	})
}
