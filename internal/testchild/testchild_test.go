package testchild_test

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/millrace/millrace/internal/testchild"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const env = "MILLRACE_TESTCHILD_TEST"

type spec struct{ Exit int }

// TestChildBody is the child: it exits with the status of its spec, or
// waits to be killed when that is negative.
func TestChildBody(t *testing.T) {
	var s spec
	if !testchild.Spec(t, env, &s) {
		return
	}
	testchild.ExitWithParent(time.Minute)
	if s.Exit < 0 {
		select {}
	}
	if s.Exit == 3 {
		testchild.Fail("c", "asked to", errors.New("fail"))
	}
	os.Exit(s.Exit)
}

// A child gets its spec, exits with its status, or is signalled.
func TestStart(t *testing.T) {
	ok := testchild.Start(t, "TestChildBody", env, "ok", spec{Exit: 0}, time.Minute)
	require.True(t, ok.Wait(time.Minute))
	assert.True(t, ok.Succeeded())
	failed := testchild.Start(t, "TestChildBody", env, "failed", spec{Exit: 3}, time.Minute)
	require.True(t, failed.Wait(time.Minute))
	assert.False(t, failed.Succeeded())
	assert.Equal(t, 3, failed.ExitCode())

	waiting := testchild.Start(t, "TestChildBody", env, "waiting", spec{Exit: -1}, time.Minute)
	assert.False(t, waiting.Wait(100*time.Millisecond), "a waiting child is still running")
	assert.False(t, waiting.Succeeded(), "not exited yet")
	waiting.Signal(syscall.SIGTERM)
	require.True(t, waiting.Wait(time.Minute))
	assert.False(t, waiting.Succeeded(), "ended by the signal")
	assert.Equal(t, -1, waiting.ExitCode())
	waiting.Kill() // harmless once gone
	assert.Equal(t, "waiting", waiting.Name)
}
