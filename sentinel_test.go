package millrace_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// Failover tests: real masters are switched under a running publisher and
// subscriber, and foRun counts what the switch cost.

// foRun drives one topic through a failover: producers publish numbered
// messages, each retried until Publish succeeds, as a real producer would;
// a consumer acks everything it gets. It records which messages Publish
// acknowledged, and when, and how often each was delivered.
type foRun struct {
	t      *testing.T
	name   string
	pub    message.Publisher
	client redis.UniversalClient // for XPENDING and XRANGE at the end
	topic  string
	group  string
	cancel context.CancelFunc // ends the subscription

	stop      chan struct{}
	producers sync.WaitGroup
	consumer  chan struct{} // closed when the consumer has seen the channel close

	mu           sync.Mutex
	ackedAt      map[string]time.Time // UUID → when Publish returned nil
	deliveries   map[string]int
	attempts     int
	failures     int
	gaveUp       int
	firstErr     error
	lastErr      error
	failingSince time.Time
	outage       time.Duration // longest time from a failed attempt to the next success
	slowest      time.Duration // longest single Publish call
	lastDelivery time.Time
	maxGap       time.Duration // longest pause between two deliveries
}

// foSubscriberConfig is the subscriber config of loss runs: a short claim idle
// time, so entries whose XACK went to a master that lost it are redelivered
// (and counted) within the run.
func foSubscriberConfig(group string) millrace.SubscriberConfig {
	return millrace.SubscriberConfig{
		ConsumerGroup: group,
		ClaimMinIdle:  2 * time.Second,
		BlockTime:     200 * time.Millisecond,
		CloseTimeout:  time.Second,
	}
}

// foStart subscribes sub to topic and starts producers publishing with
// pub, each pausing interval between two messages.
func foStart(t *testing.T, name string, pub message.Publisher, sub *millrace.Subscriber, client redis.UniversalClient, topic, group string, producers int, interval time.Duration) *foRun {
	t.Helper()
	r := &foRun{
		t: t, name: name, pub: pub, client: client, topic: topic, group: group,
		stop:       make(chan struct{}),
		consumer:   make(chan struct{}),
		ackedAt:    map[string]time.Time{},
		deliveries: map[string]int{},
	}
	require.NoError(t, sub.SubscribeInitialize(topic))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	go r.consume(ch)
	for p := range producers {
		r.producers.Add(1)
		go r.produce(p, interval)
	}
	return r
}

func (r *foRun) consume(ch <-chan *message.Message) {
	defer close(r.consumer)
	for msg := range ch {
		now := time.Now()
		r.mu.Lock()
		r.deliveries[msg.UUID]++
		if !r.lastDelivery.IsZero() {
			r.maxGap = max(r.maxGap, now.Sub(r.lastDelivery))
		}
		r.lastDelivery = now
		r.mu.Unlock()
		msg.Ack()
	}
}

// foGiveUpAfterStop bounds how long a producer keeps retrying its last message
// after the run stopped.
const foGiveUpAfterStop = 15 * time.Second

func (r *foRun) produce(producer int, interval time.Duration) {
	defer r.producers.Done()
	var giveUp <-chan time.Time
	for seq := 0; ; seq++ {
		select {
		case <-r.stop:
			return
		default:
		}
		msg := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf("%s/%d/%d", r.name, producer, seq)))
		msg.Metadata.Set("seq", strconv.Itoa(seq))
		for {
			began := time.Now()
			err := r.pub.Publish(r.topic, msg)
			now := time.Now()
			r.mu.Lock()
			r.attempts++
			r.slowest = max(r.slowest, now.Sub(began))
			if err == nil {
				r.ackedAt[msg.UUID] = now
				if !r.failingSince.IsZero() {
					r.outage = max(r.outage, now.Sub(r.failingSince))
					r.failingSince = time.Time{}
				}
			} else {
				r.failures++
				r.lastErr = err
				if r.firstErr == nil {
					r.firstErr = err
				}
				if r.failingSince.IsZero() {
					r.failingSince = now
				}
			}
			r.mu.Unlock()
			if err == nil {
				break
			}
			if giveUp == nil {
				select {
				case <-r.stop:
					giveUp = time.After(foGiveUpAfterStop)
				default:
				}
			}
			select {
			case <-giveUp:
				r.mu.Lock()
				r.gaveUp++
				r.mu.Unlock()
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		time.Sleep(interval)
	}
}

func (r *foRun) lastDeliveryTime() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastDelivery
}

// acked returns the number of acknowledged messages.
func (r *foRun) acked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ackedAt)
}

// waitAcked waits until at least n messages were acknowledged.
func (r *foRun) waitAcked(n int) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.acked() < n {
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.t.Fatalf("%s: %d messages acknowledged after 30s, want %d; %d publish attempts failed, the last with: %v",
				r.name, len(r.ackedAt), n, r.failures, r.lastErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// foFigures is what a failover cost one run.
type foFigures struct {
	Attempts, Failures, GaveUp int
	Acked                      int // messages Publish acknowledged
	Delivered                  int // distinct messages delivered
	Lost                       int // acknowledged, never delivered
	LostAfter                  int // of Lost, acknowledged after the failover was over
	DuplicateDeliveries        int // deliveries beyond the first of a message
	DuplicateEntries           int // stream entries beyond the first of a message (publisher retries)
	UnackedDelivered           int // delivered although Publish never acknowledged them
	PendingAtEnd               int64
	Outage, Slowest, MaxGap    time.Duration
	FirstErr                   error
}

func (f foFigures) String() string {
	return fmt.Sprintf("acknowledged %d (attempts %d, failed %d, given up %d), delivered %d, LOST %d (after the failover: %d), "+
		"duplicate deliveries %d (duplicate entries from retries %d), delivered without acknowledgement %d, pending at end %d, "+
		"longest publish outage %s, slowest Publish call %s, longest delivery pause %s; first publish error: %v",
		f.Acked, f.Attempts, f.Failures, f.GaveUp, f.Delivered, f.Lost, f.LostAfter,
		f.DuplicateDeliveries, f.DuplicateEntries, f.UnackedDelivered, f.PendingAtEnd,
		f.Outage.Round(time.Millisecond), f.Slowest.Round(time.Millisecond), f.MaxGap.Round(time.Millisecond), f.FirstErr)
}

// finish stops the producers, waits (bounded) until every acknowledged
// message was delivered and the group has nothing pending, ends the
// subscription and returns the figures. failoverOver is when the topology
// was healthy again; messages acknowledged after it must never be lost.
func (r *foRun) finish(failoverOver time.Time) foFigures {
	r.t.Helper()
	close(r.stop)
	r.producers.Wait()
	allDelivered := func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for id := range r.ackedAt {
			if r.deliveries[id] == 0 {
				return false
			}
		}
		return true
	}
	// An entry still on its way comes within ClaimMinIdle plus a claim
	// scan (foSubscriberConfig); one that did not come after a longer quiet
	// time is lost.
	const quiet = 6 * time.Second
	deadline := time.Now().Add(20 * time.Second)
	for !allDelivered() && time.Now().Before(deadline) && time.Since(r.lastDeliveryTime()) < quiet {
		time.Sleep(20 * time.Millisecond)
	}
	var pending int64 = -1
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		p, err := r.client.XPending(ctx, r.topic, r.group).Result()
		cancel()
		if err == nil {
			pending = p.Count
			if pending == 0 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.cancel()
	<-r.consumer

	r.mu.Lock()
	defer r.mu.Unlock()
	f := foFigures{
		Attempts: r.attempts, Failures: r.failures, GaveUp: r.gaveUp, Acked: len(r.ackedAt),
		Delivered: len(r.deliveries), PendingAtEnd: pending, Outage: r.outage, Slowest: r.slowest, MaxGap: r.maxGap, FirstErr: r.firstErr,
	}
	for id, at := range r.ackedAt {
		if r.deliveries[id] == 0 {
			f.Lost++
			if at.After(failoverOver) {
				f.LostAfter++
			}
		}
	}
	for id, n := range r.deliveries {
		f.DuplicateDeliveries += n - 1
		if _, ok := r.ackedAt[id]; !ok {
			f.UnackedDelivered++
		}
	}
	f.DuplicateEntries = r.duplicateEntries()
	return f
}

// duplicateEntries counts the stream's entries whose message UUID an
// earlier entry already has: messages a producer retried after Publish
// failed although Redis had added them.
func (r *foRun) duplicateEntries() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := r.client.XRange(ctx, r.topic, "-", "+").Result()
	if err != nil {
		r.t.Logf("%s: XRANGE: %v", r.name, err)
		return -1
	}
	seen := map[string]bool{}
	dups := 0
	for _, m := range msgs {
		id, _ := m.Values["_watermill_message_uuid"].(string)
		if seen[id] {
			dups++
		}
		seen[id] = true
	}
	return dups
}

// topoSentinelClient is what an application would use: a universal client
// given the master name and the sentinels' addresses.
func topoSentinelClient(t *testing.T, st *redistest.Sentinel) redis.UniversalClient {
	o := st.Options()
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		MasterName:   st.MasterName,
		Addrs:        st.SentinelAddrs(),
		PoolSize:     o.PoolSize,
		DialTimeout:  o.DialTimeout,
		ReadTimeout:  o.ReadTimeout,
		WriteTimeout: o.WriteTimeout,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// foStartPair starts two loss runs on two topics, one whose publisher waits
// for a replica (Durability{Replicas: 1}) and one that does not, each with
// its own clients, as separate producer and consumer processes would have.
func foStartPair(t *testing.T, newClient func() redis.UniversalClient) (durable, plain *foRun) {
	t.Helper()
	start := func(name string, d millrace.Durability) *foRun {
		pubClient, subClient := newClient(), newClient()
		logger := topoQuietLogger(t, name)
		pub, err := millrace.NewPublisher(pubClient, millrace.PublisherConfig{Durability: d}, logger)
		require.NoError(t, err)
		t.Cleanup(func() { pub.Close() })
		sub, err := millrace.NewSubscriber(subClient, foSubscriberConfig("failover"), logger)
		require.NoError(t, err)
		t.Cleanup(func() { sub.Close() })
		return foStart(t, name, pub, sub, subClient, name+"-"+watermill.NewShortUUID(), "failover", 2, 2*time.Millisecond)
	}
	return start("wait", millrace.Durability{Replicas: 1}), start("nowait", millrace.Durability{})
}

// foReport logs both runs' figures and asserts what must hold: with
// WAIT nothing acknowledged is lost; with or without, nothing acknowledged
// after the failover is lost (the subscriptions resumed by themselves) and
// every producer got through again.
func foReport(t *testing.T, event string, durable, plain *foRun, over time.Time) {
	t.Helper()
	var fd, fp foFigures
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fp = plain.finish(over)
	}()
	fd = durable.finish(over)
	wg.Wait()
	t.Logf("%s, Durability{Replicas: 1}: %s", event, fd)
	t.Logf("%s, no Durability:           %s", event, fp)
	for _, f := range []foFigures{fd, fp} {
		assert.Zero(t, f.GaveUp, "a producer could not publish again after the failover")
		assert.Zero(t, f.LostAfter, "messages acknowledged after the failover were lost: the subscription did not resume")
		assert.Positive(t, f.Acked)
	}
	assert.Zero(t, fd.Lost, "acknowledged messages lost although Publish waited for a replica")
}

// SENTINEL FAILOVER under load: a master with one replica, three sentinels;
// publishers and subscribers follow the master through a universal client
// with MasterName.
func TestSentinel_Failover(t *testing.T) {
	t.Parallel()
	st := redistest.StartSentinel(t, 1, 3)
	durable, plain := foStartPair(t, func() redis.UniversalClient { return topoSentinelClient(t, st) })
	durable.waitAcked(200)
	plain.waitAcked(200)

	old := st.CurrentMaster(t)
	st.Failover(t)
	require.NotEqual(t, old, st.CurrentMaster(t))
	over := time.Now()
	n := durable.acked()
	durable.waitAcked(n + 200)
	plain.waitAcked(plain.acked() + 200)
	foReport(t, "SENTINEL FAILOVER", durable, plain, over)
}

// SIGKILL of the master under load: a master with two replicas, so that the
// new master still has one replica to confirm WAIT 1.
func TestSentinel_KillMaster(t *testing.T) {
	t.Parallel()
	st := redistest.StartSentinel(t, 2, 3)
	durable, plain := foStartPair(t, func() redis.UniversalClient { return topoSentinelClient(t, st) })
	durable.waitAcked(200)
	plain.waitAcked(200)

	old := st.CurrentMaster(t)
	killed := time.Now()
	st.Master.Kill()
	require.Eventually(t, func() bool { return st.CurrentMaster(t) != old }, 30*time.Second, 50*time.Millisecond, "sentinels elect a new master")
	t.Logf("sentinels announced a new master %s after %s", st.CurrentMaster(t), time.Since(killed).Round(time.Millisecond))
	// The failover is over once a message goes through with WAIT 1: the
	// new master accepts writes and a replica follows it.
	n := durable.acked()
	durable.waitAcked(n + 1)
	over := time.Now()
	t.Logf("durable publishing resumed %s after the kill", over.Sub(killed).Round(time.Millisecond))
	durable.waitAcked(n + 200)
	plain.waitAcked(plain.acked() + 200)
	foReport(t, "SIGKILL of the master", durable, plain, over)
}
