package partition_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/membership"
	"github.com/millrace/millrace/partition"
)

// balancedConfig is a group "g" on topic's n partitions with short timings.
func balancedConfig(topic string, n int, member string) partition.BalancedConfig {
	return partition.BalancedConfig{
		Topics: map[string]int{topic: n},
		Subscriber: millrace.SubscriberConfig{
			ConsumerGroup: "g", MaxInFlight: 4, ConsumerLease: 2 * time.Second,
			BlockTime: 100 * time.Millisecond, NackBackoff: 10 * time.Millisecond,
		},
		Member:    member,
		Heartbeat: 100 * time.Millisecond,
	}
}

func newBalanced(t *testing.T, client redis.UniversalClient, cfg partition.BalancedConfig) *partition.BalancedSubscriber {
	t.Helper()
	sub, err := partition.NewBalancedSubscriber(client, cfg, testLogger)
	closeAtEnd(t, sub, err)
	return sub
}

// awaitShares waits until the members of group "g" on topic are exactly
// want, none leaving, and own every one of the n partitions, evenly; it
// returns who owns what.
func awaitShares(t *testing.T, client redis.UniversalClient, topic string, n int, want ...string) map[string][]int {
	t.Helper()
	var last membership.View
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		v, err := membership.Read(context.Background(), client, topic, "g")
		require.NoError(t, err)
		last = v
		if shares, ok := even(v, n, want); ok {
			return shares
		}
		time.Sleep(20 * time.Millisecond) // polling the group's state: no event to wait for
	}
	t.Fatalf("members %v do not share %d partitions evenly: %+v", want, n, last.Members)
	return nil
}

func even(v membership.View, n int, want []string) (map[string][]int, bool) {
	if len(v.Members) != len(want) {
		return nil, false
	}
	shares := map[string][]int{}
	owned := map[int]bool{}
	for _, m := range v.Members {
		if m.Leaving || !slices.Contains(want, m.Name) {
			return nil, false
		}
		if len(m.Owned) < n/len(want) || len(m.Owned) > (n+len(want)-1)/len(want) {
			return nil, false
		}
		for _, p := range m.Owned {
			owned[p] = true
		}
		shares[m.Name] = m.Owned
	}
	return shares, len(owned) == n
}

// handled records, per key, the sequence numbers handled, in order.
type handled struct {
	mu    sync.Mutex
	byKey map[string][]int
	total int
	cond  chan struct{} // closed and replaced on every record
}

func newHandled() *handled { return &handled{byKey: map[string][]int{}, cond: make(chan struct{})} }

// consume handles ch's messages until it closes: records them, then acks.
func (h *handled) consume(ch <-chan *message.Message) {
	for msg := range ch {
		seq, _ := strconv.Atoi(msg.Metadata.Get("seq"))
		if seq%7 == 0 {
			time.Sleep(time.Millisecond) // some work, so that messages are in handlers during handovers
		}
		h.mu.Lock()
		key := msg.Metadata.Get(partition.MetadataKey)
		h.byKey[key] = append(h.byKey[key], seq)
		h.total++
		close(h.cond)
		h.cond = make(chan struct{})
		h.mu.Unlock()
		msg.Ack()
	}
}

// await waits until n messages were handled.
func (h *handled) await(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		h.mu.Lock()
		total, cond := h.total, h.cond
		h.mu.Unlock()
		if total >= n {
			return
		}
		select {
		case <-cond:
		case <-timeout:
			t.Fatalf("%d of %d messages handled", total, n)
		}
	}
}

// Members that join and leave share the partitions evenly, move few, and
// hand each partition over in order: every message is handled once, and
// each key's messages in publish order.
func TestBalanced_JoinAndLeave(t *testing.T) {
	t.Parallel()
	client := redisClient(t)
	topic := newTopic()
	const n, perBatch = 6, 20
	keys := partKeys(12)
	pub := newPublisher(t, client, partition.Config{Topics: map[string]int{topic: n}})
	h := newHandled()
	var consumers sync.WaitGroup
	t.Cleanup(consumers.Wait) // after the subscribers' Close, which closes the channels
	join := func(name string) *partition.BalancedSubscriber {
		sub := newBalanced(t, client, balancedConfig(topic, n, name))
		ch, err := sub.Subscribe(context.Background(), topic)
		require.NoError(t, err)
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			h.consume(ch)
		}()
		return sub
	}
	seq := 0
	publishBatch := func() {
		for _, key := range keys {
			msgs := make([]*message.Message, perBatch)
			for i := range msgs {
				msgs[i] = partMessage(key, seq+i)
			}
			require.NoError(t, pub.Publish(topic, msgs...))
		}
		seq += perBatch
	}

	a := join("a")
	assert.Equal(t, map[string][]int{"a": {0, 1, 2, 3, 4, 5}}, awaitShares(t, client, topic, n, "a"))
	publishBatch()
	join("b")
	publishBatch()
	two := awaitShares(t, client, topic, n, "a", "b")
	assert.Subset(t, []int{0, 1, 2, 3, 4, 5}, two["a"], "a keeps some of its own")
	c := join("c")
	publishBatch()
	three := awaitShares(t, client, topic, n, "a", "b", "c")
	assert.Subset(t, two["a"], three["a"], "sticky")
	assert.Subset(t, two["b"], three["b"], "sticky")
	require.NoError(t, a.Close())
	publishBatch()
	after := awaitShares(t, client, topic, n, "b", "c")
	assert.Subset(t, after["b"], three["b"], "sticky")
	assert.Subset(t, after["c"], three["c"], "sticky")
	require.NoError(t, c.Close())
	publishBatch()
	awaitShares(t, client, topic, n, "b")

	h.await(t, len(keys)*seq)
	h.mu.Lock()
	for _, key := range keys {
		want := make([]int, seq)
		for i := range want {
			want[i] = i
		}
		assert.Equal(t, want, h.byKey[key], "key %s: once each, in order", key)
	}
	h.mu.Unlock()
	parts, err := partition.Topics(topic, n)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return pending(t, client, "g", parts...) == 0 }, 5*time.Second, 10*time.Millisecond)
	consumersOf := map[string]bool{}
	for i, pt := range parts {
		cs, err := client.XInfoConsumers(context.Background(), pt, "g").Result()
		require.NoError(t, err)
		for _, cons := range cs {
			consumersOf[cons.Name] = true
			assert.Equal(t, fmt.Sprintf("g-p%d", i), cons.Name, "partition %d is read under its own name only", i)
		}
	}
	assert.Len(t, consumersOf, n)
}

// The configuration is checked before anything runs.
func TestBalanced_Config(t *testing.T) {
	t.Parallel()
	client := redisClient(t)
	valid := balancedConfig("orders", 4, "m")
	_, err := partition.NewBalancedSubscriber(nil, valid, nil)
	assert.ErrorIs(t, err, millrace.ErrNilClient)
	for name, change := range map[string]func(*partition.BalancedConfig){
		"no group":          func(c *partition.BalancedConfig) { c.Subscriber.ConsumerGroup = "" },
		"consumer":          func(c *partition.BalancedConfig) { c.Subscriber.Consumer = "w" },
		"rename":            func(c *partition.BalancedConfig) { c.Subscriber.RenameTakenConsumer = true },
		"no lease":          func(c *partition.BalancedConfig) { c.Subscriber.ConsumerLease = -1 },
		"slow heartbeat":    func(c *partition.BalancedConfig) { c.Heartbeat = time.Second },
		"bad topic":         func(c *partition.BalancedConfig) { c.Topics = map[string]int{"a}": 2} },
		"bad subscriber":    func(c *partition.BalancedConfig) { c.Subscriber.Prefetch = -1 },
		"negative interval": func(c *partition.BalancedConfig) { c.Heartbeat = -time.Millisecond },
	} {
		cfg := valid
		change(&cfg)
		_, err := partition.NewBalancedSubscriber(client, cfg, nil)
		assert.Error(t, err, name)
	}
	sub, err := partition.NewBalancedSubscriber(client, partition.BalancedConfig{Subscriber: millrace.SubscriberConfig{ConsumerGroup: "g"}}, nil)
	require.NoError(t, err)
	assert.NotEmpty(t, sub.Member(), "a generated member name")
	require.NoError(t, sub.Close())
	_, err = sub.Subscribe(context.Background(), "orders")
	assert.ErrorIs(t, err, millrace.ErrSubscriberClosed, "an unlisted topic goes to the plain subscriber")
}

// A partition that another member also reports owning (one that lost its
// lease while away and came back) is released, and taken again once the
// other stops reporting it.
func TestBalanced_ContestedPartitionReleased(t *testing.T) {
	t.Parallel()
	client := redisClient(t)
	topic := newTopic()
	const n = 2
	sub := newBalanced(t, client, balancedConfig(topic, n, "a"))
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	h := newHandled()
	go h.consume(ch)
	awaitShares(t, client, topic, n, "a")

	ghost := func() {
		_, err := membership.Beat(context.Background(), client, topic, "g", "ghost", time.Minute,
			membership.Record{Partitions: n, Owned: []int{1}, Leaving: true})
		require.NoError(t, err)
	}
	ghost()
	require.Eventually(t, func() bool {
		v, err := membership.Read(context.Background(), client, topic, "g")
		require.NoError(t, err)
		return len(v.Members) == 2 && slices.Equal(v.Members[0].Owned, []int{0})
	}, time.Minute, 10*time.Millisecond, "a keeps partition 0 and releases the contested 1")
	_, err = membership.Leave(context.Background(), client, topic, "g", "ghost")
	require.NoError(t, err)
	awaitShares(t, client, topic, n, "a")
}
