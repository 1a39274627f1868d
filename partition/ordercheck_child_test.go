package partition_test

import (
	"context"
	"hash/fnv"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/testchild"
	"github.com/millrace/millrace/partition"
)

// orderChildEnv carries an orderChildSpec (JSON) to a member process that
// re-runs the test binary: TestOrderChild reads it.
const orderChildEnv = "MILLRACE_ORDER_CHILD"

// orderChildLifetime bounds how long a member process runs: the parent
// stops it; this only keeps an orphan from lingering.
const orderChildLifetime = 40 * time.Minute

// orderChildSpec tells a member process what to consume and where to
// record what it handled.
type orderChildSpec struct {
	URL        string
	Topic      string
	Partitions int
	Group      string
	Member     string
	Lease      time.Duration
	Heartbeat  time.Duration
	// Record is the prefix of the lists "<Record><key>" that get one
	// "<seq> <member>" per handling, pushed before the Ack.
	Record string
	// NackPercent of first deliveries are Nacked instead of handled.
	NackPercent int
	// AckDelay is the handler's work after it recorded the message: a
	// member killed then has handled messages it did not acknowledge.
	AckDelay time.Duration
}

// TestOrderChild is the body of the member processes the order check
// starts, stops and kills. Run as an ordinary test (no orderChildEnv) it
// does nothing and passes.
func TestOrderChild(t *testing.T) {
	var spec orderChildSpec
	if testchild.Spec(t, orderChildEnv, &spec) {
		runOrderChild(spec)
	}
}

// runOrderChild is a member until SIGTERM (Close, then exit 0) or SIGKILL.
// It never returns: the process exits, so that the test framework's leak
// check never runs in it.
func runOrderChild(spec orderChildSpec) {
	fail := func(what string, err error) { testchild.Fail(spec.Member, what, err) }
	opts, err := redis.ParseURL(spec.URL)
	if err != nil {
		fail("redis URL", err)
	}
	opts.PoolSize = 4 * spec.Partitions
	client := redis.NewClient(opts)
	sub, err := partition.NewBalancedSubscriber(client, partition.BalancedConfig{
		Topics: map[string]int{spec.Topic: spec.Partitions},
		Subscriber: millrace.SubscriberConfig{
			ConsumerGroup: spec.Group, ConsumerLease: spec.Lease, MaxInFlight: 8,
			NackBackoff: 20 * time.Millisecond, CloseTimeout: 30 * time.Second,
		},
		Member:    spec.Member,
		Heartbeat: spec.Heartbeat,
	}, watermill.NewStdLogger(false, false))
	if err != nil {
		fail("NewBalancedSubscriber", err)
	}
	ch, err := sub.Subscribe(context.Background(), spec.Topic)
	if err != nil {
		fail("Subscribe", err)
	}
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	go func() {
		<-terms
		if err := sub.Close(); err != nil {
			fail("Close", err)
		}
	}()
	testchild.ExitWithParent(orderChildLifetime)

	ctx := context.Background()
	handle := func(m *message.Message) {
		if m.Metadata.Get(millrace.MetadataDeliveryCount) == "1" && nackFirst(m.UUID, spec.NackPercent) {
			m.Nack()
			return
		}
		key := m.Metadata.Get(partition.MetadataKey)
		if err := client.RPush(ctx, spec.Record+key, m.Metadata.Get("seq")+" "+spec.Member).Err(); err != nil {
			m.Nack()
			return
		}
		time.Sleep(spec.AckDelay)
		m.Ack()
	}
	for m := range ch {
		go handle(m)
	}
	os.Exit(0) // closed after SIGTERM
}

// nackFirst decides, the same way in every process, whether the first
// delivery of a message is Nacked.
func nackFirst(uuid string, percent int) bool {
	h := fnv.New32a()
	h.Write([]byte(uuid))
	return int(h.Sum32()%100) < percent
}

// startOrderChild starts a member process running spec. It is killed, if
// still running, when the test ends.
func startOrderChild(t *testing.T, spec orderChildSpec) *testchild.Child {
	t.Helper()
	return testchild.Start(t, "TestOrderChild", orderChildEnv, spec.Member, spec, orderChildLifetime)
}
