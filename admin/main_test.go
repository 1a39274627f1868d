package admin_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/faultproxy"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCtx is a context that ends with the test, after 30s at the latest.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newAdmin starts a server and returns its client and an Admin with default
// options over it.
func newAdmin(t *testing.T) (*redis.Client, *admin.Admin) {
	t.Helper()
	c := redistest.StartFromEnv(t).Client(t)
	return c, admin.New(c, admin.Options{})
}

// proxiedAdmin starts a server and returns a client straight to it, and a
// fault proxy in front of it with an Admin whose client goes through it.
func proxiedAdmin(t *testing.T) (*redis.Client, *faultproxy.Proxy, *admin.Admin) {
	t.Helper()
	srv := redistest.StartFromEnv(t)
	proxy, err := faultproxy.Start(srv.Addr())
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	o := srv.Options(t)
	o.Addr = proxy.Addr()
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return srv.Client(t), proxy, admin.New(c, admin.Options{})
}

// withTopology is newAdmin on a server with fixture.Topology.
func withTopology(t *testing.T) (*redis.Client, *admin.Admin) {
	t.Helper()
	c, a := newAdmin(t)
	fixture.Topology(t, c)
	return c, a
}

func xlen(t *testing.T, c redis.UniversalClient, stream string) int64 {
	t.Helper()
	n, err := c.XLen(context.Background(), stream).Result()
	require.NoError(t, err)
	return n
}
