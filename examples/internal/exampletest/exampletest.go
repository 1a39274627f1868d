// Package exampletest runs an example's run function in its tests.
package exampletest

import (
	"testing"

	"github.com/millrace/millrace/examples/internal/exampleutil"
	"github.com/millrace/millrace/internal/redistest"
)

// Run runs the example against a real redis-server (or REDIS_URL), then as
// `go run` does by default, on the embedded miniredis. The example checks
// what it shows and returns an error otherwise.
func Run(t *testing.T, run func() error) {
	t.Run("redis-server", func(t *testing.T) {
		srv := redistest.StartFromEnv(t)
		t.Setenv(exampleutil.EnvURL, srv.URL())
		if err := run(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("embedded", func(t *testing.T) {
		t.Setenv(exampleutil.EnvURL, "")
		if err := run(); err != nil {
			t.Fatal(err)
		}
	})
}
