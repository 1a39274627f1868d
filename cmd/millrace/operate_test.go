package main

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/lasterror"
)

// fail runs the CLI, requires exit status code, and returns stdout and
// stderr together, for a golden file.
func (e *env) fail(code int, argv ...string) string {
	e.t.Helper()
	r := e.run(argv...)
	require.Equal(e.t, code, r.code, "millrace %s\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), r.stdout, r.stderr)
	return r.stdout + r.stderr
}

// TestMistypedTopic: reading a topic of which nothing exists is an error
// that names it, with one "millrace:" prefix; a missing group on an
// existing topic names the group.
func TestMistypedTopic(t *testing.T) {
	e := newEnv(t)
	var out strings.Builder
	for _, argv := range [][]string{
		{"tail", "ordrs"},
		{"tail", "ordrs", "--from", "1h"},
		{"stat", "ordrs"},
		{"dlq", "list", "ordrs"},
		{"browse", "ordrs"},
		{"pending", "ordrs", "billing"},
		{"consumers", "list", "ordrs", "billing"},
		{"group", "reset", "ordrs", "billing", "--to", "0"},
		{"group", "delete", "ordrs", "billing", "--yes"},
		{"pending", "orders", "nosuchgroup"},
		{"consumers", "list", "orders", "nosuchgroup"},
		{"group", "reset", "orders", "nosuchgroup", "--to", "0"},
	} {
		got := e.fail(1, argv...)
		assert.Equal(t, 1, strings.Count(got, "millrace:"), "one prefix: %s", got)
		out.WriteString("$ millrace " + strings.Join(argv, " ") + "\n" + got)
	}
	golden(t, "mistyped", out.String())
	// Topics that exist without a stream are not errors: dead letters only.
	assert.Contains(t, e.ok("stat", "refunds"), "1 in {refunds}:dlq")
	assert.Contains(t, e.ok("dlq", "list", "refunds"), "no such account")
}

// TestResetBeyondEnd: a reset or creation beyond the stream's end is
// refused without --force, changes nothing, and goes through with it.
func TestResetBeyondEnd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var out strings.Builder
	for _, argv := range [][]string{
		{"group", "reset", "orders", "billing", "--to", "2999-01-01T00:00:00Z"},
		{"group", "reset", "orders", "billing", "--to", "99999999999999-0"},
		{"group", "create", "orders", "ahead", "--start", "99999999999999-0"},
	} {
		got := e.fail(1, argv...)
		assert.Contains(t, got, "--force")
		out.WriteString("$ millrace " + strings.Join(argv, " ") + "\n" + got)
	}
	clock := regexp.MustCompile(`Redis's clock \([^)]*\)`)
	golden(t, "group-reset-beyond-end", clock.ReplaceAllString(out.String(), "Redis's clock (<now>)"))
	groups, err := e.client.XInfoGroups(ctx, "orders").Result()
	require.NoError(t, err)
	require.Len(t, groups, 2, "no group created")
	for _, g := range groups {
		if g.Name == "billing" {
			assert.Equal(t, fixture.ID(5), g.LastDeliveredID, "billing did not move")
		}
	}
	golden(t, "group-reset-force", e.ok("group", "reset", "orders", "billing", "--to", "99999999999999-0", "--force"))
	// stat flags the group, and a paused one.
	e.ok("group", "pause", "orders", "audit")
	out.Reset()
	for _, line := range strings.Split(e.ok("stat", "orders"), "\n") {
		if strings.HasPrefix(line, "! ") {
			out.WriteString(line + "\n")
		}
	}
	golden(t, "stat-states", regexp.MustCompile(`paused since \S+`).ReplaceAllString(out.String(), "paused since <time>"))
	assert.Contains(t, out.String(), "Group billing is past the stream's end (at 99999999999999-0")
	assert.Contains(t, out.String(), "Group audit is paused since")
	assert.Contains(t, e.ok("stat", "orders", "--json"), `"beyond_end": true`)
	golden(t, "group-reset-force.json", e.ok("group", "reset", "orders", "billing", "--to", "0", "--json"))
}

// TestTopicDelete: delete refuses while a group holds pending entries,
// then deletes every key of the topic and nothing of another.
func TestTopicDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	require.NoError(t, e.client.ZAdd(ctx, keys.Delayed("orders"), redisZ(1, "m")).Err())
	require.NoError(t, e.client.Set(ctx, keys.Published("orders", "u1"), "1", 0).Err())
	before := scanAll(t, e)

	r := e.run("topic", "delete", "orders")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "pass --yes")
	golden(t, "topic-delete-refused", e.fail(1, "topic", "delete", "orders", "--yes"))
	assert.Equal(t, before, scanAll(t, e), "a refused deletion deletes nothing")
	golden(t, "topic-delete", e.ok("topic", "delete", "orders", "--yes", "--force"))
	for _, k := range scanAll(t, e) {
		assert.NotEqual(t, keys.Slot("orders"), keys.Slot(k), "left of orders: %s", k)
	}
	assert.EqualValues(t, 1, e.client.XLen(ctx, "payments").Val(), "other topics stay")
	assert.EqualValues(t, 1, e.client.XLen(ctx, "{refunds}:dlq").Val(), "other topics stay")
	golden(t, "topic-delete.json", e.ok("topic", "delete", "payments", "--yes", "--json"))
	r = e.run("topic", "delete", "orders", "--yes")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "millrace: no such topic: orders")
}

func scanAll(t *testing.T, e *env) []string {
	t.Helper()
	ks, err := e.client.Keys(context.Background(), "*").Result()
	require.NoError(t, err)
	slices.Sort(ks)
	return ks
}

// TestBrowse pages through a topic by ID and by time, both ways.
func TestBrowse(t *testing.T) {
	e := newEnv(t)
	r := e.run("browse", "orders", "--from", fixture.ID(3), "-n", "2")
	require.Equal(t, 0, r.code, r.stderr)
	golden(t, "browse", r.stdout+r.stderr)
	assert.Contains(t, r.stderr, "--after "+fixture.ID(4))
	golden(t, "browse-after", e.ok("browse", "orders", "--from", fixture.ID(3), "-n", "2", "--after", fixture.ID(4)))
	golden(t, "browse-time-reverse.json", e.ok("browse", "orders", "--from", "2023-11-14T22:13:20.008Z", "--to", "2023-11-14T22:13:20.010Z", "--reverse", "--json"))
	golden(t, "browse-none", e.ok("browse", "orders", "--to", "0"))
}

// TestDLQListFilters selects dead letters by reason, group and time and
// pages through them.
func TestDLQListFilters(t *testing.T) {
	e := newEnv(t)
	golden(t, "dlq-list-reason", e.ok("dlq", "list", "orders", "--reason", "DECLINED", "-n", "2"))
	r := e.run("dlq", "list", "orders", "--reason", "declined", "-n", "2")
	assert.Contains(t, r.stderr, "--after "+fixture.ID(102))
	r = e.run("dlq", "list", "orders", "--reason", "declined", "-n", "2", "--json")
	assert.Contains(t, r.stderr, "--after "+fixture.ID(102), "the next page on stderr, the JSON clean")
	assert.True(t, json.Valid([]byte(r.stdout)), r.stdout)
	assert.Contains(t, e.ok("dlq", "list", "orders", "--group", "shipping"), "No dead letters")
	out := e.ok("dlq", "list", "orders", "--since", fixture.ID(102), "--until", "2023-11-14T22:13:20.103Z", "--reverse")
	assert.Contains(t, out, fixture.ID(102))
	assert.NotContains(t, out, fixture.ID(101))
	assert.NotContains(t, out, fixture.ID(103))
	r = e.run("dlq", "list", "orders", "--since", "soon")
	assert.Equal(t, 2, r.code)
}

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }

// TestPendingLastError: pending shows the handler's last error of an
// entry, on one line, cut to 60 characters, and in full in JSON.
func TestPendingLastError(t *testing.T) {
	e := newEnv(t)
	msg := "payment declined:\n card expired " + strings.Repeat("x", 60)
	require.NoError(t, lasterror.Set(context.Background(), e.client, "orders", "billing", fixture.ID(2), msg))
	out := e.ok("pending", "orders", "billing")
	assert.Contains(t, out, "payment declined: card expired xxx")
	assert.Contains(t, out, "…")
	assert.Contains(t, e.ok("pending", "orders", "billing", "--json"), `"last_error": "payment declined:\n card expired xxx`)
}
