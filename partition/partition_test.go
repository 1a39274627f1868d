package partition_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
	"github.com/millrace/millrace/partition"
)

func TestTopics(t *testing.T) {
	t.Parallel()
	topics, err := partition.Topics("orders", 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"{orders#0}", "{orders#1}", "{orders#2}"}, topics)

	topics, err = partition.Topics("a{b", 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"{a{b#0}", "{a{b#1}"}, topics, "a '{' inside the tag is harmless")

	for _, tc := range []struct {
		topic string
		n     int
	}{{"", 1}, {"orders", 0}, {"orders", -1}, {"a}b", 2}, {"{orders}", 2}} {
		_, err := partition.Topics(tc.topic, tc.n)
		assert.Error(t, err, "Topics(%q, %d)", tc.topic, tc.n)
	}

	// 32-bit FNV-1a: fixed values, so producers in other languages agree.
	assert.Equal(t, int(uint32(0x811c9dc5)%7), partition.Of("", 7))
	assert.Equal(t, int(uint32(0xe40c292c)%1000), partition.Of("a", 1000))
	assert.Equal(t, 0, partition.Of("anything", 1))
	assert.Panics(t, func() { partition.Of("a", 0) })

	_, err = partition.Topics("", 1)
	assert.ErrorIs(t, err, partition.ErrEmptyTopic)
	_, err = partition.NewPublisher(nil, partition.Config{})
	assert.ErrorIs(t, err, partition.ErrNilPublisher)
	_, err = partition.NewSubscriber(nil, partition.Config{})
	assert.ErrorIs(t, err, partition.ErrNilSubscriber)
	_, err = partition.NewPublisher(&millrace.Publisher{}, partition.Config{Topics: map[string]int{"a}": 2}})
	assert.ErrorContains(t, err, "contains '}'")
	pub, err := partition.NewPublisher(&millrace.Publisher{}, partition.Config{Topics: map[string]int{"orders": 2}})
	require.NoError(t, err)
	assert.ErrorIs(t, pub.Publish("orders", nil), partition.ErrNilMessage)
}

// TestTopics_DistinctSlots: the partitions of a topic hash to
// different slots, and each partition's dead-letter stream shares its slot.
func TestTopics_DistinctSlots(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{"cluster-enabled yes", "cluster-config-file nodes.conf"}})
	c := srv.Client(t)
	slot := func(key string) int64 {
		s, err := c.ClusterKeySlot(context.Background(), key).Result()
		require.NoError(t, err)
		return s
	}
	for _, topic := range []string{"orders", "svc:payments", "a{b", "{"} {
		parts, err := partition.Topics(topic, 8)
		require.NoError(t, err)
		slots := map[int64]bool{}
		for _, pt := range parts {
			slots[slot(pt)] = true
			assert.Equal(t, slot(pt), slot(millrace.DeadLetterTopic(pt)), "dead letters of %s", pt)
			assert.Equal(t, slot(pt), slot(millrace.DelayedKey(pt)), "delayed set of %s", pt)
		}
		assert.Len(t, slots, len(parts), "partitions of %q in distinct slots", topic)
	}
}

// partMessage is message seq of key, with key as its partition key.
func partMessage(key string, seq int) *message.Message {
	msg := message.NewMessage(watermill.NewUUID(), []byte(key+"/"+strconv.Itoa(seq)))
	msg.Metadata.Set(partition.MetadataKey, key)
	msg.Metadata.Set("seq", strconv.Itoa(seq))
	return msg
}

// partPublish publishes perKey messages for each key, each key's messages in
// order from its own goroutine; every third call carries two messages of the
// key, and a few calls mix keys, so calls are split over partitions.
func partPublish(t *testing.T, pub message.Publisher, topic string, keys []string, perKey int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(keys)+1)
	for _, key := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; seq < perKey; {
				msgs := []*message.Message{partMessage(key, seq)}
				if seq%3 == 0 && seq+1 < perKey {
					msgs = append(msgs, partMessage(key, seq+1))
				}
				if err := pub.Publish(topic, msgs...); err != nil {
					errs <- err
					return
				}
				seq += len(msgs)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// partOrder records deliveries of keyed messages and checks per-key order.
type partOrder struct {
	mu       sync.Mutex
	next     map[string]int // next expected seq per key
	got      int
	byPart   map[int]int
	outOfSeq []string
}

func newPartOrder() *partOrder {
	return &partOrder{next: map[string]int{}, byPart: map[int]int{}}
}

func (o *partOrder) record(msg *message.Message, partitions int) {
	key := msg.Metadata.Get(partition.MetadataKey)
	seq, _ := strconv.Atoi(msg.Metadata.Get("seq"))
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq != o.next[key] {
		o.outOfSeq = append(o.outOfSeq, fmt.Sprintf("%s: got %d, want %d", key, seq, o.next[key]))
	}
	o.next[key] = seq + 1
	o.got++
	o.byPart[partition.Of(key, partitions)]++
}

func (o *partOrder) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.got
}

// partConsume acks every message of ch into check until want arrived.
func partConsume(t *testing.T, ch <-chan *message.Message, check *partOrder, partitions, want int, handle func(*message.Message)) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for check.count() < want {
		select {
		case msg, ok := <-ch:
			require.True(t, ok, "channel closed after %d of %d messages", check.count(), want)
			check.record(msg, partitions)
			if handle != nil {
				handle(msg)
			}
			msg.Ack()
		case <-deadline:
			t.Fatalf("received %d of %d messages", check.count(), want)
		}
	}
}

func partKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("customer-%d", i)
	}
	return keys
}

// A partitioned topic is published over its partitions by key and consumed
// through one merged channel: every partition is consumed, each key's
// messages arrive once and in order, and nothing goes to the unpartitioned
// stream.
func TestPerKeyOrder(t *testing.T) {
	t.Parallel()
	checkPerKeyOrder(t, redisClient(t), newTopic(), 3, 40)
}

// checkPerKeyOrder publishes perKey messages for each of 12 keys to topic,
// split into partitions, and consumes them through one merged channel:
// every partition is consumed, each key's messages arrive once and in
// order, every entry is acked, and nothing goes to the unpartitioned stream.
func checkPerKeyOrder(t *testing.T, client redis.UniversalClient, topic string, partitions, perKey int) {
	t.Helper()
	cfg := partition.Config{Topics: map[string]int{topic: partitions}}
	keys := partKeys(12)

	pub := newPublisher(t, client, cfg)
	sub := newSubscriber(t, client, groupConfig("workers"), cfg)
	require.NoError(t, sub.SubscribeInitialize(topic))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)

	partPublish(t, pub, topic, keys, perKey)
	check := newPartOrder()
	partConsume(t, ch, check, partitions, len(keys)*perKey, nil)
	assert.Empty(t, check.outOfSeq, "per-key order")
	requireNoMessage(t, ch, 200*time.Millisecond)

	parts, _ := partition.Topics(topic, partitions)
	for i, pt := range parts {
		assert.Positive(t, check.byPart[i], "messages consumed from partition %s", pt)
		assert.EqualValues(t, check.byPart[i], xlen(t, client, pt), "entries of partition %s", pt)
		require.Eventually(t, func() bool { return pending(t, client, "workers", pt) == 0 }, 5*time.Second, 20*time.Millisecond)
	}
	assert.Zero(t, xlen(t, client, topic), "nothing in the unpartitioned stream")

	cancel()
	requireClosed(t, ch)
	require.NoError(t, sub.Close())
}

// Two consumers of one group with disjoint partitions (Assigned) share the
// work and still keep per-key order; every partition is consumed.
func TestAssignedConsumers(t *testing.T) {
	t.Parallel()
	client := redisClient(t)
	topic := newTopic()
	const partitions, perKey = 4, 25
	keys := partKeys(16)
	base := partition.Config{Topics: map[string]int{topic: partitions}}
	pub := newPublisher(t, client, base)

	check := newPartOrder()
	var wrongOwner atomic.Int32
	want := map[int]int{}
	for _, key := range keys {
		want[partition.Of(key, partitions)%2] += perKey
	}
	subs := make([]*partition.Subscriber, 2)
	chans := make([]<-chan *message.Message, 2)
	for i := range subs {
		cfg := base
		cfg.Assigned = func(_ string, p int) bool { return p%2 == i }
		subs[i] = newSubscriber(t, client, groupConfig("workers"), cfg)
		var err error
		chans[i], err = subs[i].Subscribe(context.Background(), topic)
		require.NoError(t, err)
	}
	partPublish(t, pub, topic, keys, perKey)
	// Each consumer's subscriptions run all along; reading one channel
	// after the other is enough to see who gets what.
	for i := range subs {
		own := newPartOrder()
		partConsume(t, chans[i], own, partitions, want[i], func(msg *message.Message) {
			if partition.Of(msg.Metadata.Get(partition.MetadataKey), partitions)%2 != i {
				wrongOwner.Add(1)
			}
			check.record(msg, partitions)
		})
	}
	for _, ch := range chans {
		requireNoMessage(t, ch, 100*time.Millisecond)
	}
	assert.Equal(t, len(keys)*perKey, check.count())
	assert.Empty(t, check.outOfSeq, "per-key order across the two consumers")
	assert.Zero(t, wrongOwner.Load(), "messages of a partition assigned to the other consumer")
	for p := range partitions {
		assert.Positive(t, check.byPart[p], "partition %d consumed", p)
	}
	for _, sub := range subs {
		require.NoError(t, sub.Close())
	}
	for _, ch := range chans {
		requireClosedNow(t, ch)
	}

	cfg := base
	cfg.Assigned = func(string, int) bool { return false }
	none := newSubscriber(t, client, groupConfig("workers"), cfg)
	_, err := none.Subscribe(context.Background(), topic)
	assert.ErrorIs(t, err, partition.ErrNoneAssigned)
}

// Topics not listed in the config pass through both wrappers unchanged.
func TestUnlistedTopicPassesThrough(t *testing.T) {
	t.Parallel()
	client := redisClient(t)
	topic := newTopic()
	cfg := partition.Config{Topics: map[string]int{"other": 4}}
	pub := newPublisher(t, client, cfg)
	sub := newSubscriber(t, client, groupConfig("g"), cfg)
	require.NoError(t, sub.SubscribeInitialize(topic))
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)

	sent := newMessages(1)
	require.NoError(t, pub.Publish(topic, sent...))
	got := receive(t, ch)
	assert.Equal(t, sent[0].UUID, got.UUID)
	got.Ack()
	assert.EqualValues(t, 1, xlen(t, client, topic))
	require.NoError(t, sub.Close())
	requireClosedNow(t, ch)
}

// Close returns promptly while a merged message waits unread: the message
// is nacked, stays pending, and a new subscriber gets it. Cancelling the
// context of a subscription closes its channel; Subscribe after Close fails.
func TestCloseAndCancel(t *testing.T) {
	t.Parallel()
	client := redisClient(t)
	topic := newTopic()
	cfg := partition.Config{Topics: map[string]int{topic: 3}}
	pub := newPublisher(t, client, cfg)
	subCfg := groupConfig("g")
	subCfg.CloseTimeout = 10 * time.Second // Close must not need it

	sub := newSubscriber(t, client, subCfg, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelled, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	held, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	cancel()
	requireClosed(t, cancelled)

	sent := newMessages(4)
	require.NoError(t, pub.Publish(topic, sent...))
	// Wait until the partitions' subscriptions have read every entry: their
	// messages are on their way to a merged channel nobody reads.
	parts, err := partition.Topics(topic, 3)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return pending(t, client, "g", parts...) == int64(len(sent)) },
		5*time.Second, 10*time.Millisecond)
	start := time.Now()
	require.NoError(t, sub.Close())
	assert.Less(t, time.Since(start), 5*time.Second, "Close waited for an unread message")
	requireClosed(t, held)
	require.NoError(t, sub.Close(), "idempotent")
	_, err = sub.Subscribe(context.Background(), topic)
	require.ErrorIs(t, err, partition.ErrSubscriberClosed)

	again := newSubscriber(t, client, groupConfig("g"), cfg)
	ch, err := again.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	got := map[string]bool{}
	for len(got) < len(sent) {
		msg := receive(t, ch)
		got[msg.UUID] = true
		msg.Ack()
	}
	for _, m := range sent {
		assert.True(t, got[m.UUID], "message %s redelivered", m.UUID)
	}
	require.NoError(t, again.Close())
}

// BenchmarkPartitions measures a hot topic end to end on a 3-master Cluster
// with 1 and with 3 partitions: 32 goroutines publish b.N keyed messages
// while one subscriber per partition set consumes and acks them through the
// merged channel. The topic is chosen so that its 3 partitions sit on 3
// different masters. Run without -race:
//
//	go test -run '^$' -bench Partitions -benchtime 20000x .
func BenchmarkPartitions(b *testing.B) {
	cl := redistest.StartCluster(b, 3, 0)
	topic := ""
	for i := 0; topic == "" && i < 1000; i++ {
		candidate := fmt.Sprintf("hot%d", i)
		parts, _ := partition.Topics(candidate, 3)
		owners := map[*redistest.Server]bool{}
		for _, pt := range parts {
			owners[cl.MasterFor(b, pt)] = true
		}
		if len(owners) == 3 {
			topic = candidate
		}
	}
	require.NotEmpty(b, topic)
	for _, partitions := range []int{1, 3} {
		b.Run(fmt.Sprintf("partitions=%d", partitions), func(b *testing.B) {
			// Each run's topic is new, so b.N's ramp-up runs do not
			// share streams; with 3 partitions it is topic itself.
			t := topic
			if partitions == 1 {
				t = fmt.Sprintf("single-%s-%d", topic, b.N)
			} else {
				b.Cleanup(func() { cl.Client(b).Del(context.Background(), "{"+topic+"#0}", "{"+topic+"#1}", "{"+topic+"#2}") })
			}
			benchPartitions(b, cl, t, partitions)
		})
	}
}

func benchPartitions(b *testing.B, cl *redistest.Cluster, topic string, partitions int) {
	client := cl.Client(b)
	cfg := partition.Config{Topics: map[string]int{topic: partitions}}
	inner, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, nil)
	require.NoError(b, err)
	pub, err := partition.NewPublisher(inner, cfg)
	require.NoError(b, err)
	defer pub.Close()
	innerSub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{ConsumerGroup: "bench", CloseTimeout: time.Second}, nil)
	require.NoError(b, err)
	sub, err := partition.NewSubscriber(innerSub, cfg)
	require.NoError(b, err)
	defer sub.Close()
	require.NoError(b, sub.SubscribeInitialize(topic))
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(b, err)

	const publishers = 32
	payload := make([]byte, 16)
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				msg := message.NewMessage(watermill.NewUUID(), payload)
				msg.Metadata.Set(partition.MetadataKey, strconv.FormatInt(i%1000, 10))
				if err := pub.Publish(topic, msg); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	published := make(chan time.Duration, 1)
	go func() {
		wg.Wait()
		published <- time.Since(start)
	}()
	for range b.N {
		msg := <-ch
		msg.Ack()
	}
	elapsed := time.Since(start)
	pubElapsed := <-published
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	b.ReportMetric(float64(b.N)/pubElapsed.Seconds(), "published/s")
}
