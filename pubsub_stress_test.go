//go:build stress

package millrace_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
)

// TestPubSub_Stress runs the universal suite STRESS_TEST_COUNT times in
// parallel against one server, every constructor call in one shared group.
func TestPubSub_Stress(t *testing.T) {
	e := newEnv(t)
	ctor, groupCtor := constructors(e, func() string { return "millrace_test" }, nil)
	tests.TestPubSubStressTest(t, tests.Features{
		ConsumerGroups:                      true,
		Persistent:                          true,
		GuaranteedOrderWithSingleSubscriber: true,
	}, ctor, groupCtor)
}
