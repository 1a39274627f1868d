package millrace_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

func leaseConfig(consumer string, lease time.Duration) millrace.SubscriberConfig {
	cfg := groupConfig("g")
	cfg.Consumer = consumer
	cfg.ConsumerLease = lease
	return cfg
}

// consumerKey is the lease key of consumer in group "g" of topic.
func consumerKey(topic, consumer string) string { return "{" + topic + "}:consumer:1:g:" + consumer }

// holderOf is the holder key a lease key's value names.
func holderOf(t *testing.T, value string) string {
	t.Helper()
	_, holder, ok := strings.Cut(value, "|")
	require.True(t, ok, "lease value %q", value)
	return holder
}

// A second live Subscriber under the same consumer name, group and topic
// is refused, or renamed when it asks to be; the first keeps the name.
func TestConsumerLease_SecondLiveSubscriberRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	first := subscribe(t, e.subscriber(t, leaseConfig("worker-1", 300*time.Millisecond)), topic)

	second := e.subscriber(t, leaseConfig("worker-1", 300*time.Millisecond))
	_, err := second.Subscribe(ctxTimeout(t, 10*time.Second), topic)
	require.ErrorIs(t, err, millrace.ErrConsumerInUse)

	// One Subscriber may read a topic twice under its name.
	twice := newTopic()
	self := e.subscriber(t, leaseConfig("worker-1", 300*time.Millisecond))
	subscribe(t, self, twice)
	subscribe(t, self, twice)
	// The name is per topic: worker-1 elsewhere is another consumer.
	sub := e.subscriber(t, leaseConfig("worker-1", 300*time.Millisecond))
	subscribe(t, sub, newTopic())
	subscribe(t, sub, newTopic())

	cfg := leaseConfig("worker-1", 300*time.Millisecond)
	cfg.RenameTakenConsumer = true
	renamed := subscribe(t, e.subscriber(t, cfg), topic)
	pub := e.publisher(t, millrace.PublisherConfig{})
	publish(t, pub, topic, "1", "2", "3", "4", "5", "6")
	seen := 0
	byConsumer := map[string]bool{}
	for seen < 6 {
		select {
		case m := <-first:
			seen++
			m.Ack()
		case m := <-renamed:
			seen++
			m.Ack()
		case <-ctxTimeout(t, 15*time.Second).Done():
			t.Fatalf("%d of 6 messages", seen)
		}
	}
	for _, c := range consumers(t, e, topic) {
		byConsumer[c] = true
	}
	assert.True(t, byConsumer["worker-1"])
	renamedSeen := false
	for c := range byConsumer {
		renamedSeen = renamedSeen || len(c) > len("worker-1-") && c[:len("worker-1-")] == "worker-1-"
	}
	assert.True(t, renamedSeen, "consumers: %v", byConsumer)
}

// Close releases the name at once; a name left by a crashed Subscriber (no
// Close, no renewal) is free once its lease expires, and Subscribe waits
// for that.
func TestConsumerLease_RestartUnderTheSameName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	ctx := context.Background()

	// A minute-long lease: a Subscribe that had to wait for it would time out.
	first, err := millrace.NewSubscriber(e.client, leaseConfig("worker-1", time.Minute), testLogger)
	require.NoError(t, err)
	_, err = first.Subscribe(ctx, topic)
	require.NoError(t, err)
	assert.EqualValues(t, 1, e.client.Exists(ctx, consumerKey(topic, "worker-1")).Val(), "the name is held")
	require.NoError(t, first.Close())
	requireGivenUp(t, e.client, consumerKey(topic, "worker-1"))
	restarted := e.subscriber(t, leaseConfig("worker-1", time.Minute))
	_, err = restarted.Subscribe(ctxTimeout(t, 5*time.Second), topic)
	require.NoError(t, err)

	// A crashed holder's key expires; the next Subscribe waits for that.
	other := newTopic()
	require.NoError(t, e.client.Set(ctx, consumerKey(other, "worker-1"), "crashed-process", 400*time.Millisecond).Err())
	_, err = e.subscriber(t, leaseConfig("worker-1", 400*time.Millisecond)).Subscribe(ctxTimeout(t, 10*time.Second), other)
	require.NoError(t, err)
}

// A running subscription renews its name: the key names the Subscriber's
// holder key, which outlives many leases.
func TestConsumerLease_Renewed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	subscribe(t, e.subscriber(t, leaseConfig("worker-1", 90*time.Millisecond)), topic)
	ctx := context.Background()
	key := consumerKey(topic, "worker-1")
	value := e.client.Get(ctx, key).Val()
	holder := holderOf(t, value)
	deadline := time.Now().Add(900 * time.Millisecond) // ten leases
	for time.Now().Before(deadline) {
		require.Equal(t, value, e.client.Get(ctx, key).Val(), "the name changed hands")
		require.EqualValues(t, 1, e.client.Exists(ctx, holder).Val(), "the lease lapsed")
		time.Sleep(20 * time.Millisecond)
	}
}

// One holder key keeps every name of a Subscriber: a second live
// Subscriber under the same name is refused on each of its topics after
// many leases, and gets the names once the first is gone, at once after
// its Close and within a lease after it stopped renewing.
func TestConsumerLease_OneHolderCatchesSecondOnEveryTopic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	topics := []string{newTopic(), newTopic(), newTopic()}
	first, err := millrace.NewSubscriber(e.client, leaseConfig("worker-1", 150*time.Millisecond), testLogger)
	require.NoError(t, err)
	for _, topic := range topics {
		_, err := first.Subscribe(ctx, topic)
		require.NoError(t, err)
	}
	value := e.client.Get(ctx, consumerKey(topics[0], "worker-1")).Val()
	holder := holderOf(t, value)
	for _, topic := range topics {
		assert.Equal(t, value, e.client.Get(ctx, consumerKey(topic, "worker-1")).Val(), "one holder for every topic")
	}
	time.Sleep(time.Second) // several leases: only renewals keep the names

	second, err := millrace.NewSubscriber(e.client, leaseConfig("worker-1", 150*time.Millisecond), testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = second.Close() })
	for _, topic := range topics {
		_, err := second.Subscribe(ctxTimeout(t, 10*time.Second), topic)
		require.ErrorIs(t, err, millrace.ErrConsumerInUse, "topic %s", topic)
	}

	// A holder that stops renewing (its key expires, as a crashed
	// process's does) frees every name within a lease.
	other := newTopic()
	crashed := "{" + other + "}:holder:crashed"
	require.NoError(t, e.client.Set(ctx, crashed, 1, 150*time.Millisecond).Err())
	require.NoError(t, e.client.Set(ctx, consumerKey(other, "worker-1"), "crashed-token|"+crashed, time.Hour).Err())
	_, err = second.Subscribe(ctxTimeout(t, 10*time.Second), other)
	require.NoError(t, err, "the name of a dead holder is free")

	require.NoError(t, first.Close())
	requireGivenUp(t, e.client, consumerKey(topics[0], "worker-1"))
	require.EqualValues(t, 1, e.client.Exists(ctx, holder).Val(), "the holder key lives on with the second's name")
	for _, topic := range topics {
		_, err := second.Subscribe(ctxTimeout(t, 5*time.Second), topic)
		require.NoError(t, err, "topic %s", topic)
	}
}

// A name taken by another Subscriber while this one's holder key had
// lapsed (here: deleted by hand and the name key set to another holder) is
// noticed at the next renewal, and taken back once the other holder's key
// expires.
func TestConsumerLease_TakenOverThenLapsed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	subscribe(t, e.subscriber(t, leaseConfig("worker-1", 150*time.Millisecond)), topic)
	ctx := context.Background()
	key := consumerKey(topic, "worker-1")
	value := e.client.Get(ctx, key).Val()
	holder := holderOf(t, value)
	another := "another-token|{" + topic + "}:holder:another"
	require.NoError(t, e.client.Set(ctx, holderOf(t, another), 1, 300*time.Millisecond).Err())
	require.NoError(t, e.client.Set(ctx, key, another, time.Hour).Err())
	require.NoError(t, e.client.Del(ctx, holder).Err())
	require.Eventually(t, func() bool { return e.client.Exists(ctx, holder).Val() == 1 }, 10*time.Second, 5*time.Millisecond,
		"the holder key is set again")
	assert.Equal(t, another, e.client.Get(ctx, key).Val(), "a live holder's name is not taken")
	require.Eventually(t, func() bool { return e.client.Get(ctx, key).Val() == value }, 10*time.Second, 10*time.Millisecond,
		"the name is held again once the other holder lapsed")
}

// The Subscribers over one client share one holder key (a Subscriber per
// handler costs no more than one), and still tell their names apart: a
// second Subscriber of the process under a name the first holds is
// refused.
func TestConsumerLease_SubscribersOfAClientShareTheHolder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a, b := newTopic(), newTopic()
	subscribe(t, e.subscriber(t, leaseConfig("worker-1", 150*time.Millisecond)), a)
	subscribe(t, e.subscriber(t, leaseConfig("worker-2", 150*time.Millisecond)), b)
	va := e.client.Get(ctx, consumerKey(a, "worker-1")).Val()
	vb := e.client.Get(ctx, consumerKey(b, "worker-2")).Val()
	assert.Equal(t, holderOf(t, va), holderOf(t, vb), "one holder key per client")
	assert.NotEqual(t, va, vb, "each Subscriber's own token")
	_, err := e.subscriber(t, leaseConfig("worker-1", 150*time.Millisecond)).Subscribe(ctxTimeout(t, 10*time.Second), a)
	require.ErrorIs(t, err, millrace.ErrConsumerInUse)
}

// consumers lists the consumers of group "g" on topic.
func consumers(t *testing.T, e *env, topic string) []string {
	t.Helper()
	cs, err := e.client.XInfoConsumers(context.Background(), topic, "g").Result()
	require.NoError(t, err)
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return names
}

// A name key that names the process's own live holder key, but no
// subscription of the process (one whose release never reached Redis), is
// taken at once: it holds nothing.
func TestConsumerLease_OwnHoldersLeftoverTakenAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	live := newTopic()
	subscribe(t, e.subscriber(t, leaseConfig("worker-1", time.Minute)), live)
	holder := holderOf(t, e.client.Get(ctx, consumerKey(live, "worker-1")).Val())

	topic := newTopic()
	key := consumerKey(topic, "worker-2")
	require.NoError(t, e.client.Set(ctx, key, "ended-subscriber|"+holder, time.Hour).Err())
	// A minute-long lease: a Subscribe that waited for the leftover
	// would time out.
	_, err := e.subscriber(t, leaseConfig("worker-2", time.Minute)).Subscribe(ctxTimeout(t, 5*time.Second), topic)
	require.NoError(t, err)
	assert.NotEqual(t, "ended-subscriber|"+holder, e.client.Get(ctx, key).Val())
}

// A take whose reply is lost fails Subscribe, and gives the name up: the
// key Redis wrote does not stay behind.
func TestConsumerLease_TakeReplyLost(t *testing.T) {
	t.Parallel()
	srv, direct, proxy := proxiedServer(t)
	c := unretriedClient(t, srv, proxy)
	topic := newTopic()
	key := consumerKey(topic, "worker-1")
	// EVAL, not EVALSHA: the script the server ran, after its NOSCRIPT.
	lost := proxy.LoseReply(func(args []string) bool {
		return len(args) > 3 && strings.EqualFold(args[0], "eval") && args[3] == key
	})
	sub, err := millrace.NewSubscriber(c, leaseConfig("worker-1", time.Minute), testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	_, err = sub.Subscribe(ctxTimeout(t, 10*time.Second), topic)
	require.Error(t, err)
	awaitLost(t, lost, "the take")
	requireGivenUp(t, direct, key)
}

// Close gives the name up also when Redis is unreachable for a moment as
// it does: the release is tried again within Close's final deadline.
func TestConsumerLease_ReleaseOutlastsAnOutage(t *testing.T) {
	t.Parallel()
	srv, direct, proxy := proxiedServer(t)
	sub, _, key := subscribeLeased(t, proxiedClient(t, srv, proxy), direct, leaseConfig("worker-1", time.Minute))

	proxy.setMode(proxyReject)
	proxy.CutAll()
	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	time.Sleep(time.Second) // the outage, well within the final deadline
	proxy.setMode(proxyForward)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return")
	}
	requireGivenUp(t, direct, key)
}

// A release that Redis stays unreachable for past Close's final deadline
// is tried again by the client's holder while other subscriptions keep it
// alive: the name is not held by a process that gave it up.
func TestConsumerLease_ReleaseAfterTheDeadline(t *testing.T) {
	t.Parallel()
	srv, direct, proxy := proxiedServer(t)
	proxied := &env{srv: srv, client: proxiedClient(t, srv, proxy)}
	// Renewals every 100 ms.
	subscribe(t, proxied.subscriber(t, leaseConfig("worker-1", 300*time.Millisecond)), newTopic())
	closing, _, key := subscribeLeased(t, proxied.client, direct, leaseConfig("worker-2", 300*time.Millisecond))
	ctx := context.Background()

	proxy.setMode(proxyReject)
	proxy.CutAll()
	require.NoError(t, closing.Close()) // after its final deadline
	require.EqualValues(t, 1, direct.Exists(ctx, key).Val(), "Redis was not reached")
	proxy.setMode(proxyForward)
	require.Eventually(t, func() bool { return direct.Exists(ctx, key).Val() == 0 },
		10*time.Second, 5*time.Millisecond, "the holder gives the name up")
}

// A renewal whose reply is lost is not sent again blindly: sent again, it
// would find the holder key set by the lost one and miss that it had
// lapsed, and that another Subscriber took a name meanwhile. The names are
// looked at again, and taken back once the other holder lapses.
func TestConsumerLease_RenewalReplyLost(t *testing.T) {
	t.Parallel()
	srv, direct, proxy := proxiedServer(t)
	proxied := &env{srv: srv, client: proxiedClient(t, srv, proxy)}
	topic := newTopic()
	subscribe(t, proxied.subscriber(t, leaseConfig("worker-1", 150*time.Millisecond)), topic)
	ctx := context.Background()
	key := consumerKey(topic, "worker-1")
	value := direct.Get(ctx, key).Val()
	holder := holderOf(t, value)

	// The holder key lapses; another Subscriber takes the name meanwhile,
	// and the first renewal after that loses its reply.
	lost := proxy.LoseReply(func(args []string) bool {
		return len(args) > 1 && strings.EqualFold(args[0], "set") && args[1] == holder
	})
	another := "another-token|{" + topic + "}:holder:another"
	require.NoError(t, direct.Set(ctx, holderOf(t, another), 1, 600*time.Millisecond).Err())
	require.NoError(t, direct.Set(ctx, key, another, time.Hour).Err())
	require.NoError(t, direct.Del(ctx, holder).Err())
	awaitLost(t, lost, "the renewal")
	require.Eventually(t, func() bool { return direct.Get(ctx, key).Val() == value }, 10*time.Second, 10*time.Millisecond,
		"the name is held again once the other holder lapsed")
}

// proxiedServer starts a server of the test's own, and a fault proxy in
// front of it; direct goes straight to the server.
func proxiedServer(t *testing.T) (srv *redistest.Server, direct *redis.Client, proxy *faultProxy) {
	t.Helper()
	srv = redistest.Start(t, redistest.Options{NoAOF: true})
	return srv, srv.Client(t), startFaultProxy(t, srv.Addr())
}

// requireGivenUp waits for a name key to be given up: SET PX 1, gone a
// millisecond later.
func requireGivenUp(t *testing.T, c redis.UniversalClient, key string) {
	t.Helper()
	require.Eventually(t, func() bool { return c.Exists(context.Background(), key).Val() == 0 },
		time.Second, time.Millisecond, "the name key is given up")
}

// subscribeLeased subscribes a new Subscriber over c, which the test
// closes, to a new topic, and returns it with the topic and its name key,
// held.
func subscribeLeased(t *testing.T, c redis.UniversalClient, direct *redis.Client, cfg millrace.SubscriberConfig) (sub *millrace.Subscriber, topic, key string) {
	t.Helper()
	sub, err := millrace.NewSubscriber(c, cfg, testLogger)
	require.NoError(t, err)
	topic = newTopic()
	subscribe(t, sub, topic)
	key = consumerKey(topic, cfg.Consumer)
	require.EqualValues(t, 1, direct.Exists(context.Background(), key).Val())
	return sub, topic, key
}

// A second Subscribe of a Subscriber under a name its running subscription
// holds, whose take fails (its reply lost), gives up nothing: the running
// subscription keeps the name.
func TestConsumerLease_FailedSecondSubscribeKeepsTheName(t *testing.T) {
	t.Parallel()
	srv, direct, proxy := proxiedServer(t)
	c := unretriedClient(t, srv, proxy)
	sub, topic, key := subscribeLeased(t, c, direct, leaseConfig("worker-1", time.Minute))
	t.Cleanup(func() { require.NoError(t, sub.Close()) })

	lost := proxy.LoseReply(func(args []string) bool {
		return len(args) > 3 && strings.EqualFold(args[0], "evalsha") && args[3] == key
	})
	_, err := sub.Subscribe(ctxTimeout(t, 10*time.Second), topic)
	require.Error(t, err)
	awaitLost(t, lost, "the second take")
	ttl, err := direct.PTTL(context.Background(), key).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Minute, "the name key is not given up (SET PX 1)")
}

// unretriedClient is a client whose connections go through p to srv and
// that go-redis does not send anything again for: a lost reply fails the
// call.
func unretriedClient(t *testing.T, srv *redistest.Server, p *faultProxy) *redis.Client {
	t.Helper()
	o := srv.Options(t)
	o.Addr, o.MaxRetries = p.Addr(), -1
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// A release whose reply is lost, sent again by go-redis, finds the name
// given up (or gives it up): it only ever expires the key while it holds
// this Subscriber's value.
func TestConsumerLease_ReleaseReplyLost(t *testing.T) {
	t.Parallel()
	srv, direct, proxy := proxiedServer(t)
	sub, _, key := subscribeLeased(t, proxiedClient(t, srv, proxy), direct, leaseConfig("worker-1", time.Minute))
	// EVAL, not EVALSHA: the release script the server ran, after its
	// NOSCRIPT (the take's script is cached already, and is not sent).
	lost := proxy.LoseReply(func(args []string) bool {
		return len(args) > 3 && strings.EqualFold(args[0], "eval") && args[3] == key
	})
	require.NoError(t, sub.Close())
	awaitLost(t, lost, "the release")
	requireGivenUp(t, direct, key)
}
