package millrace_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The universal suite's TestReconnect leaves its own collector
		// goroutine blocked on a channel it never closes.
		goleak.IgnoreTopFunction("github.com/ThreeDotsLabs/watermill/pubsub/tests.TestReconnect.func2"),
		// The suite's subscriber multiplier forwards each subscriber's
		// messages into one channel and blocks forever on a message that
		// arrives after the test stopped reading (an entry a closing
		// subscriber handed over to one still running).
		goleak.IgnoreTopFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func2"),
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func3"),
	)
}
