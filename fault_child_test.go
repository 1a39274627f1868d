package millrace_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/testchild"
)

// faultChildEnv carries a faultChildSpec (JSON) to a consumer process that
// re-runs the test binary: TestFaultChildConsumer reads it.
const faultChildEnv = "MILLRACE_FAULT_CHILD"

// faultChildLifetime bounds how long a child consumer runs: children are
// meant to be killed by their parent; this only keeps an orphan from
// lingering when the parent died without cleaning up.
const faultChildLifetime = 2 * time.Minute

// faultChildSpec tells a child consumer process what to consume and where to
// record what it handled. Everything is recorded in Redis, so that the parent
// counts across processes that were killed.
type faultChildSpec struct {
	URL      string
	Topic    string
	Group    string
	Consumer string

	ClaimMinIdle  time.Duration
	MaxDeliveries int
	MaxInFlight   int
	Prefetch      int
	HandlerDelay  time.Duration

	// StartedKey is a hash UUID → handler starts; HandledKey a hash
	// UUID → handler completions (recorded before the Ack); EntriesKey a
	// hash entry ID → handler completions.
	StartedKey string
	HandledKey string
	EntriesKey string
	// HistoryKey, when set, is a list getting one line per completed
	// handling: "entryID consumer deliveryCount unixMillis".
	HistoryKey string

	// PoisonUUID, when set, crashes the process (SIGKILL to itself) in the
	// handler of that message, after appending its delivery count to
	// PoisonKey (a list).
	PoisonUUID string
	PoisonKey  string
}

// TestFaultChildConsumer is the body of the consumer processes the fault
// tests start and kill. Run as an ordinary test (no faultChildEnv) it does
// nothing and passes.
func TestFaultChildConsumer(t *testing.T) {
	var spec faultChildSpec
	if testchild.Spec(t, faultChildEnv, &spec) {
		runFaultChild(spec)
	}
}

// runFaultChild consumes until the process is killed. It never returns: a
// child that must stop (parent gone, lifetime over, setup failed) exits the
// process directly, so that the test framework's leak check never runs in it.
func runFaultChild(spec faultChildSpec) {
	fail := func(what string, err error) { testchild.Fail(spec.Consumer, what, err) }
	opts, err := redis.ParseURL(spec.URL)
	if err != nil {
		fail("redis URL", err)
	}
	client := redis.NewClient(opts)
	sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		ConsumerGroup: spec.Group,
		Consumer:      spec.Consumer,
		ClaimMinIdle:  spec.ClaimMinIdle,
		MaxDeliveries: spec.MaxDeliveries,
		MaxInFlight:   spec.MaxInFlight,
		Prefetch:      spec.Prefetch,
		BlockTime:     200 * time.Millisecond,
	}, watermill.NewStdLogger(false, false))
	if err != nil {
		fail("NewSubscriber", err)
	}
	ch, err := sub.Subscribe(context.Background(), spec.Topic)
	if err != nil {
		fail("Subscribe", err)
	}

	testchild.ExitWithParent(faultChildLifetime)

	ctx := context.Background()
	handle := func(m *message.Message) {
		if spec.PoisonUUID != "" && m.UUID == spec.PoisonUUID {
			client.RPush(ctx, spec.PoisonKey, m.Metadata.Get(millrace.MetadataDeliveryCount))
			// A crash in the middle of the handler: no Ack, no Nack, no Close.
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		client.HIncrBy(ctx, spec.StartedKey, m.UUID, 1)
		if spec.HandlerDelay > 0 {
			time.Sleep(spec.HandlerDelay)
		}
		_, err := client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HIncrBy(ctx, spec.HandledKey, m.UUID, 1)
			p.HIncrBy(ctx, spec.EntriesKey, m.Metadata.Get(millrace.MetadataEntryID), 1)
			if spec.HistoryKey != "" {
				p.RPush(ctx, spec.HistoryKey, fmt.Sprintf("%s %s %s %d", m.Metadata.Get(millrace.MetadataEntryID),
					spec.Consumer, m.Metadata.Get(millrace.MetadataDeliveryCount), time.Now().UnixMilli()))
			}
			return nil
		})
		if err != nil {
			m.Nack()
			return
		}
		m.Ack()
	}
	for m := range ch {
		go handle(m)
	}
	os.Exit(5) // the channel closes only if the subscription ended
}

// startFaultChild starts a consumer process running spec. It is killed, if
// still running, when the test ends.
func startFaultChild(t *testing.T, spec faultChildSpec) *testchild.Child {
	t.Helper()
	return testchild.Start(t, "TestFaultChildConsumer", faultChildEnv, spec.Consumer, spec, faultChildLifetime)
}
