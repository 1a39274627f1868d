package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/millrace/millrace/examples/internal/exampleutil"
	"github.com/millrace/millrace/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRun runs the example against a real redis-server (or REDIS_URL); the
// example checks what it shows and fails otherwise.
func TestRun(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	t.Setenv(exampleutil.EnvURL, srv.URL())
	if err := run(); err != nil {
		t.Fatal(err)
	}
}

// TestRun_Embedded runs it as `go run` does by default, on miniredis.
func TestRun_Embedded(t *testing.T) {
	t.Setenv(exampleutil.EnvURL, "")
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
