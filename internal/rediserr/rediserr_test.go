package rediserr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Every classifier is checked against the reply a real redis-server gives,
// and against the replies of the other cases, which it must not match.
func TestClassifiers_RealReplies(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{
		// An older server, as far as these commands go.
		`rename-command XAUTOCLAIM ""`,
		`rename-command INFO ""`,
		"maxmemory-policy noeviction",
	}})
	c := srv.Client(t)
	ctx := context.Background()
	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []string{"k", "v"}}).Err())
	require.NoError(t, c.XGroupCreate(ctx, "s", "g", "0").Err())
	require.NoError(t, c.ACLSetUser(ctx, "reader", "on", ">secret", "~*", "+@read", "-eval", "-evalsha").Err())
	require.NoError(t, c.ACLSetUser(ctx, "scripter", "on", ">secret", "~*", "+eval", "+get").Err())
	scripter := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "scripter", Password: "secret", Protocol: 2})
	t.Cleanup(func() { _ = scripter.Close() })
	reader := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "reader", Password: "secret", Protocol: 2})
	t.Cleanup(func() { _ = reader.Close() })

	replies := map[string]error{
		"nil":             c.Get(ctx, "missing").Err(),
		"NOGROUP":         c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "nope", Consumer: "c", Streams: []string{"s", ">"}}).Err(),
		"BUSYGROUP":       c.XGroupCreate(ctx, "s", "g", "0").Err(),
		"no such key":     c.XInfoGroups(ctx, "missing").Err(),
		"no stream":       c.XGroupSetID(ctx, "missing", "g", "0").Err(),
		"unknown command": c.Do(ctx, "XAUTOCLAIM", "s", "g", "c", 0, "0-0").Err(),
		"unknown INFO":    c.Info(ctx, "server").Err(),
		"NOPERM":          reader.Set(ctx, "k", "v", 0).Err(),
		"no such user":    c.Do(ctx, "ACL", "DRYRUN", "nosuchuser", "GET", "k").Err(),
		"NOSCRIPT":        c.EvalSha(ctx, "ffffffffffffffffffffffffffffffffffffffff", nil).Err(),
		"script NOPERM":   scripter.Eval(ctx, "return redis.call('SET', KEYS[1], 'v')", []string{"k"}).Err(),
		"script refused":  c.Eval(ctx, "return redis.call('MULTI')", nil).Err(),
		"script NOGROUP":  c.Eval(ctx, "return redis.call('XCLAIM', KEYS[1], 'nope', 'c', 0, '0-1')", []string{"s"}).Err(),
		"wrong type":      c.LPush(ctx, "s", "x").Err(),
		"network":         fmt.Errorf("wrapped: %w", errors.New("dial tcp: connection refused")),
	}
	slow := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: 50 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = slow.Close() })
	replies["timeout"] = slow.Do(ctx, "BLPOP", "empty", 0).Err()
	// Last: from here on, writes are refused.
	replies["OOM"] = fill(ctx, c)
	for name, err := range replies {
		require.Error(t, err, name)
	}

	cases := []struct {
		name    string
		is      func(error) bool
		matches []string
	}{
		{"IsNil", rediserr.IsNil, []string{"nil"}},
		{"IsNoGroup", rediserr.IsNoGroup, []string{"NOGROUP", "script NOGROUP"}},
		{"IsBusyGroup", rediserr.IsBusyGroup, []string{"BUSYGROUP"}},
		{"IsNoSuchKey", rediserr.IsNoSuchKey, []string{"no such key"}},
		{"IsNoStream", rediserr.IsNoStream, []string{"no stream"}},
		{"IsUnknownCommand", rediserr.IsUnknownCommand, []string{"unknown command", "unknown INFO"}},
		{"IsNoPerm", rediserr.IsNoPerm, []string{"NOPERM", "script NOPERM"}},
		{"IsNoSuchUser", rediserr.IsNoSuchUser, []string{"no such user"}},
		{"IsNoScript", rediserr.IsNoScript, []string{"NOSCRIPT"}},
		{"IsScriptRefused", rediserr.IsScriptRefused, []string{"script refused", "NOPERM", "script NOPERM", "unknown command", "unknown INFO"}},
		{"IsOOM", rediserr.IsOOM, []string{"OOM"}},
		{"IsTimeout", rediserr.IsTimeout, []string{"timeout"}},
		{"IsServer", rediserr.IsServer, []string{
			"NOGROUP", "BUSYGROUP", "no such key", "no stream", "unknown command", "unknown INFO", "NOPERM",
			"no such user", "NOSCRIPT", "script refused", "OOM", "script NOGROUP", "wrong type", "script NOPERM",
		}},
	}
	for _, tc := range cases {
		for name, err := range replies {
			want := false
			for _, m := range tc.matches {
				want = want || m == name
			}
			assert.Equal(t, want, tc.is(err), "%s(%q: %v)", tc.name, name, err)
		}
	}
}

// MOVED comes from a node of a real Cluster asked for a key it does not
// serve.
func TestIsRedirect_RealCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 0)
	ctx := context.Background()
	var moved error
	for _, addr := range cl.Addrs() {
		node := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		err := node.Set(ctx, "k", "v", 0).Err()
		_ = node.Close()
		if err != nil {
			moved = err
			break
		}
	}
	require.Error(t, moved, "one of three masters does not serve k")
	assert.True(t, rediserr.IsRedirect(moved), "%v", moved)
	assert.True(t, rediserr.IsServer(moved), "%v", moved)
	assert.False(t, rediserr.IsNoGroup(moved))
	assert.False(t, rediserr.IsRedirect(errors.New("MOVED but not from Redis")))
}

// fill lowers maxmemory below what the server uses and writes until it
// refuses: OOM under noeviction.
func fill(ctx context.Context, c *redis.Client) error {
	if err := c.ConfigSet(ctx, "maxmemory", "1mb").Err(); err != nil {
		return fmt.Errorf("not an OOM: %w", err)
	}
	value := make([]byte, 64<<10)
	for i := range 1000 {
		if err := c.Set(ctx, fmt.Sprintf("fill:%d", i), value, 0).Err(); err != nil {
			return err
		}
	}
	return errors.New("1000 writes of 64 KiB fit in 1 MB")
}
