package millrace_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/faultproxy"
	"github.com/millrace/millrace/internal/redistest"
)

// The delivery contract under single, ordinary faults: a reply lost after
// Redis ran the command, Redis unreachable, a restart beside a live
// consumer. Each test reproduces one fault with the fault proxy and a real
// redis-server.

// proxiedClient is a client with go-redis's default retries whose
// connections go through p to srv.
func proxiedClient(t *testing.T, srv *redistest.Server, p *faultProxy) *redis.Client {
	t.Helper()
	o := srv.Options(t)
	o.Addr = p.Addr()
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// proxiedFlow is a subscriber whose connections go through a fault proxy
// to a server of the test's own, subscribed to a new topic, and a
// publisher that goes straight to that server.
type proxiedFlow struct {
	direct *redis.Client
	proxy  *faultProxy
	topic  string
	ch     <-chan *message.Message
	pub    *millrace.Publisher
}

func startProxiedFlow(t *testing.T, cfg millrace.SubscriberConfig) *proxiedFlow {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	f := &proxiedFlow{direct: srv.Client(t), proxy: startFaultProxy(t, srv.Addr()), topic: newTopic()}
	sub, err := millrace.NewSubscriber(proxiedClient(t, srv, f.proxy), cfg, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	f.ch = subscribe(t, sub, f.topic)
	f.pub, err = millrace.NewPublisher(f.direct, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.pub.Close()) })
	return f
}

// awaitLost waits for the proxy to have lost the reply it was armed for.
func awaitLost(t *testing.T, lost <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-lost:
	case <-time.After(15 * time.Second):
		t.Fatalf("the reply of %s was not lost within 15s", what)
	}
}

// Close returns within CloseTimeout and its one final deadline while Redis
// answers nothing and an Ack waits to be sent, and says what it left.
func TestContract_CloseEndsWhileRedisUnreachable(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	direct := srv.Client(t)
	proxy := startFaultProxy(t, srv.Addr())
	c := proxiedClient(t, srv, proxy)
	logs := &topoLogBuffer{}
	topic := newTopic()
	sub, err := millrace.NewSubscriber(c, millrace.SubscriberConfig{
		ConsumerGroup: "g", CloseTimeout: time.Second, ConsumerLease: -1,
	}, topoLoggerTo(logs))
	require.NoError(t, err)
	ch := subscribe(t, sub, topic)
	pub, err := millrace.NewPublisher(direct, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	defer pub.Close()
	publish(t, pub, topic, "held")
	msg := receive(t, ch)

	proxy.setMode(proxyBlackhole)
	proxy.CutAll()
	msg.Ack()
	start := time.Now()
	require.NoError(t, sub.Close())
	took := time.Since(start)
	// CloseTimeout is not waited for (the handler is done); the final
	// deadline is 5s; a read in flight ends by its own bound, 5s past
	// its BLOCK, started before Close.
	assert.Less(t, took, 12*time.Second, "Close took %s", took)
	assert.Contains(t, logs.String(), "Cannot acknowledge entries before Close's deadline")
	assert.Equal(t, int64(1), pendingCount(t, direct, topic, "g"), "the entry stays pending")
}

// A user without XACK: Close ends at its deadline all the same, also when
// the handlers acknowledged more than the acknowledgements' queue holds.
func TestContract_CloseEndsWhenXAckIsRefused(t *testing.T) {
	t.Parallel()
	a := newACLServer(t)
	topic := "noack"
	c := a.setUser(t, "noack", "Very-Secret-Pw-0b7e", aclWithout(aclSubscriber, "+xack"), aclTopicKeys(topic))
	logs := &topoLogBuffer{}
	sub, err := millrace.NewSubscriber(c, millrace.SubscriberConfig{ConsumerGroup: "g", CloseTimeout: time.Second, AckBatch: 1}, topoLoggerTo(logs))
	require.NoError(t, err)
	ch := subscribe(t, sub, topic)
	pub, err := millrace.NewPublisher(a.admin, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	defer pub.Close()
	var payloads []string
	for i := range 20 {
		payloads = append(payloads, strconv.Itoa(i))
	}
	publish(t, pub, topic, payloads...)
	acked := make(chan struct{}, 20)
	go func() {
		for msg := range ch {
			msg.Ack()
			acked <- struct{}{}
		}
	}()
	for range 6 { // more than the queue of 4×AckBatch
		<-acked
	}
	start := time.Now()
	require.NoError(t, sub.Close())
	took := time.Since(start)
	assert.Less(t, took, 8*time.Second, "Close took %s", took)
	assert.Contains(t, logs.String(), "NOPERM")
	assert.Contains(t, logs.String(), "Cannot acknowledge entries before Close's deadline")
}

// An XACK that failed is sent again after its backoff, without waiting for
// more acknowledgements to fill its batch.
func TestContract_FailedXAckIsSentAgain(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	direct := srv.Client(t)
	proxy := startFaultProxy(t, srv.Addr())
	logs := &topoLogBuffer{}
	sub, err := millrace.NewSubscriber(proxiedClient(t, srv, proxy), millrace.SubscriberConfig{ConsumerGroup: "g"}, topoLoggerTo(logs))
	require.NoError(t, err)
	defer sub.Close()
	topic := newTopic()
	ch := subscribe(t, sub, topic)
	pub, err := millrace.NewPublisher(direct, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	defer pub.Close()
	publish(t, pub, topic, "x")
	msg := receive(t, ch)
	proxy.setMode(proxyReject)
	proxy.CutAll()
	msg.Ack()
	aclWaitLogged(t, logs, "Cannot acknowledge entries; retrying")
	proxy.setMode(proxyForward)
	require.Eventually(t, func() bool { return pendingCount(t, direct, topic, "g") == 0 }, 15*time.Second, 10*time.Millisecond)
}

// Two subscriptions of one Subscriber to one topic (two Router handlers,
// same group and consumer name) hand out each entry a previous run left
// pending once, between them.
func TestContract_TwoSubscriptionsOfOneConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	var payloads []string
	for i := range 20 {
		payloads = append(payloads, strconv.Itoa(i))
	}
	publish(t, pub, topic, payloads...)
	// A previous run that crashed an hour ago: its entries are idle past
	// any ClaimMinIdle, so a claim scan takes them at once.
	var ids []string
	for _, m := range readAs(t, e.client, topic, "g", "worker", 20) {
		ids = append(ids, m.ID)
	}
	args := []interface{}{"xclaim", topic, "g", "worker", 0}
	for _, id := range ids {
		args = append(args, id)
	}
	require.NoError(t, e.client.Do(context.Background(), append(args, "idle", time.Hour.Milliseconds(), "justid")...).Err())

	sub := e.subscriber(t, millrace.SubscriberConfig{
		ConsumerGroup: "g", Consumer: "worker", ClaimMinIdle: time.Minute, ClaimInterval: 20 * time.Millisecond,
	})
	var mu sync.Mutex
	handled := map[string]int{}
	var wg sync.WaitGroup
	for range 2 {
		ch := subscribe(t, sub, topic)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range ch {
				mu.Lock()
				handled[msg.Metadata.Get(millrace.MetadataEntryID)]++
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // handlers overlap with the scans
				msg.Ack()
			}
		}()
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 20
	}, 15*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") == 0 }, 10*time.Second, 10*time.Millisecond)
	// Several claim scans of both subscriptions after the last Ack.
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, sub.Close())
	wg.Wait()
	for id, n := range handled {
		assert.Equal(t, 1, n, "entry %s handled %d times", id, n)
	}
}

// A publish whose reply is lost after Redis ran it adds its messages once:
// go-redis does not send it again on its own, and the Publisher's own
// resend finds it done. With PlainXAdd the call says it cannot tell.
func TestContract_PublishReplyLost(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	direct := srv.Client(t)
	for _, tc := range []struct {
		name  string
		cfg   millrace.PublisherConfig
		match func([]string) bool
		err   error
	}{
		{"default", millrace.PublisherConfig{}, faultproxy.Command("EVALSHA"), nil},
		{"Idempotency", millrace.PublisherConfig{Idempotency: millrace.Idempotency{Window: time.Minute}}, faultproxy.Command("EVALSHA"), nil},
		{"PlainXAdd", millrace.PublisherConfig{PlainXAdd: true}, faultproxy.Command("XADD"), millrace.ErrOutcomeUnknown},
	} {
		for _, n := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/%d messages", tc.name, n), func(t *testing.T) {
				proxy := startFaultProxy(t, srv.Addr())
				c := proxiedClient(t, srv, proxy)
				pub, err := millrace.NewPublisher(c, tc.cfg, testLogger)
				require.NoError(t, err)
				defer pub.Close()
				topic := newTopic()
				require.NoError(t, pub.Publish(topic, newMessages("warm")...)) // the script is cached
				lost := proxy.LoseReply(tc.match)
				msgs := newMessages(strings.Split("abc"[:n], "")...)
				err = pub.Publish(topic, msgs...)
				awaitLost(t, lost, "the publish")
				if tc.err != nil {
					require.ErrorIs(t, err, tc.err)
				} else {
					require.NoError(t, err)
				}
				got := entries(t, direct, topic)
				require.Len(t, got, 1+n, "every message once")
				for i, m := range msgs {
					assert.Equal(t, m.UUID, decode(t, got[1+i].Values).UUID)
				}
			})
		}
	}
}

// A claim for delivery whose reply is lost counts that delivery once: with
// MaxDeliveries 2 a message Nacked every time runs its handler twice and is
// dead-lettered as delivered 3 times.
func TestContract_ClaimReplyLost(t *testing.T) {
	t.Parallel()
	f := startProxiedFlow(t, millrace.SubscriberConfig{ConsumerGroup: "g", MaxDeliveries: 2, NackBackoff: 10 * time.Millisecond})
	// A first redelivery caches the claim script: the reply lost below is
	// that of a claim Redis ran, not a NOSCRIPT.
	publish(t, f.pub, f.topic, "warm")
	receive(t, f.ch).Nack()
	receive(t, f.ch).Ack()
	// The claim script: EVALSHA with the stream as its one key and the
	// group as its first argument.
	lost := f.proxy.LoseReply(func(args []string) bool {
		return len(args) == 9 && strings.EqualFold(args[0], "evalsha") && args[3] == f.topic && args[4] == "g"
	})
	publish(t, f.pub, f.topic, "poison")
	var runs []string
	first := receive(t, f.ch)
	runs = append(runs, first.Metadata.Get(millrace.MetadataDeliveryCount))
	first.Nack()
	awaitLost(t, lost, "the claim")
	second := receive(t, f.ch)
	runs = append(runs, second.Metadata.Get(millrace.MetadataDeliveryCount))
	second.Nack()
	dead := awaitDeadLetters(t, f.direct, millrace.DeadLetterTopic(f.topic), 1)
	require.Len(t, dead, 1)
	assert.Equal(t, []string{"1", "2"}, runs, "the handler runs twice, and sees each delivery counted once")
	assert.Equal(t, "3", dead[0].Metadata.Get(millrace.MetadataDeadLetterDeliveries))
	requireNoMessage(t, f.ch, 300*time.Millisecond)
}

// A dead letter whose script's reply is lost is written once.
func TestContract_DeadLetterReplyLost(t *testing.T) {
	t.Parallel()
	f := startProxiedFlow(t, millrace.SubscriberConfig{ConsumerGroup: "g", MaxDeliveries: 1, NackBackoff: 10 * time.Millisecond})
	dlq := millrace.DeadLetterTopic(f.topic)
	// A first dead letter caches the script: the reply lost below is that
	// of a dead letter Redis wrote, not a NOSCRIPT.
	publish(t, f.pub, f.topic, "warm")
	receive(t, f.ch).Nack()
	awaitDeadLetters(t, f.direct, dlq, 1)
	// The dead-letter script: EVALSHA with the dead-letter stream, the
	// topic's stream and the entry's last error as its keys.
	lost := f.proxy.LoseReply(func(args []string) bool {
		return len(args) > 6 && strings.EqualFold(args[0], "evalsha") && args[2] == "3" && args[3] == dlq && args[4] == f.topic
	})
	publish(t, f.pub, f.topic, "poison")
	receive(t, f.ch).Nack()
	awaitLost(t, lost, "the dead letter")
	require.Eventually(t, func() bool { return pendingCount(t, f.direct, f.topic, "g") == 0 }, 15*time.Second, 10*time.Millisecond)
	// go-redis sends the script again right after the loss; a second
	// dead letter would follow within milliseconds.
	assert.Never(t, func() bool { return xlen(t, f.direct, dlq) != 2 }, time.Second, 10*time.Millisecond, "one dead letter for the poison message")
}

// A consumer restarted under its name right after Close, beside a live
// consumer that took over what Close released, does not take those entries
// back: each is handled by one consumer.
func TestContract_RestartBesideLiveConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	publish(t, pub, topic, "1", "2", "3", "4")
	// Leases are extended every 10s, far apart from what the test does;
	// released entries (idle 24h) are taken over at once. The peer handles
	// three at once.
	cfg := func(name string) millrace.SubscriberConfig {
		c := millrace.SubscriberConfig{
			ConsumerGroup: "g", Consumer: name, ClaimMinIdle: time.Minute, ClaimInterval: 50 * time.Millisecond,
			CloseTimeout: 100 * time.Millisecond,
		}
		if name == "b" {
			c.MaxInFlight = 3
		}
		return c
	}

	// The first run of "a" holds all four in handlers and closes.
	first, err := millrace.NewSubscriber(e.client, func() millrace.SubscriberConfig {
		c := cfg("a")
		c.MaxInFlight = 4
		return c
	}(), testLogger)
	require.NoError(t, err)
	ch := subscribe(t, first, topic)
	for range 4 {
		receive(t, ch)
	}
	require.NoError(t, first.Close()) // released: idle 24h, still pending at "a"

	// "a" restarts and lists them a page of one at a time: it hands out
	// the first, queues the second and holds the third, waiting for room;
	// its own claimer waits for the listing to end.
	again := e.subscriber(t, func() millrace.SubscriberConfig {
		c := cfg("a")
		c.Prefetch = 1
		return c
	}())
	chA := subscribe(t, again, topic)
	firstA := receive(t, chA)

	// A live peer takes over the three still released, listed or not.
	peer := e.subscriber(t, cfg("b"))
	chB := subscribe(t, peer, topic)
	var fromB []*message.Message
	for range 3 {
		fromB = append(fromB, receive(t, chB))
	}
	// "a" goes on with its queue: those entries are the peer's now.
	firstA.Ack()
	requireNoMessage(t, chA, time.Second)
	seen := map[string]bool{firstA.Metadata.Get(millrace.MetadataEntryID): true}
	for _, m := range fromB {
		id := m.Metadata.Get(millrace.MetadataEntryID)
		assert.False(t, seen[id], "entry %s handled by both consumers", id)
		seen[id] = true
		m.Ack()
	}
	assert.Len(t, seen, 4)
	require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") == 0 }, 10*time.Second, 10*time.Millisecond)
}

// A Publish refused by a full Redis adds nothing of the call; one that is
// accepted adds all of it. With PlainXAdd, a call refused part-way says
// exactly which messages were added.
func TestContract_PublishAtMaxmemory(t *testing.T) {
	t.Parallel()
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("PlainXAdd=%v", plain), func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{"maxmemory-policy noeviction"}})
			c := srv.Client(t)
			ctx := context.Background()
			pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{PlainXAdd: plain, Retention: millrace.Retention{KeepAll: true}}, testLogger)
			require.NoError(t, err)
			defer pub.Close()
			topic := newTopic()
			require.NoError(t, pub.Publish(topic, newMessages("warm")...))
			require.NoError(t, c.ConfigSet(ctx, "maxmemory", strconv.FormatInt(usedMemory(t, c)+512*1024, 10)).Err())
			defer c.ConfigSet(ctx, "maxmemory", "0")

			payload := strings.Repeat("x", 1024)
			before := xlen(t, c, topic)
			var refused bool
			for call := 0; call < 200 && !refused; call++ {
				msgs := make([]*message.Message, 100)
				for i := range msgs {
					msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(payload))
				}
				err := pub.Publish(topic, msgs...)
				after := xlen(t, c, topic)
				added := after - before
				before = after
				if err == nil {
					require.EqualValues(t, 100, added, "an accepted call adds all of it")
					continue
				}
				refused = true
				require.ErrorIs(t, err, millrace.ErrRedisFull)
				var partial *millrace.PartialPublishError
				if plain && errors.As(err, &partial) {
					require.EqualValues(t, len(partial.Added), added, "Added lists what was added")
					require.Len(t, partial.Refused, 100-len(partial.Added))
					for i, id := range partial.Added {
						assert.Equal(t, msgs[i].UUID, id)
					}
					continue
				}
				require.Zero(t, added, "a refused call adds nothing: %v", err)
			}
			require.True(t, refused, "Redis never refused a call")
		})
	}
}

// blockedClient returns the ID of the client of srv blocked in cmd, 0 when
// none is.
func blockedClient(t *testing.T, c *redis.Client, cmd string) int64 {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	require.NoError(t, err)
	for _, line := range strings.Split(list, "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = v
			}
		}
		if f["cmd"] == cmd && strings.Contains(f["flags"], "b") {
			id, err := strconv.ParseInt(f["id"], 10, 64)
			require.NoError(t, err)
			return id
		}
	}
	return 0
}

// After a failover behind a stable address, the news waiter's CLIENT
// UNBLOCK never reaches the new server, where its XREAD connection's ID may
// be another client's: an unrelated BLPOP holding that ID stays blocked.
func TestContract_StaleClientIDUnblocksNobody(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old := redistest.Start(t, redistest.Options{NoAOF: true})
	next := redistest.Start(t, redistest.Options{NoAOF: true})
	oldDirect, nextDirect := old.Client(t), next.Client(t)
	// The old server has handed out more client IDs than the new one.
	for range 30 {
		c := redis.NewClient(old.Options(t))
		require.NoError(t, c.Ping(ctx).Err())
		c.Close()
	}
	proxy := startFaultProxy(t, old.Addr())
	c := proxiedClient(t, old, proxy)
	sub, err := millrace.NewSubscriber(c, millrace.SubscriberConfig{ConsumerGroup: "g"}, testLogger)
	require.NoError(t, err)
	defer sub.Close()
	subscribe(t, sub, "first")
	var waiterID int64
	require.Eventually(t, func() bool { waiterID = blockedClient(t, oldDirect, "xread"); return waiterID > 0 }, 10*time.Second, 10*time.Millisecond)

	// On the new server a client with the same ID blocks in BLPOP.
	var holder *redis.Client
	for holder == nil {
		o := next.Options(t)
		o.PoolSize = 1
		h := redis.NewClient(o)
		t.Cleanup(func() { h.Close() })
		id, err := h.ClientID(ctx).Result()
		require.NoError(t, err)
		require.LessOrEqual(t, id, waiterID, "the new server gave out ID %d already", waiterID)
		if id == waiterID {
			holder = h
		}
	}
	popped := make(chan []string, 1)
	go func() {
		v, _ := holder.BLPop(ctx, 0, "jobs").Result()
		popped <- v
	}()
	require.Eventually(t, func() bool { return blockedClient(t, nextDirect, "blpop") == waiterID }, 10*time.Second, 10*time.Millisecond)

	// The address now leads to the new server; the idle connections are
	// dropped, the XREAD's stays with the old server.
	proxy.SetTarget(next.Addr())
	proxy.CutIdle()
	// A subscription to another topic interrupts the wait in flight.
	ch := subscribe(t, sub, "second")
	// The waiter moves to the new server: after its interrupt failed, it
	// drops both connections once the old XREAD ends.
	require.Eventually(t, func() bool { return blockedClient(t, nextDirect, "xread") > 0 }, 15*time.Second, 10*time.Millisecond)

	stats, err := nextDirect.Info(ctx, "commandstats").Result()
	require.NoError(t, err)
	assert.NotContains(t, stats, "cmdstat_client|unblock", "no CLIENT UNBLOCK reached the new server")
	assert.Equal(t, waiterID, blockedClient(t, nextDirect, "blpop"), "the BLPOP is still blocked")
	require.NoError(t, nextDirect.RPush(ctx, "jobs", "job-1").Err())
	select {
	case v := <-popped:
		assert.Equal(t, []string{"jobs", "job-1"}, v, "BLPOP got its job, not an UNBLOCK's nil")
	case <-time.After(5 * time.Second):
		t.Fatal("BLPOP did not return")
	}

	// The subscription works on the new server.
	pub, err := millrace.NewPublisher(nextDirect, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	defer pub.Close()
	publish(t, pub, "second", "after")
	assert.Equal(t, "after", string(receive(t, ch).Payload))
}
