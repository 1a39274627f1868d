package millrace_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

// keyed returns a message with payload p and, unless key is "", metadata
// "k" = key.
func keyed(key, p string) *message.Message {
	msg := message.NewMessage(watermill.NewUUID(), []byte(p))
	if key != "" {
		msg.Metadata.Set("k", key)
	}
	return msg
}

// publishKeyed publishes "key:payload" pairs (key "" for none) in one call.
func publishKeyed(t *testing.T, pub message.Publisher, topic string, pairs ...string) {
	t.Helper()
	msgs := make([]*message.Message, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		msgs = append(msgs, keyed(pairs[i], pairs[i+1]))
	}
	require.NoError(t, pub.Publish(topic, msgs...))
}

// receiveSet receives n messages without acknowledging them and returns
// them by payload.
func receiveSet(t *testing.T, ch <-chan *message.Message, n int) map[string]*message.Message {
	t.Helper()
	got := map[string]*message.Message{}
	for range n {
		msg := receive(t, ch)
		got[string(msg.Payload)] = msg
	}
	return got
}

func payloads(msgs map[string]*message.Message) []string {
	var ps []string
	for p := range msgs {
		ps = append(ps, p)
	}
	return ps
}

// With an OrderingKey, messages of different keys (and without one) are in
// handlers at once, while the second message of a key waits for the first,
// also through a Nack of the first: in a group and in broadcast mode.
func TestOrderingKey_KeysInParallelOneKeyAtATime(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"group", "broadcast"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			topic := newTopic()
			cfg := millrace.SubscriberConfig{BlockTime: 100 * time.Millisecond, CloseTimeout: 300 * time.Millisecond}
			if mode == "group" {
				cfg = groupConfig("g")
			}
			cfg.MaxInFlight, cfg.OrderingKey, cfg.NackBackoff = 8, "k", 20*time.Millisecond
			ch := subscribe(t, e.subscriber(t, cfg), topic)
			pub := e.publisher(t, millrace.PublisherConfig{})
			publishKeyed(t, pub, topic, "a", "a1", "a", "a2", "b", "b1", "c", "c1", "", "n1", "", "n2")

			first := receiveSet(t, ch, 5)
			require.ElementsMatch(t, []string{"a1", "b1", "c1", "n1", "n2"}, payloads(first),
				"the first message of each key, and those without a key, in handlers at once")
			requireNoMessage(t, ch, 200*time.Millisecond) // a2 waits for a1
			for _, p := range []string{"b1", "c1", "n1", "n2"} {
				first[p].Ack()
			}
			requireNoMessage(t, ch, 100*time.Millisecond)

			first["a1"].Nack()
			again := receive(t, ch)
			require.Equal(t, "a1", string(again.Payload), "a Nacked message comes back before the next of its key")
			publishKeyed(t, pub, topic, "b", "b2")
			require.Equal(t, "b2", string(receive(t, ch).Payload), "other keys go on while a1 is retried")
			again.Ack()
			require.Equal(t, "a2", string(receive(t, ch).Payload))
		})
	}
}

// A message dead-lettered after MaxDeliveries frees its key.
func TestOrderingKey_DeadLetterFreesKey(t *testing.T) {
	t.Parallel()
	fx := newGroupTopic(t, func(cfg *millrace.SubscriberConfig) {
		cfg.MaxInFlight, cfg.OrderingKey, cfg.NackBackoff, cfg.MaxDeliveries = 4, "k", 10*time.Millisecond, 2
	})
	publishKeyed(t, fx.pub, fx.topic, "a", "a1", "a", "a2")
	for delivery := 1; delivery <= 2; delivery++ {
		msg := receive(t, fx.ch)
		require.Equal(t, "a1", string(msg.Payload), "delivery %d", delivery)
		msg.Nack()
	}
	next := receive(t, fx.ch)
	assert.Equal(t, "a2", string(next.Payload))
	next.Ack()
	dead := awaitDeadLetters(t, fx.client, millrace.DeadLetterTopic(fx.topic), 1)
	assert.Equal(t, "a1", string(dead[0].Payload))
}

// A subscriber restarted under the same name first gets back its pending
// entries (which carry no fields until claimed) ordered by key, like new
// ones.
func TestOrderingKey_OwnPendingAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	cfg := groupConfig("g")
	cfg.Consumer, cfg.MaxInFlight, cfg.OrderingKey = "w", 4, "k"
	pub := e.publisher(t, millrace.PublisherConfig{})
	publishKeyed(t, pub, topic, "a", "a1", "a", "a2", "b", "b1", "b", "b2", "", "n1")

	first := e.subscriber(t, cfg)
	ch := subscribe(t, first, topic)
	held := receiveSet(t, ch, 3)
	require.ElementsMatch(t, []string{"a1", "b1", "n1"}, payloads(held))
	require.NoError(t, first.Close()) // nothing acknowledged
	requireClosed(t, ch)
	require.EqualValues(t, 5, pendingCount(t, e.client, topic, "g"))

	ch = subscribe(t, e.subscriber(t, cfg), topic)
	again := receiveSet(t, ch, 3)
	require.ElementsMatch(t, []string{"a1", "b1", "n1"}, payloads(again))
	assert.Equal(t, "2", again["a1"].Metadata.Get(millrace.MetadataDeliveryCount))
	requireNoMessage(t, ch, 200*time.Millisecond)
	again["n1"].Ack()
	again["b1"].Ack()
	require.Equal(t, "b2", string(receive(t, ch).Payload))
	requireNoMessage(t, ch, 100*time.Millisecond)
	again["a1"].Ack()
	require.Equal(t, "a2", string(receive(t, ch).Payload))
}

// orderLog records the handling of keyed messages "key/seq" by concurrent
// handlers.
type orderLog struct {
	mu       sync.Mutex
	inFlight map[string]int
	attempts map[string][]int // seq of every handling, per key
	acked    map[string][]int
	active   int
	maxAct   int
	overlaps []string
}

func newOrderLog() *orderLog {
	return &orderLog{inFlight: map[string]int{}, attempts: map[string][]int{}, acked: map[string][]int{}}
}

func (l *orderLog) begin(key string, seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight[key]++
	if l.inFlight[key] > 1 {
		l.overlaps = append(l.overlaps, fmt.Sprintf("%s/%d with another of its key", key, seq))
	}
	l.attempts[key] = append(l.attempts[key], seq)
	l.active++
	l.maxAct = max(l.maxAct, l.active)
}

func (l *orderLog) end(key string, seq int, ack bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight[key]--
	l.active--
	if ack {
		l.acked[key] = append(l.acked[key], seq)
	}
}

// Many keys, slow handlers, Nacks: no key ever has two messages in
// handlers, each key's handlings never go back, and its acknowledgements
// are its messages in publish order.
func TestOrderingKey_ManyKeysWithNacks(t *testing.T) {
	t.Parallel()
	const keys, perKey = 20, 25
	fx := newGroupTopic(t, func(cfg *millrace.SubscriberConfig) {
		cfg.MaxInFlight, cfg.OrderingKey, cfg.NackBackoff, cfg.Prefetch = 8, "k", 5*time.Millisecond, 50
	})
	var msgs []*message.Message
	for seq := range perKey {
		for k := range keys {
			msgs = append(msgs, keyed("key"+strconv.Itoa(k), strconv.Itoa(seq)))
		}
	}
	require.NoError(t, fx.pub.Publish(fx.topic, msgs...))

	log := newOrderLog()
	rng := rand.New(rand.NewPCG(13, 13))
	var rngMu sync.Mutex
	nack := func() bool {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(6) == 0
	}
	var handlers sync.WaitGroup
	deadline := time.After(60 * time.Second)
	for acked := 0; acked < keys*perKey; {
		select {
		case msg := <-fx.ch:
			key := msg.Metadata.Get("k")
			seq, _ := strconv.Atoi(string(msg.Payload))
			log.begin(key, seq)
			ok := !nack()
			if ok {
				acked++
			}
			handlers.Add(1)
			go func() {
				defer handlers.Done()
				time.Sleep(time.Duration(seq%3) * time.Millisecond) // a handler's work
				log.end(key, seq, ok)
				if ok {
					msg.Ack()
				} else {
					msg.Nack()
				}
			}()
		case <-deadline:
			t.Fatalf("%d of %d messages acknowledged within 60s", acked, keys*perKey)
		}
	}
	handlers.Wait()

	log.mu.Lock()
	defer log.mu.Unlock()
	assert.Empty(t, log.overlaps, "a key with two messages in handlers")
	want := make([]int, perKey)
	for i := range want {
		want[i] = i
	}
	for k := range keys {
		key := "key" + strconv.Itoa(k)
		assert.Equal(t, want, log.acked[key], "acknowledgements of %s", key)
		assert.IsNonDecreasing(t, log.attempts[key], "handlings of %s", key)
	}
	t.Logf("at most %d messages in handlers at once", log.maxAct)
	requireNoPending(t, fx.client, fx.topic, "g")
}
