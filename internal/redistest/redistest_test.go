package redistest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStart(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Password: "p@ss word"})
	ctx := context.Background()

	c := s.Client(t)
	require.NoError(t, c.Ping(ctx).Err())
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	assert.Equal(t, "v", c.Get(ctx, "k").Val())

	o, err := redis.ParseURL(s.URL())
	require.NoError(t, err)
	assert.Equal(t, s.Addr(), o.Addr)
	assert.Equal(t, "p@ss word", o.Password)
	// The server is the one REDISTEST_SERVER chose: Debian 12's Redis 7.0,
	// or Valkey 8.0 from bookworm-backports.
	if IsValkey() {
		assert.Equal(t, "Valkey", s.Product(t))
		assert.True(t, strings.HasPrefix(s.Version(t), "8."), s.Version(t))
	} else {
		assert.Equal(t, "Redis", s.Product(t))
		assert.True(t, strings.HasPrefix(s.Version(t), "7."), s.Version(t))
	}
	assert.NotZero(t, s.Pid())

	s.Stop()
	s.Stop()
	assert.Zero(t, s.Pid())
	assert.Empty(t, procsIn(s.Dir()))
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := s.Client(t)
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "before", "1", 0).Err())
	pid := s.Pid()

	s.Restart(t)
	assert.NotEqual(t, pid, s.Pid(), "a new process")
	assert.Equal(t, "1", c.Get(ctx, "before").Val())

	require.NoError(t, c.Set(ctx, "between", "2", 0).Err())
	argv := s.RestartCommand()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "2", c.Get(ctx, "between").Val())
}

func TestKillStartAgainKeepsData(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := s.Client(t)
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "k", "acked", 0).Err())

	s.Kill()
	assert.Zero(t, s.Pid())
	require.Error(t, quickClient(t, s.Options(t)).Ping(ctx).Err())

	s.StartAgain(t)
	assert.Equal(t, "acked", c.Get(ctx, "k").Val())
}

func TestFreezeThaw(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	c := quickClient(t, s.Options(t))
	ctx := context.Background()
	require.NoError(t, c.Ping(ctx).Err())

	s.Freeze()
	start := time.Now()
	err := c.Ping(ctx).Err()
	var netErr interface{ Timeout() bool }
	require.ErrorAs(t, err, &netErr)
	assert.True(t, netErr.Timeout(), "%v", err)
	assert.Less(t, time.Since(start), 2*time.Second)

	s.Thaw()
	require.NoError(t, c.Ping(ctx).Err())
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{TLS: true, Password: "secret"})
	ctx := context.Background()
	assert.True(t, strings.HasPrefix(s.URL(), "rediss://"), s.URL())

	c := s.Client(t)
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	s.Restart(t) // restart.sh speaks TLS and AUTH too
	assert.Equal(t, "v", c.Get(ctx, "k").Val())

	other, err := newCA()
	require.NoError(t, err)
	o := s.Options(t)
	o.TLSConfig = &tls.Config{RootCAs: other.pool()}
	err = quickClient(t, o).Ping(ctx).Err()
	var unknownCA x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknownCA)
	assert.Contains(t, err.Error(), "x509: certificate signed by unknown authority")
}

func TestCluster(t *testing.T) {
	t.Parallel()
	cl := StartCluster(t, 3, 1)
	require.Len(t, cl.Addrs(), 6)

	// Hash tags pick the slot, so some three tags land on three masters.
	owners := map[*Server]string{}
	for i := 0; len(owners) < 3 && i < 100; i++ {
		key := fmt.Sprintf("{tag%d}:stream", i)
		owners[cl.MasterFor(t, key)] = key
	}
	require.Len(t, owners, 3, "keys spread over the three masters")

	c := cl.Client(t)
	ctx := context.Background()
	for master, key := range owners {
		id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []string{"f", key}}).Result()
		require.NoError(t, err)
		msgs, err := c.XRange(ctx, key, "-", "+").Result()
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		assert.Equal(t, id, msgs[0].ID)

		// The entry is on the node MasterFor named, not just somewhere.
		n, err := quickClient(t, master.Options(t)).XLen(ctx, key).Result()
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
	}
}

func TestSentinel(t *testing.T) {
	t.Parallel()
	st := StartSentinel(t, 1, 3)
	c := st.Client(t)
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "k", "before", 0).Err())
	// WAIT makes sure the replica has the write before it is promoted.
	require.EqualValues(t, 1, c.Do(ctx, "WAIT", 1, 5000).Val())

	old := st.CurrentMaster(t)
	st.Failover(t)
	assert.NotEqual(t, old, st.CurrentMaster(t))
	assert.Equal(t, st.CurrentMaster(t), st.Master.Addr())
	assert.Equal(t, old, st.Replicas[0].Addr())

	require.NoError(t, c.Set(ctx, "k2", "after", 0).Err())
	assert.Equal(t, "before", c.Get(ctx, "k").Val())
	assert.Equal(t, "after", quickClient(t, st.Master.Options(t)).Get(ctx, "k2").Val())
}

func TestSentinelMasterKilled(t *testing.T) {
	t.Parallel()
	st := StartSentinel(t, 1, 3)
	c := st.Client(t)
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "k", "before", 0).Err())
	require.EqualValues(t, 1, c.Do(ctx, "WAIT", 1, 5000).Val())

	killed := st.Master
	old := killed.Addr()
	killed.Kill()
	st.AwaitFailover(t, old)
	assert.NotEqual(t, old, st.CurrentMaster(t))
	require.Equal(t, []*Server{killed}, st.Replicas)
	assert.Zero(t, killed.Pid(), "AwaitFailover leaves the killed master down")

	st.Rejoin(t, killed)
	require.NoError(t, c.Set(ctx, "k2", "after", 0).Err())
	assert.EqualValues(t, 1, c.Do(ctx, "WAIT", 1, 5000).Val(), "the old master replicates the new one")
	old2 := quickClient(t, killed.Options(t))
	assert.Equal(t, "before", old2.Get(ctx, "k").Val())
	assert.Equal(t, "after", old2.Get(ctx, "k2").Val())
	assert.True(t, redis.HasErrorPrefix(old2.Set(ctx, "k3", "x", 0).Err(), "READONLY"))
}

func TestFlavor(t *testing.T) {
	for v, want := range map[string]string{"": "redis", "redis": "redis", "valkey": "valkey", " Valkey ": "valkey"} {
		f, err := lookupFlavor(v)
		require.NoError(t, err, "%q", v)
		assert.Equal(t, want, f.name, "%q", v)
	}
	_, err := lookupFlavor("keydb")
	require.Error(t, err)
	assert.Contains(t, err.Error(), ServerEnv)
	assert.Equal(t, "valkey-sentinel", flavors["valkey"].sentinel)
	assert.Equal(t, "valkey-cli", flavors["valkey"].cli)

	t.Setenv(ServerEnv, "keydb")
	assert.Equal(t, "redis", Flavor(), "an unknown value is not Valkey")
	assert.False(t, IsValkey())
}

func TestStartFromEnv(t *testing.T) {
	real := Start(t, Options{})
	t.Setenv("REDIS_URL", real.URL())

	s := StartFromEnv(t)
	assert.Equal(t, real.Addr(), s.Addr())
	assert.Nil(t, s.RestartCommand())
	require.NoError(t, s.Client(t).Ping(context.Background()).Err())

	restarted := false
	t.Run("Restart", func(t *testing.T) {
		s.Restart(t)
		restarted = true
	})
	assert.False(t, restarted, "Restart skips on an external server")
	s.Stop()
	assert.NotZero(t, real.Pid(), "Stop leaves an external server alone")
}

// quickClient returns a client that neither retries nor waits long, closed
// when the test ends.
func quickClient(t *testing.T, o *redis.Options) *redis.Client {
	o.MaxRetries = -1
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}
