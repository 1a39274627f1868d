package millrace_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/components/requeuer"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// delayedCount is ZCARD of topic's delayed set.
func delayedCount(t *testing.T, c redis.UniversalClient, topic string) int64 {
	t.Helper()
	n, err := c.ZCard(context.Background(), millrace.DelayedKey(topic)).Result()
	require.NoError(t, err)
	return n
}

// delayedMessage is a new message delayed by d from now, and the earliest
// time it may be delivered.
func delayedMessage(payload string, d time.Duration) (*message.Message, time.Time) {
	msg := message.NewMessage(watermill.NewUUID(), []byte(payload))
	notBefore := time.Now().Add(d)
	delay.Message(msg, delay.For(d))
	return msg, notBefore
}

func TestDelay_NotDeliveredBeforeDue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})

	// One call mixes a delayed message with immediate ones.
	later, notBefore := delayedMessage("later", 1200*time.Millisecond)
	now1 := message.NewMessage(watermill.NewUUID(), []byte("now-1"))
	now2 := message.NewMessage(watermill.NewUUID(), []byte("now-2"))
	require.NoError(t, pub.Publish(topic, now1, later, now2))

	assert.EqualValues(t, 1, delayedCount(t, e.client, topic), "the delayed message waits in the delayed set")
	assert.EqualValues(t, 2, xlen(t, e.client, topic), "only the immediate messages are in the stream")

	// Subscribing after the publish, the mover sees the delayed message on
	// its first look and wakes at its due time. (A message delayed into an
	// empty set while a subscription is already idle waits for the mover's
	// next idle poll, up to 3 s, as the README says.)
	ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)

	for _, want := range []*message.Message{now1, now2} {
		got := receive(t, ch)
		assert.Equal(t, want.UUID, got.UUID)
		got.Ack()
	}
	got := receive(t, ch)
	received := time.Now()
	assert.Equal(t, later.UUID, got.UUID)
	assert.Equal(t, "later", string(got.Payload))
	assert.False(t, received.Before(notBefore), "delivered %s early", notBefore.Sub(received))
	assert.Less(t, received.Sub(notBefore), 2*time.Second, "delivered far too late")
	t.Logf("delivered %s after its due time", received.Sub(notBefore))
	assert.Equal(t, "1.2s", got.Metadata.Get(delay.DelayedForKey))
	until, err := time.Parse(time.RFC3339, got.Metadata.Get(delay.DelayedUntilKey))
	require.NoError(t, err)
	assert.False(t, received.Before(until))
	got.Ack()

	assert.Zero(t, delayedCount(t, e.client, topic))
	requireNoMessage(t, ch, 300*time.Millisecond)
}

// Watermill writes the due time with whole seconds; a sub-second delay must
// neither vanish nor end early.
func TestDelay_SubSecondDelays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)

	for _, d := range []time.Duration{50 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond} {
		msg, notBefore := delayedMessage("sub-second", d)
		require.NoError(t, pub.Publish(topic, msg))
		got := receive(t, ch)
		received := time.Now()
		assert.Equal(t, msg.UUID, got.UUID)
		assert.False(t, received.Before(notBefore), "%s: delivered %s early", d, notBefore.Sub(received))
		got.Ack()
	}
}

func TestDelay_PastOrZeroDelayIsImmediate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})

	past := message.NewMessage(watermill.NewUUID(), nil)
	delay.Message(past, delay.Until(time.Now().Add(-time.Hour)))
	zero := message.NewMessage(watermill.NewUUID(), nil)
	delay.Message(zero, delay.For(0))
	require.NoError(t, pub.Publish(topic, past, zero))
	assert.EqualValues(t, 2, xlen(t, e.client, topic))
	assert.Zero(t, delayedCount(t, e.client, topic))
}

func TestDelay_InvalidMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	ok := message.NewMessage(watermill.NewUUID(), nil)
	bad := message.NewMessage(watermill.NewUUID(), nil)
	bad.Metadata.Set(delay.DelayedUntilKey, "tomorrow")
	err := pub.Publish(topic, ok, bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), delay.DelayedUntilKey)
	assert.Zero(t, xlen(t, e.client, topic), "nothing of a failed call is sent")
}

func TestDelay_DelayedPublisherAndContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub, err := delay.NewPublisher(e.publisher(t, millrace.PublisherConfig{}), delay.PublisherConfig{
		DefaultDelayGenerator: func(delay.DefaultDelayGeneratorParams) (delay.Delay, error) {
			return delay.For(400 * time.Millisecond), nil
		},
	})
	require.NoError(t, err)
	ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)

	byDefault := message.NewMessage(watermill.NewUUID(), []byte("default"))
	start := time.Now()
	require.NoError(t, pub.Publish(topic, byDefault))
	byContext := message.NewMessage(watermill.NewUUID(), []byte("context"))
	byContext.SetContext(delay.WithContext(context.Background(), delay.For(800*time.Millisecond)))
	require.NoError(t, pub.Publish(topic, byContext))
	assert.EqualValues(t, 2, delayedCount(t, e.client, topic))

	first := receive(t, ch)
	assert.Equal(t, byDefault.UUID, first.UUID)
	assert.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond)
	first.Ack()
	second := receive(t, ch)
	assert.Equal(t, byContext.UUID, second.UUID)
	assert.GreaterOrEqual(t, time.Since(start), 800*time.Millisecond)
	second.Ack()
}

// A delayed message survives a restart of Redis and of every subscriber
// between Publish and its due time, and is delivered once.
func TestDelay_SurvivesRedisAndSubscriberRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if e.srv.RestartCommand() == nil {
		t.Skip("REDIS_URL points at a server the tests cannot restart")
	}
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})

	first, err := millrace.NewSubscriber(e.client, groupConfig("g"), testLogger)
	require.NoError(t, err)
	subscribe(t, first, topic)

	msg, notBefore := delayedMessage("survivor", 2500*time.Millisecond)
	require.NoError(t, pub.Publish(topic, msg))
	require.NoError(t, first.Close())

	e.srv.Restart(t)
	require.EqualValues(t, 1, delayedCount(t, e.client, topic), "the delayed set is persisted")

	ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)
	got := receive(t, ch)
	received := time.Now()
	assert.Equal(t, msg.UUID, got.UUID)
	assert.Equal(t, "survivor", string(got.Payload))
	assert.False(t, received.Before(notBefore), "delivered %s early", notBefore.Sub(received))
	got.Ack()
	requireNoMessage(t, ch, 500*time.Millisecond)
	assert.Zero(t, delayedCount(t, e.client, topic))
	assert.EqualValues(t, 1, xlen(t, e.client, topic))
}

// Many subscribers move the same delayed set; every message reaches the
// group exactly once and none early.
func TestDelay_ManyMoversNoDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})

	const n = 300
	type received struct {
		at   time.Time
		uuid string
	}
	got := make(chan received, 2*n)
	for range 3 {
		cfg := groupConfig("g")
		cfg.MaxInFlight = 4
		ch := subscribe(t, e.subscriber(t, cfg), topic)
		go func() {
			for msg := range ch {
				got <- received{time.Now(), msg.UUID}
				msg.Ack()
			}
		}()
	}
	// Broadcast subscribers move the set too, and see every message.
	bcast := subscribe(t, e.subscriber(t, millrace.SubscriberConfig{BlockTime: 100 * time.Millisecond}), topic)

	// notBefore is taken just before delay.For, so it is a lower bound.
	notBefore := map[string]time.Time{}
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msg, nb := delayedMessage(strconv.Itoa(i), time.Duration(rand.N(1500))*time.Millisecond)
		msgs[i], notBefore[msg.UUID] = msg, nb
	}
	require.NoError(t, pub.Publish(topic, msgs[:n/2]...))
	require.NoError(t, pub.Publish(topic, msgs[n/2:]...))

	seen := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(seen) < n {
		select {
		case r := <-got:
			require.False(t, seen[r.uuid], "message %s delivered twice", r.uuid)
			seen[r.uuid] = true
			nb, ok := notBefore[r.uuid]
			require.True(t, ok)
			assert.False(t, r.at.Before(nb), "delivered %s early", nb.Sub(r.at))
		case <-deadline:
			t.Fatalf("got %d of %d messages", len(seen), n)
		}
	}
	bseen := map[string]bool{}
	for len(bseen) < n {
		msg := receive(t, bcast)
		bseen[msg.UUID] = true
		msg.Ack()
	}
	select {
	case r := <-got:
		t.Fatalf("message %s delivered twice", r.uuid)
	case <-time.After(300 * time.Millisecond):
	}
	assert.Zero(t, delayedCount(t, e.client, topic))
	assert.EqualValues(t, n, xlen(t, e.client, topic), "each delayed message was added once")
}

// The handler fails once; DelayOnError sets the delay and the PoisonQueue
// middleware publishes the message back to its own topic, so it returns
// after the delay (the message that failed is acknowledged).
func TestDelay_DelayOnErrorRequeuesAfterDelay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	sub := e.subscriber(t, groupConfig("g"))

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: time.Second}, testLogger)
	require.NoError(t, err)
	poison, err := middleware.PoisonQueue(pub, topic)
	require.NoError(t, err)
	router.AddMiddleware(poison, (&middleware.DelayOnError{
		InitialInterval: 700 * time.Millisecond,
		MaxInterval:     5 * time.Second,
		Multiplier:      2,
	}).Middleware)

	var mu sync.Mutex
	var attempts []time.Time
	var last *message.Message
	done := make(chan struct{})
	router.AddConsumerHandler("h", topic, sub, func(msg *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		if len(attempts) == 1 {
			return errors.New("temporary failure")
		}
		last = msg.Copy()
		close(done)
		return nil
	})
	runRouter(t, router)

	sent := publish(t, pub, topic, "retry me")
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the message did not come back")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, attempts, 2)
	assert.GreaterOrEqual(t, attempts[1].Sub(attempts[0]), 700*time.Millisecond)
	assert.Equal(t, sent[0].UUID, last.UUID)
	assert.Equal(t, "retry me", string(last.Payload))
	assert.Equal(t, "temporary failure", last.Metadata.Get(middleware.ReasonForPoisonedKey))
	assert.Equal(t, "700ms", last.Metadata.Get(delay.DelayedForKey))
	assert.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") == 0 },
		5*time.Second, 20*time.Millisecond, "both deliveries are acknowledged")
}

// Watermill's requeuer pattern: failed messages go to a requeue topic with
// a delay, and the requeuer moves them back to the original topic once the
// delay is over.
func TestDelay_RequeuerPattern(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic, requeueTopic := newTopic(), newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: time.Second}, testLogger)
	require.NoError(t, err)
	poison, err := middleware.PoisonQueue(pub, requeueTopic)
	require.NoError(t, err)
	router.AddMiddleware(poison, (&middleware.DelayOnError{
		InitialInterval: 500 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2,
	}).Middleware)

	var mu sync.Mutex
	var attempts []time.Time
	done := make(chan *message.Message, 1)
	router.AddConsumerHandler("h", topic, e.subscriber(t, groupConfig("g")), func(msg *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		if len(attempts) < 3 {
			return errors.New("not yet")
		}
		done <- msg.Copy()
		return nil
	})
	_, err = requeuer.NewRequeuer(requeuer.Config{
		Subscriber:     e.subscriber(t, groupConfig("requeuer")),
		SubscribeTopic: requeueTopic,
		Publisher:      pub,
		GeneratePublishTopic: func(p requeuer.GeneratePublishTopicParams) (string, error) {
			return p.Message.Metadata.Get(middleware.PoisonedTopicKey), nil
		},
		Router: router,
	}, testLogger)
	require.NoError(t, err)
	runRouter(t, router)

	publish(t, pub, topic, "eventually")
	var last *message.Message
	select {
	case last = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the message did not come back")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, attempts, 3)
	assert.GreaterOrEqual(t, attempts[1].Sub(attempts[0]), 500*time.Millisecond)
	assert.GreaterOrEqual(t, attempts[2].Sub(attempts[1]), time.Second, "the delay grows by Multiplier")
	assert.Equal(t, "2", last.Metadata.Get(requeuer.RetriesKey))
}

// runRouter runs router until the test ends.
func runRouter(t *testing.T, router *message.Router) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case <-router.Running():
	case err := <-done:
		t.Fatalf("router stopped: %v", err)
	}
}

// A member that is not in Millrace's format (added by something else) is
// moved as a foreign entry holding the raw member, not lost.
func TestDelay_ForeignMemberDeliveredRaw(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	ctx := context.Background()
	require.NoError(t, e.client.ZAdd(ctx, millrace.DelayedKey(topic), redis.Z{Score: 1, Member: "not a millrace member"}).Err())
	ch := subscribe(t, e.subscriber(t, groupConfig("g")), topic)
	got := receive(t, ch)
	assert.Equal(t, "true", got.Metadata.Get(millrace.MetadataForeign))
	var fields map[string]string
	require.NoError(t, json.Unmarshal(got.Payload, &fields))
	assert.Equal(t, map[string]string{"_millrace_delayed_raw": "not a millrace member"}, fields)
	got.Ack()
}

// With nothing delayed, a subscription's mover costs one script call per
// poll interval and writes nothing.
func TestDelay_IdleMoverWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	subscribe(t, e.subscriber(t, millrace.SubscriberConfig{BlockTime: 100 * time.Millisecond}), topic)
	time.Sleep(500 * time.Millisecond)
	n, err := e.client.Exists(context.Background(), topic, millrace.DelayedKey(topic)).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}

// On Redis Cluster the delayed set shares its topic's slot, so the mover
// script (which declares both keys) runs; topics with and without a hash tag.
func TestDelay_Cluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3, 0)
	client := cl.Client(t)
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	sub, err := millrace.NewSubscriber(client, groupConfig("g"), testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })

	for _, topic := range []string{newTopic(), "{tag}" + newTopic()} {
		ch := subscribe(t, sub, topic)
		msg, notBefore := delayedMessage("clustered", 300*time.Millisecond)
		require.NoError(t, pub.Publish(topic, msg))
		got := receive(t, ch)
		assert.Equal(t, msg.UUID, got.UUID)
		assert.False(t, time.Now().Before(notBefore))
		got.Ack()
		n, err := client.ZCard(context.Background(), millrace.DelayedKey(topic)).Result()
		require.NoError(t, err)
		assert.Zero(t, n)
	}
}
