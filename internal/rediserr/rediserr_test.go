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

// Every classifier is checked against the reply a real server gives (Redis,
// or Valkey with REDISTEST_SERVER=valkey), and against the replies of the
// other cases, which it must not match.
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
	require.NoError(t, c.ACLSetUser(ctx, "keyless", "on", ">secret", "~other", "+eval", "+get").Err())
	keyless := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "keyless", Password: "secret", Protocol: 2})
	t.Cleanup(func() { _ = keyless.Close() })
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
		"key NOPERM":      keyless.Get(ctx, "k").Err(),
		// The key is not declared, so the script runs and its GET is
		// refused, not the EVAL.
		"script key NOPERM": keyless.Eval(ctx, "return redis.call('GET', 'k')", nil).Err(),
		"script refused":    c.Eval(ctx, "return redis.call('MULTI')", nil).Err(),
		"script NOGROUP":    c.Eval(ctx, "return redis.call('XCLAIM', KEYS[1], 'nope', 'c', 0, '0-1')", []string{"s"}).Err(),
		"wrong type":        c.LPush(ctx, "s", "x").Err(),
		// The replies that say "try later", worded as Redis words them:
		// they are not easily caught live.
		"LOADING":     c.Eval(ctx, "return redis.error_reply('LOADING Redis is loading the dataset in memory')", nil).Err(),
		"READONLY":    c.Eval(ctx, "return redis.error_reply(\"READONLY You can't write against a read only replica.\")", nil).Err(),
		"MASTERDOWN":  c.Eval(ctx, "return redis.error_reply('MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.')", nil).Err(),
		"CLUSTERDOWN": c.Eval(ctx, "return redis.error_reply('CLUSTERDOWN The cluster is down')", nil).Err(),
		"TRYAGAIN":    c.Eval(ctx, "return redis.error_reply('TRYAGAIN Multiple keys request during rehashing of slot')", nil).Err(),
		"BUSY":        c.Eval(ctx, "return redis.error_reply('BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.')", nil).Err(),
		"network":     fmt.Errorf("wrapped: %w", errors.New("dial tcp: connection refused")),
	}
	closed := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	require.NoError(t, closed.Close())
	replies["closed client"] = closed.Ping(ctx).Err()
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
		{"IsNoPerm", rediserr.IsNoPerm, []string{"NOPERM", "script NOPERM", "key NOPERM", "script key NOPERM"}},
		{"IsNoSuchUser", rediserr.IsNoSuchUser, []string{"no such user"}},
		{"IsNoScript", rediserr.IsNoScript, []string{"NOSCRIPT"}},
		{"IsScriptRefused", rediserr.IsScriptRefused, []string{
			"script refused", "NOPERM", "script NOPERM", "key NOPERM", "script key NOPERM", "unknown command", "unknown INFO",
		}},
		{"IsOOM", rediserr.IsOOM, []string{"OOM"}},
		{"IsTimeout", rediserr.IsTimeout, []string{"timeout"}},
		{"IsUnavailable", rediserr.IsUnavailable, []string{
			"network", "timeout", "LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY",
		}},
		{"IsServer", rediserr.IsServer, []string{
			"NOGROUP", "BUSYGROUP", "no such key", "no stream", "unknown command", "unknown INFO", "NOPERM",
			"no such user", "NOSCRIPT", "script refused", "OOM", "script NOGROUP", "wrong type", "script NOPERM",
			"key NOPERM", "script key NOPERM", "LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY",
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

// The ACL refusals as each server words them, so that a run on one server
// also checks the wording of the other: Redis 7.0 (Debian 12) and Valkey
// 8.0 (bookworm-backports). The replies are copied from those servers (user
// u without +xtrim, limited to key and channel "other").
func TestIsNoPerm_EveryServersWording(t *testing.T) {
	refusals := map[string]string{
		"Redis 7.0, command":            "NOPERM this user has no permissions to run the 'xtrim' command",
		"Redis 7.0, key":                "NOPERM this user has no permissions to access one of the keys used as arguments",
		"Redis 7.0, channel":            "NOPERM this user has no permissions to access one of the channels used as arguments",
		"Redis 7.0, command in script":  "ERR The user executing the script can't run this command or subcommand script: 8a07e70076d9fd6be6ff7ec65cc3fa63205cddf4, on @user_script:1.",
		"Redis 7.0, key in script":      "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments script: 496368505412ccb8a568d43cf5c46b9910905b08, on @user_script:1.",
		"Redis 7.0, channel in script":  "ERR The user executing the script can't publish to the channel mentioned in the command script: afd1cf86f5e3594c2af58a657a9bee0c137cdcb2, on @user_script:1.",
		"Valkey 8.0, command":           "NOPERM User u has no permissions to run the 'xtrim' command",
		"Valkey 8.0, key":               "NOPERM No permissions to access a key",
		"Valkey 8.0, channel":           "NOPERM No permissions to access a channel",
		"Valkey 8.0, command in script": "ERR ACL failure in script: User u has no permissions to run the 'xtrim' command script: 8a07e70076d9fd6be6ff7ec65cc3fa63205cddf4, on @user_script:1.",
		"Valkey 8.0, key in script":     "ERR ACL failure in script: No permissions to access a key script: 496368505412ccb8a568d43cf5c46b9910905b08, on @user_script:1.",
		"Valkey 8.0, channel in script": "ERR ACL failure in script: No permissions to access a channel script: afd1cf86f5e3594c2af58a657a9bee0c137cdcb2, on @user_script:1.",
	}
	for name, reply := range refusals {
		assert.True(t, rediserr.IsNoPerm(replyError(reply)), "%s: %s", name, reply)
		assert.True(t, rediserr.IsScriptRefused(replyError(reply)), "%s: %s", name, reply)
	}
	for _, other := range []error{
		replyError("ERR Error running script (call to f_x): @user_script:1: user_script:1: Wrong number of args calling Redis command from script"),
		replyError("WRONGTYPE Operation against a key holding the wrong kind of value"),
		replyError("WRONGPASS invalid username-password pair or user is disabled."),
		replyError("NOAUTH Authentication required."),
		errors.New("NOPERM but not from a server"),
		errors.New("ERR ACL failure in script: but not from a server"),
	} {
		assert.False(t, rediserr.IsNoPerm(other), "%v", other)
	}
}

// replyError is an error reply as go-redis returns one (redis.Error).
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

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
