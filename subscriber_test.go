package millrace_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

func TestSubscribe_GroupExistsWhenSubscribeReturns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	require.Empty(t, groups(t, e.client, topic), "precondition: no stream yet")

	sub := e.subscriber(t, groupConfig("orders"))
	subscribe(t, sub, topic)

	g, ok := groupInfo(t, e.client, topic, "orders")
	require.True(t, ok, "group missing right after Subscribe returned")
	assert.Zero(t, g.Pending)

	// A second Subscribe to the existing group is fine (BUSYGROUP).
	other := e.subscriber(t, groupConfig("orders"))
	subscribe(t, other, topic)
	assert.Len(t, groups(t, e.client, topic), 1)
}

func TestSubscribeInitialize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("group", func(t *testing.T) {
		topic := newTopic()
		sub := e.subscriber(t, groupConfig("init"))
		require.NoError(t, sub.SubscribeInitialize(topic))
		_, ok := groupInfo(t, e.client, topic, "init")
		require.True(t, ok, "SubscribeInitialize must create the group")
		require.NoError(t, sub.SubscribeInitialize(topic), "a second call is fine")

		// Messages published between initialization and Subscribe are kept for the group.
		pub := e.publisher(t, millrace.PublisherConfig{})
		sent := publish(t, pub, topic, "kept")
		ch := subscribe(t, sub, topic)
		got := receive(t, ch)
		assert.Equal(t, sent[0].UUID, got.UUID)
		got.Ack()
	})
	t.Run("broadcast creates nothing", func(t *testing.T) {
		topic := newTopic()
		sub := e.subscriber(t, millrace.SubscriberConfig{BlockTime: 100 * time.Millisecond})
		require.NoError(t, sub.SubscribeInitialize(topic))
		n, err := e.client.Exists(context.Background(), topic).Result()
		require.NoError(t, err)
		assert.Zero(t, n)
	})
	t.Run("empty topic", func(t *testing.T) {
		sub := e.subscriber(t, groupConfig("init"))
		require.ErrorIs(t, sub.SubscribeInitialize(""), millrace.ErrEmptyTopic)
		_, err := sub.Subscribe(context.Background(), "")
		require.ErrorIs(t, err, millrace.ErrEmptyTopic)
	})
}

func TestSubscribe_NewGroupStartID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})

	cases := []struct {
		name  string
		start func(ids []string) string
		want  []string // payloads, in order
	}{
		{name: "default is oldest", start: func([]string) string { return "" }, want: []string{"old-1", "old-2", "new"}},
		{name: "oldest", start: func([]string) string { return millrace.StartOldest }, want: []string{"old-1", "old-2", "new"}},
		{name: "newest", start: func([]string) string { return millrace.StartNewest }, want: []string{"new"}},
		{name: "after an entry ID", start: func(ids []string) string { return ids[0] }, want: []string{"old-2", "new"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic := newTopic()
			publish(t, pub, topic, "old-1", "old-2")
			var ids []string
			for _, m := range entries(t, e.client, topic) {
				ids = append(ids, m.ID)
			}
			cfg := groupConfig("g")
			cfg.NewGroupStartID = tc.start(ids)
			sub := e.subscriber(t, cfg)
			ch := subscribe(t, sub, topic)
			publish(t, pub, topic, "new")
			for _, want := range tc.want {
				got := receive(t, ch)
				assert.Equal(t, want, string(got.Payload))
				got.Ack()
			}
			requireNoMessage(t, ch, 200*time.Millisecond)
		})
	}

	t.Run("does not move an existing group", func(t *testing.T) {
		topic := newTopic()
		publish(t, pub, topic, "old")
		oldest := groupConfig("g")
		oldest.NewGroupStartID = millrace.StartOldest
		require.NoError(t, e.subscriber(t, oldest).SubscribeInitialize(topic))
		newest := groupConfig("g")
		newest.NewGroupStartID = millrace.StartNewest
		ch := subscribe(t, e.subscriber(t, newest), topic)
		got := receive(t, ch)
		assert.Equal(t, "old", string(got.Payload))
		got.Ack()
	})
}

// Acks are batched; Close flushes them. AckInterval is an hour, so only
// Close can have sent the XACK.
func TestAck_CloseFlushesAcks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	cfg := groupConfig("g")
	cfg.AckInterval = time.Hour
	sub := e.subscriber(t, cfg)
	ch := subscribe(t, sub, topic)
	publish(t, pub, topic, "a", "b", "c")
	for range 3 {
		m := receive(t, ch)
		require.True(t, m.Ack())
	}
	t.Logf("pending before Close: %d", pendingCount(t, e.client, topic, "g"))

	require.NoError(t, sub.Close())
	assert.Zero(t, pendingCount(t, e.client, topic, "g"), "Close must flush the acknowledgements")
}

func TestAck_RemovesFromPEL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)
	publish(t, pub, topic, "a")
	m := receive(t, ch)
	id := m.Metadata.Get(millrace.MetadataEntryID)
	p, ok := pendingEntry(t, e.client, topic, "g", id)
	require.True(t, ok, "an entry in a handler is pending")
	assert.EqualValues(t, 1, p.RetryCount)
	assert.Equal(t, "1", m.Metadata.Get(millrace.MetadataDeliveryCount))

	m.Ack()
	require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") == 0 },
		5*time.Second, 10*time.Millisecond, "Ack never reached Redis")
}

func TestMessageContext_Cancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})

	for name, finish := range map[string]func(*testing.T, *millrace.Subscriber, *message.Message){
		"after Ack":   func(_ *testing.T, _ *millrace.Subscriber, m *message.Message) { m.Ack() },
		"after Nack":  func(_ *testing.T, _ *millrace.Subscriber, m *message.Message) { m.Nack() },
		"after Close": func(t *testing.T, s *millrace.Subscriber, _ *message.Message) { require.NoError(t, s.Close()) },
	} {
		t.Run(name, func(t *testing.T) {
			topic := newTopic()
			cfg := groupConfig("g")
			cfg.CloseTimeout = 100 * time.Millisecond
			sub := e.subscriber(t, cfg)
			ch := subscribe(t, sub, topic)
			publish(t, pub, topic, "x")
			m := receive(t, ch)
			require.NoError(t, m.Context().Err(), "a delivered message's context is live")
			finish(t, sub, m)
			requireDone(t, m.Context(), name)
		})
	}
}

func TestSubscribe_ContextCancelClosesChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})
	for name, cfg := range map[string]millrace.SubscriberConfig{
		"group":     groupConfig("g"),
		"broadcast": {BlockTime: 100 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			topic := newTopic()
			sub := e.subscriber(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch, err := sub.Subscribe(ctx, topic)
			require.NoError(t, err)
			// Another subscription of the same subscriber is not affected.
			otherTopic := newTopic()
			other := subscribe(t, sub, otherTopic)

			publish(t, pub, topic, "x")
			m := receive(t, ch)
			m.Ack()

			cancel()
			requireClosed(t, ch)
			requireDone(t, m.Context(), "message of a cancelled subscription")

			publish(t, pub, otherTopic, "y")
			got := receive(t, other)
			assert.Equal(t, "y", string(got.Payload))
			got.Ack()
		})
	}
}

func TestSubscriber_Close(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sub := e.subscriber(t, groupConfig("g"))
	topic := newTopic()
	ch1 := subscribe(t, sub, topic)
	ch2 := subscribe(t, sub, newTopic())

	require.NoError(t, sub.Close())
	requireClosedNow(t, ch1)
	requireClosedNow(t, ch2)
	require.NoError(t, sub.Close(), "Close is idempotent")

	_, err := sub.Subscribe(context.Background(), topic)
	require.ErrorIs(t, err, millrace.ErrSubscriberClosed)
	require.ErrorIs(t, sub.SubscribeInitialize(topic), millrace.ErrSubscriberClosed)

	// The client is borrowed: Close leaves it open.
	require.NoError(t, e.client.Ping(context.Background()).Err())
}

// A message held by a handler when Close times out stays pending, and is
// handed to the next subscriber of the group at once.
func TestSubscriber_CloseLeavesUnackedPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	cfg := groupConfig("g")
	cfg.CloseTimeout = 100 * time.Millisecond
	first := e.subscriber(t, cfg)
	ch := subscribe(t, first, topic)
	sent := publish(t, pub, topic, "unacked")
	m := receive(t, ch)

	start := time.Now()
	require.NoError(t, first.Close())
	assert.Less(t, time.Since(start), 5*time.Second, "Close is bounded by CloseTimeout")
	assert.EqualValues(t, 1, pendingCount(t, e.client, topic, "g"))
	m.Ack() // too late: the subscription is gone, the entry stays pending

	second := e.subscriber(t, groupConfig("g")) // ClaimMinIdle 30s: only the release makes this quick
	got := receive(t, subscribe(t, second, topic))
	assert.Equal(t, sent[0].UUID, got.UUID)
	got.Ack()
}

// A consumer restarted under the same name first gets back what it had not
// acknowledged, before new entries.
func TestSubscribe_RestartSameConsumerRedeliversOwnPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})

	t.Run("after a crash", func(t *testing.T) {
		topic := newTopic()
		pending := publish(t, pub, topic, "p1", "p2")
		// The previous run of worker-1 read both and died.
		require.Len(t, readAs(t, e.client, topic, "g", "worker-1", 10), 2)
		fresh := publish(t, pub, topic, "new")

		cfg := groupConfig("g")
		cfg.Consumer = "worker-1"
		ch := subscribe(t, e.subscriber(t, cfg), topic)
		for _, want := range []*message.Message{pending[0], pending[1], fresh[0]} {
			got := receive(t, ch)
			require.Equal(t, want.UUID, got.UUID, "own pending entries come first, in order")
			p, ok := pendingEntry(t, e.client, topic, "g", got.Metadata.Get(millrace.MetadataEntryID))
			require.True(t, ok)
			assert.Equal(t, "worker-1", p.Consumer)
			assert.Equal(t, p.RetryCount, mustAtoi(t, got.Metadata.Get(millrace.MetadataDeliveryCount)),
				"MetadataDeliveryCount is Redis's counter")
			got.Ack()
		}
		requireNoPending(t, e.client, topic, "g")
	})

	// The same after a graceful Close, which releases the unacknowledged
	// entries (marks them long idle) so that other consumers claim them at
	// once. Several rounds, because what can go wrong here is a race between
	// the restarted subscription's reader and its claimer.
	t.Run("after Close", func(t *testing.T) {
		topic := newTopic()
		cfg := groupConfig("g")
		cfg.Consumer = "worker-2"
		cfg.CloseTimeout = 100 * time.Millisecond
		sub := e.subscriber(t, cfg)
		ch := subscribe(t, sub, topic)
		for round := range 10 {
			pending := publish(t, pub, topic, "unacked-"+strconv.Itoa(round))
			got := receive(t, ch) // and never acked
			require.Equal(t, pending[0].UUID, got.UUID)
			require.NoError(t, sub.Close())
			fresh := publish(t, pub, topic, "new-"+strconv.Itoa(round))

			sub = e.subscriber(t, cfg)
			ch = subscribe(t, sub, topic)
			var order []string
			for range 2 {
				m := receive(t, ch)
				order = append(order, string(m.Payload)+" (delivery "+m.Metadata.Get(millrace.MetadataDeliveryCount)+")")
				m.Ack()
			}
			// Delivered once before, plus Redis's count of the restarted
			// reader's XREADGROUP of its own pending entries: 2.
			require.Equal(t, []string{"unacked-" + strconv.Itoa(round) + " (delivery 2)", "new-" + strconv.Itoa(round) + " (delivery 1)"}, order,
				"round %d: own pending entry first, delivered once, counted once more (UUIDs: pending %s, new %s)", round, pending[0].UUID, fresh[0].UUID)
			requireNoMessage(t, ch, 150*time.Millisecond)
		}
	})
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err, "not a number: %q", s)
	return n
}

// An entry written by redis-cli or another language is delivered with its
// fields as a JSON object and the entry ID in metadata.
func TestSubscribe_ForeignEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)
	id, err := e.client.XAdd(context.Background(), &redis.XAddArgs{
		Stream: topic, Values: []string{"user_id", "1001", "item", "iPhone 15"},
	}).Result()
	require.NoError(t, err)

	m := receive(t, ch)
	assert.JSONEq(t, `{"user_id":"1001","item":"iPhone 15"}`, string(m.Payload))
	assert.Equal(t, id, m.Metadata.Get(millrace.MetadataEntryID))
	assert.Equal(t, "true", m.Metadata.Get(millrace.MetadataForeign))
	assert.Equal(t, "1", m.Metadata.Get(millrace.MetadataDeliveryCount))
	assert.Equal(t, id, m.UUID, "a foreign entry's UUID is its entry ID")
	m.Ack()
}

// A malformed entry goes to the dead-letter stream, and the entries after it
// are still delivered.
func TestSubscribe_MalformedEntryDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)

	badID, err := e.client.XAdd(context.Background(), &redis.XAddArgs{
		Stream: topic, Values: []string{millrace.UUIDField, "bad-uuid", millrace.PayloadField, "p", millrace.MetadataField, "garbage"},
	}).Result()
	require.NoError(t, err)
	good := publish(t, pub, topic, "good")

	m := receive(t, ch)
	assert.Equal(t, good[0].UUID, m.UUID, "the malformed entry must not be delivered")
	m.Ack()

	dlq := millrace.DeadLetterTopic(topic)
	dead := awaitDeadLetters(t, e.client, dlq, 1)[0]
	assert.Contains(t, dead.Metadata.Get(middleware.ReasonForPoisonedKey), "malformed")
	assert.Equal(t, topic, dead.Metadata.Get(middleware.PoisonedTopicKey))
	assert.Equal(t, badID, dead.Metadata.Get(millrace.MetadataDeadLetterEntryID))
	assert.Equal(t, "g", dead.Metadata.Get(millrace.MetadataDeadLetterGroup))
	assert.Contains(t, string(dead.Payload), "garbage", "the undecodable entry's fields are kept")
	require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") == 0 }, 5*time.Second, 10*time.Millisecond,
		"the malformed entry is acknowledged once dead-lettered")
}

// Deleting the group or the whole stream under a live subscription: it
// recreates them and goes on delivering new messages.
func TestSubscribe_GroupOrStreamDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})
	for name, remove := range map[string]func(topic string) error{
		"XGROUP DESTROY": func(topic string) error { return e.client.XGroupDestroy(context.Background(), topic, "g").Err() },
		"DEL stream":     func(topic string) error { return e.client.Del(context.Background(), topic).Err() },
	} {
		t.Run(name, func(t *testing.T) {
			topic := newTopic()
			ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)
			publish(t, pub, topic, "before")
			receive(t, ch).Ack()
			requireNoPending(t, e.client, topic, "g")

			require.NoError(t, remove(topic))
			// An idle subscription finds out with the next entry.
			sent := publish(t, pub, topic, "after-1", "after-2")
			for _, want := range sent {
				got := receive(t, ch)
				assert.Equal(t, want.UUID, got.UUID)
				got.Ack()
			}
			requireNoMessage(t, ch, 200*time.Millisecond)
		})
	}
}

// A group deleted under a subscription that has read nothing yet, and so
// waits for news, is recreated where the stream ended when it last looked:
// the entry that brings the news is delivered, though the group starts at
// the newest entry.
func TestSubscribe_GroupDeletedBeforeFirstEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})
	topic := newTopic()
	cfg := groupConfig("g")
	cfg.NewGroupStartID = millrace.StartNewest
	ch := subscribe(t, e.subscriber(t, cfg), topic)
	_, ok := groupInfo(t, e.client, topic, "g")
	require.True(t, ok)
	require.NoError(t, e.client.XGroupDestroy(context.Background(), topic, "g").Err())
	sent := publish(t, pub, topic, "first", "second")
	for _, want := range sent {
		got := receive(t, ch)
		assert.Equal(t, want.UUID, got.UUID)
		got.Ack()
	}
}

func TestSubscribe_SurvivesRedisRestart(t *testing.T) {
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)
	publish(t, pub, topic, "before")
	receive(t, ch).Ack()
	publish(t, pub, topic, "held across the restart")
	held := receive(t, ch)
	require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") == 1 }, 5*time.Second, 10*time.Millisecond)

	e.srv.Restart(t)

	// An Ack given while Redis was away still reaches it.
	held.Ack()
	require.Eventually(t, func() bool {
		p, err := e.client.XPending(context.Background(), topic, "g").Result()
		return err == nil && p.Count == 0
	}, 10*time.Second, 10*time.Millisecond, "the Ack of a message held across the restart was lost")

	// The publisher may need a retry while its pool notices the restart;
	// that is the client's business. What must hold: once a message is in
	// the stream, the subscription delivers it.
	var sent *message.Message
	require.Eventually(t, func() bool {
		sent = message.NewMessage(watermill.NewUUID(), []byte("after"))
		return pub.Publish(topic, sent) == nil
	}, 10*time.Second, 50*time.Millisecond)
	got := receive(t, ch)
	assert.Equal(t, sent.UUID, got.UUID)
	got.Ack()
	require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") == 0 }, 10*time.Second, 10*time.Millisecond)
}

func TestSubscribe_RedisUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now

	client := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: 1})
	t.Cleanup(func() { client.Close() })

	for name, cfg := range map[string]millrace.SubscriberConfig{
		"group":     groupConfig("g"),
		"broadcast": {BlockTime: 100 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			sub, err := millrace.NewSubscriber(client, cfg, testLogger)
			require.NoError(t, err, "constructing does no I/O")
			t.Cleanup(func() { require.NoError(t, sub.Close()) })

			start := time.Now()
			ch, err := sub.Subscribe(ctxTimeout(t, 30*time.Second), "topic")
			require.Error(t, err)
			assert.Nil(t, ch)
			assert.Less(t, time.Since(start), 5*time.Second)
			assert.True(t, strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "dial"), err.Error())
		})
	}

	t.Run("publish", func(t *testing.T) {
		pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, pub.Close()) })
		start := time.Now()
		require.Error(t, pub.Publish("topic", message.NewMessage(watermill.NewUUID(), nil)))
		assert.Less(t, time.Since(start), 5*time.Second)
	})
}

// MaxInFlight messages are handed out before any is acknowledged.
func TestSubscribe_MaxInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	cfg := groupConfig("g")
	cfg.MaxInFlight = 3
	ch := subscribe(t, e.subscriber(t, cfg), topic)
	publish(t, e.publisher(t, millrace.PublisherConfig{}), topic, "1", "2", "3", "4")
	var inFlight []*message.Message
	for range 3 {
		inFlight = append(inFlight, receive(t, ch))
	}
	requireNoMessage(t, ch, 200*time.Millisecond) // the fourth waits for a slot
	inFlight[1].Ack()
	fourth := receive(t, ch)
	assert.Equal(t, "4", string(fourth.Payload))
	fourth.Ack()
	inFlight[0].Ack()
	inFlight[2].Ack()
}

// Redis refusing the commands (the topic's key is not a stream) is an error
// of Subscribe and Publish, not a hang or a panic.
func TestWrongTypeKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	require.NoError(t, e.client.Set(context.Background(), topic, "not a stream", 0).Err())

	err := e.publisher(t, millrace.PublisherConfig{}).Publish(topic, message.NewMessage(watermill.NewUUID(), nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WRONGTYPE")

	_, err = e.subscriber(t, groupConfig("g")).Subscribe(context.Background(), topic)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WRONGTYPE")
	require.Error(t, e.subscriber(t, groupConfig("g")).SubscribeInitialize(topic))
}
