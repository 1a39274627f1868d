package millrace_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/millrace/millrace"
)

// suiteConfig is the subscriber configuration of the universal suite: the
// defaults, except a short CloseTimeout. Several tests close subscribers
// whose last message is never acknowledged (the multiplier of
// TestConcurrentSubscribe closes 50 of them one after another), and Close
// waits that long for each.
func suiteConfig(group string) millrace.SubscriberConfig {
	return millrace.SubscriberConfig{
		ConsumerGroup: group,
		ClaimMinIdle:  5 * time.Second,
		CloseTimeout:  200 * time.Millisecond,
	}
}

// constructors builds the suite's constructors over one Redis server. group
// gives the consumer group of each PubSubConstructor call.
func constructors(e *env, group func() string, tweak func(*millrace.SubscriberConfig)) (tests.PubSubConstructor, tests.ConsumerGroupPubSubConstructor) {
	withGroup := func(t *testing.T, g string) (message.Publisher, message.Subscriber) {
		cfg := suiteConfig(g)
		if tweak != nil {
			tweak(&cfg)
		}
		return e.publisher(t, millrace.PublisherConfig{}), e.subscriber(t, cfg)
	}
	return func(t *testing.T) (message.Publisher, message.Subscriber) { return withGroup(t, group()) }, withGroup
}

// Run (a): every constructor call joins one fixed group, so the subscribers
// of a test compete for its messages and take over each other's pending
// entries when one closes.
func TestPubSub_SharedGroup(t *testing.T) {
	e := newEnv(t)
	ctor, groupCtor := constructors(e, func() string { return "millrace_test" }, nil)
	tests.TestPubSub(t, tests.Features{
		ConsumerGroups:                      true,
		Persistent:                          true,
		GuaranteedOrderWithSingleSubscriber: true,
	}, ctor, groupCtor)
}

// Run (b): a new group per constructor call, so every subscriber reads the
// whole history of its topic.
func TestPubSub_GroupPerSubscriber(t *testing.T) {
	e := newEnv(t)
	ctor, groupCtor := constructors(e, func() string { return "g_" + watermill.NewShortUUID() }, nil)
	tests.TestPubSub(t, tests.Features{
		ConsumerGroups:                      true,
		Persistent:                          true,
		GuaranteedOrderWithSingleSubscriber: true,
		NewSubscriberReceivesOldMessages:    true,
	}, ctor, groupCtor)
}

// Run (c): the suite's reconnect test restarts this test's own redis-server
// (AOF, appendfsync always) twice while 10,000 messages flow.
//
// Watermill's TestReconnect appends to a slice in one goroutine and reads it
// in another without synchronisation, which -race reports as a race in the
// suite itself; `make test` therefore runs this test once more without
// -race, and a -race build skips it.
func TestPubSub_Reconnect(t *testing.T) {
	if raceEnabled {
		t.Skip("the suite's TestReconnect races on its own slice; make test runs it without -race")
	}
	e := newEnv(t)
	restart := e.srv.RestartCommand()
	if restart == nil {
		t.Skip("REDIS_URL points at a server the tests cannot restart")
	}
	ctor, _ := constructors(e, func() string { return "millrace_test" }, nil)
	tests.TestReconnect(t, tests.TestContext{
		TestID: tests.NewTestID(),
		Features: tests.Features{
			ConsumerGroups:        true,
			Persistent:            true,
			RestartServiceCommand: restart,
		},
	}, ctor)
}

// Run (d): one subscriber with one message in flight keeps stream order.
func TestPubSub_Ordered(t *testing.T) {
	e := newEnv(t)
	ctor, groupCtor := constructors(e, func() string { return "millrace_test" }, func(c *millrace.SubscriberConfig) {
		c.MaxInFlight = 1
	})
	tests.TestPubSub(t, tests.Features{
		ConsumerGroups:                      true,
		Persistent:                          true,
		GuaranteedOrder:                     true,
		GuaranteedOrderWithSingleSubscriber: true,
	}, ctor, groupCtor)
}
