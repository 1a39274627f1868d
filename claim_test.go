package millrace_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

const claimMinIdle = 300 * time.Millisecond

func claimConfig(consumer string) millrace.SubscriberConfig {
	cfg := groupConfig("g")
	cfg.Consumer = consumer
	cfg.ClaimMinIdle = claimMinIdle
	return cfg
}

// The entries a crashed consumer read and never acknowledged are claimed by
// a live consumer once idle for ClaimMinIdle, with Redis's delivery count.
func TestClaim_DeadConsumersEntries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	sent := publish(t, pub, topic, "orphan-1", "orphan-2")
	readAt := time.Now() // no later than the delivery time Redis records
	require.Len(t, readAs(t, e.client, topic, "g", "dead", 10), 2)

	ch := subscribe(t, e.subscriber(t, claimConfig("alive")), topic)
	for _, want := range sent {
		m := receive(t, ch)
		assert.Equal(t, want.UUID, m.UUID)
		assert.GreaterOrEqual(t, time.Since(readAt), claimMinIdle, "claimed before ClaimMinIdle")
		assert.Equal(t, "2", m.Metadata.Get(millrace.MetadataDeliveryCount))
		p, ok := pendingEntry(t, e.client, topic, "g", m.Metadata.Get(millrace.MetadataEntryID))
		require.True(t, ok)
		assert.Equal(t, "alive", p.Consumer)
		assert.EqualValues(t, 2, p.RetryCount)
		m.Ack()
	}
	requireNoPending(t, e.client, topic, "g")
	requireNoMessage(t, ch, 2*claimMinIdle)
}

// An entry deleted from the stream (XDEL) while pending is cleared from the
// PEL and never delivered, whether it is found by the claimer (another
// consumer's entry) or by the reader (this consumer's own pending entry).
func TestClaim_DeletedPendingEntryCleared(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})
	for name, tc := range map[string]struct {
		reader string // the consumer that read the entries and died
		cfg    millrace.SubscriberConfig
	}{
		"another consumer's, claimed": {reader: "dead", cfg: claimConfig("alive")},
		"own, at restart":             {reader: "worker-1", cfg: func() millrace.SubscriberConfig { c := groupConfig("g"); c.Consumer = "worker-1"; return c }()},
	} {
		t.Run(name, func(t *testing.T) {
			topic := newTopic()
			sent := publish(t, pub, topic, "deleted", "kept")
			read := readAs(t, e.client, topic, "g", tc.reader, 10)
			require.Len(t, read, 2)
			require.NoError(t, e.client.XDel(context.Background(), topic, read[0].ID).Err())

			ch := subscribe(t, e.subscriber(t, tc.cfg), topic)
			m := receive(t, ch)
			assert.Equal(t, sent[1].UUID, m.UUID, "the deleted entry must not be delivered")
			m.Ack()
			require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") == 0 }, 5*time.Second, 10*time.Millisecond,
				"the deleted entry stays in the PEL")
			requireNoMessage(t, ch, 2*claimMinIdle)
		})
	}
}

// A handler slower than ClaimMinIdle keeps its messages: the subscription
// extends their leases, so the other consumer of the group never claims
// them, and each message is handled exactly once.
func TestClaim_SlowHandlerKeepsItsLease(t *testing.T) {
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})

	type delivery struct {
		consumer string
		uuid     string
		count    string
	}
	deliveries := make(chan delivery, 100)
	var handlers sync.WaitGroup
	t.Cleanup(handlers.Wait) // runs after the subscribers are closed
	handle := func(consumer string, ch <-chan *message.Message) {
		handlers.Go(func() {
			for m := range ch {
				deliveries <- delivery{consumer, m.UUID, m.Metadata.Get(millrace.MetadataDeliveryCount)}
				select {
				case <-time.After(3 * claimMinIdle): // the slow work
				case <-m.Context().Done():
				}
				m.Ack()
			}
		})
	}
	for _, name := range []string{"a", "b"} {
		handle(name, subscribe(t, e.subscriber(t, claimConfig(name)), topic))
	}

	sent := publish(t, pub, topic, "slow-1", "slow-2")
	got := map[string][]delivery{}
	for range sent {
		select {
		case d := <-deliveries:
			got[d.uuid] = append(got[d.uuid], d)
		case <-time.After(10 * time.Second):
			t.Fatal("messages not delivered")
		}
	}
	// Both are acknowledged after at most two slow handlings in a row.
	require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") == 0 }, 10*time.Second, 10*time.Millisecond)
	// Anything claimed by the other consumer would have arrived meanwhile;
	// give a late claim one more chance.
	deadline := time.After(3 * claimMinIdle)
collect:
	for {
		select {
		case d := <-deliveries:
			got[d.uuid] = append(got[d.uuid], d)
		case <-deadline:
			break collect
		}
	}
	for _, m := range sent {
		ds := got[m.UUID]
		require.Len(t, ds, 1, "message %s delivered %d times: %+v", m.Payload, len(ds), ds)
		assert.Equal(t, "1", ds[0].count)
	}
}
