package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/millrace/millrace/examples/internal/exampletest"
)

func TestMain(m *testing.M) {
	// The example runs this binary again as its consumer process.
	if os.Getenv(envRole) == "consumer" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// TestRun runs the publisher here and the consumer in a child process; the
// example fails unless the handler's span continues the publisher's trace.
func TestRun(t *testing.T) { exampletest.Run(t, run) }
