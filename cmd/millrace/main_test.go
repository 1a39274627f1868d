package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/redistest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a redis-server with the test topology and a way to run the CLI.
type env struct {
	t      *testing.T
	srv    *redistest.Server
	client *redis.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := redistest.StartFromEnv(t)
	e := &env{t: t, srv: srv, client: srv.Client(t)}
	require.NoError(t, e.client.FlushAll(context.Background()).Err())
	fixture.Topology(t, e.client)
	return e
}

// syncBuffer is a bytes.Buffer safe for a command running in a goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs the CLI against the env's server with stable output.
func (e *env) run(argv ...string) result {
	return e.runCtx(context.Background(), "", argv...)
}

func (e *env) runCtx(ctx context.Context, stdin string, argv ...string) result {
	e.t.Helper()
	return runCLI(ctx, stdin, append([]string{"--url", e.srv.URL()}, argv...)...)
}

func runCLI(ctx context.Context, stdin string, argv ...string) result {
	var stdout, stderr syncBuffer
	a := newApp(strings.NewReader(stdin), &stdout, &stderr)
	a.stable = true
	a.now = func() time.Time { return time.UnixMilli(fixture.BaseMS + 1000) }
	code := a.run(ctx, argv)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// ok runs the CLI and requires exit status 0.
func (e *env) ok(argv ...string) string {
	e.t.Helper()
	r := e.run(argv...)
	require.Equal(e.t, 0, r.code, "millrace %s\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), r.stdout, r.stderr)
	return r.stdout
}

var (
	volatileJSON    = regexp.MustCompile(`"(time|idle_ms|inactive_ms|[a-z_]*age_ms|new_id)": ("[^"]*"|\d+)`)
	volatileJSONIDs = regexp.MustCompile(`"(time|idle_ms|inactive_ms|[a-z_]*age_ms|new_id|id)": ("[^"]*"|\d+)`)
	redisVersion    = regexp.MustCompile(`Redis \d+\.\d+\.\d+[^\n"]*`)
	generatedEntry  = regexp.MustCompile(`entry \d{13}-\d+`)
)

// normalize replaces the values that depend on the clock, the Redis version
// or IDs Redis generates; with ids, every JSON "id" too (the topology's IDs
// are fixed, so they stay otherwise).
func normalize(s string, ids bool) string {
	if ids {
		s = volatileJSONIDs.ReplaceAllString(s, `"$1": "<volatile>"`)
	} else {
		s = volatileJSON.ReplaceAllString(s, `"$1": "<volatile>"`)
	}
	s = redisVersion.ReplaceAllString(s, "Redis <version>")
	return generatedEntry.ReplaceAllString(s, "entry <id>")
}

// golden compares got with testdata/<name>.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file: run go test -update")
	assert.Equal(t, string(want), got, "output differs from %s (go test -update rewrites it)", path)
}

// goldenBoth runs argv as a table and with --json and compares both.
func (e *env) goldenBoth(name string, argv ...string) {
	e.t.Helper()
	golden(e.t, name, normalize(e.ok(argv...), false))
	golden(e.t, name+".json", normalize(e.ok(append(argv, "--json")...), false))
}

func TestTopicsStatPending(t *testing.T) {
	e := newEnv(t)
	e.goldenBoth("topics", "topics")
	e.goldenBoth("stat", "stat", "orders")
	e.goldenBoth("stat-payments", "stat", "payments")
	e.goldenBoth("stat-refunds", "stat", "refunds")
	e.goldenBoth("pending", "pending", "orders", "billing")
	e.goldenBoth("pending-count", "pending", "orders", "billing", "-n", "1")
	golden(t, "pending-empty", e.ok("pending", "orders", "audit"))

	r := e.run("pending", "orders", "nope")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no such consumer group: nope on topic orders")
	r = e.run("stat")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "want 1 argument(s): <topic>")
}

func TestTail(t *testing.T) {
	e := newEnv(t)
	e.goldenBoth("tail", "tail", "orders", "-n", "3")
	e.goldenBoth("tail-from", "tail", "orders", "--from", fixture.ID(8), "-n", "0")
	e.goldenBoth("tail-binary", "tail", "payments")
	golden(t, "tail-from-time", e.ok("tail", "orders", "--from", strconv.Itoa(fixture.BaseMS+9), "-n", "1"))
	// An empty stream prints nothing; a topic that does not exist is an
	// error (TestMistypedTopic).
	require.NoError(t, e.client.XAdd(context.Background(), &redis.XAddArgs{Stream: "emptied", Values: []string{"k", "v"}}).Err())
	require.NoError(t, e.client.XTrimMaxLen(context.Background(), "emptied", 0).Err())
	golden(t, "tail-empty", e.ok("tail", "emptied"))
	r := e.run("tail", "orders", "--from", "yesterday")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `invalid position "yesterday"`)
}

func TestTailFollowAndPublish(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int)
	go func() {
		a := newApp(strings.NewReader(""), &stdout, &stderr)
		done <- a.run(ctx, []string{"--url", e.srv.URL(), "tail", "payments", "-f", "--json"})
	}()
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), `"uuid":"pay-1"`) }, 10*time.Second, 10*time.Millisecond)

	out := e.ok("publish", "payments", "--uuid", "fixed-uuid", "-m", "trace=abc", "-m", "k=v=w", `{"amount":5}`)
	golden(t, "publish", normalize(out, true))
	out = e.ok("publish", "payments", "-", "--uuid", "from-stdin", "--json")
	golden(t, "publish.json", normalize(out, true))
	r := e.runCtx(context.Background(), "piped\n", "publish", "payments", "-", "--uuid", "stdin-2")
	require.Equal(t, 0, r.code, r.stderr)

	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), `"uuid":"stdin-2"`) }, 10*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("tail -f did not stop after its context was cancelled")
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.Len(t, lines, 4, stdout.String())
	assert.Contains(t, lines[1], `"uuid":"fixed-uuid","metadata":{"k":"v=w","trace":"abc"},"payload":"{\"amount\":5}"`)
	assert.Contains(t, lines[3], `"payload":"piped\n"`)

	r = e.run("publish", "payments")
	assert.Equal(t, 2, r.code)
	r = e.run("publish", "payments", "-m", "novalue", "x")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "want key=value")
}

func TestDLQ(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.goldenBoth("dlq-list", "dlq", "list", "orders")
	e.goldenBoth("dlq-list-after", "dlq", "list", "orders", "--after", fixture.ID(101), "-n", "1")
	golden(t, "dlq-list-empty", e.ok("dlq", "list", "payments"))
	e.goldenBoth("dlq-show", "dlq", "show", "orders", fixture.ID(102))
	r := e.run("dlq", "show", "orders", "1-1")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no such dead letter")

	e.goldenBoth("dlq-replay-dry-run", "dlq", "replay", "orders", "--dry-run")
	n, err := e.client.XLen(ctx, "{orders}:dlq").Result()
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "a dry run moves nothing")

	// Replay one by ID: exactly that message moves, once.
	out := e.ok("dlq", "replay", "orders", "--id", fixture.ID(102), "--id", "1-1", "-v")
	golden(t, "dlq-replay-id", normalize(regexp.MustCompile(`\d{13}-\d+ *\n`).ReplaceAllString(out, "<new id>\n"), false))
	entries, err := e.client.XRange(ctx, "orders", "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 11)
	back, err := millrace.DefaultMarshaler{}.Unmarshal(entries[10].Values)
	require.NoError(t, err)
	assert.Equal(t, "dead-2", back.UUID)
	assert.Equal(t, `{"order":52}`, string(back.Payload))
	assert.Equal(t, message.Metadata{"source": "test"}, back.Metadata, "dead-letter metadata is stripped")
	left, err := e.client.XRange(ctx, "{orders}:dlq", "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, left, 2)
	assert.Equal(t, []string{fixture.ID(101), fixture.ID(103)}, []string{left[0].ID, left[1].ID})

	// Replay the rest, as JSON.
	out = e.ok("dlq", "replay", "orders", "--json")
	golden(t, "dlq-replay.json", normalize(out, false))
	entries, err = e.client.XRange(ctx, "orders", "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 13)
	n, err = e.client.XLen(ctx, "{orders}:dlq").Result()
	require.NoError(t, err)
	assert.Zero(t, n)

	// Purge: refused without --yes, then by ID, then all.
	r = e.run("dlq", "purge", "refunds")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "pass --yes")
	golden(t, "dlq-purge-id", e.ok("dlq", "purge", "refunds", "--id", "1-1"))
	golden(t, "dlq-purge", e.ok("dlq", "purge", "refunds", "--yes"))
	golden(t, "dlq-purge.json", e.ok("dlq", "purge", "refunds", "--yes", "--json"))
}

func TestGroupConsumersTrim(t *testing.T) {
	e := newEnv(t)
	golden(t, "group-create", e.ok("group", "create", "payments", "workers"))
	golden(t, "group-create.json", e.ok("group", "create", "payments", "late", "--start", "newest", "--json"))
	golden(t, "group-create-time", e.ok("group", "create", "orders", "from-time", "--start", "2023-11-14T22:13:20.008Z"))
	r := e.run("group", "create", "payments", "workers")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "consumer group already exists")

	golden(t, "group-reset", e.ok("group", "reset", "orders", "billing", "--to", fixture.ID(2)))
	golden(t, "group-reset-time", e.ok("group", "reset", "orders", "audit", "--to", strconv.Itoa(fixture.BaseMS+7)))
	golden(t, "stat-after-reset", e.ok("stat", "orders"))
	r = e.run("group", "reset", "orders", "billing")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--to is required")

	r = e.run("group", "delete", "payments", "late")
	assert.Equal(t, 2, r.code)
	golden(t, "group-delete", e.ok("group", "delete", "payments", "late", "--yes"))
	r = e.run("group", "delete", "payments", "late", "--yes")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no such consumer group")

	e.goldenBoth("consumers-list", "consumers", "list", "orders", "billing")
	time.Sleep(30 * time.Millisecond)
	e.goldenBoth("consumers-prune-dry-run", "consumers", "prune", "orders", "billing", "--idle", "20ms", "--dry-run")
	golden(t, "consumers-prune", normalize(e.ok("consumers", "prune", "orders", "billing", "--idle", "20ms"), false))
	golden(t, "consumers-prune-again.json", normalize(e.ok("consumers", "prune", "orders", "billing", "--idle", "20ms", "--json"), false))
	r = e.run("consumers", "prune", "orders", "billing")
	assert.Equal(t, 2, r.code)

	r = e.run("trim", "orders", "--maxlen", "5")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "pass --yes")
	r = e.run("trim", "orders", "--yes")
	assert.Equal(t, 2, r.code)
	// billing (reset to 2) still holds 1-3 pending: a trim that deletes
	// them is refused, says what it would cost, and deletes nothing.
	r = e.run("trim", "orders", "--minid", fixture.ID(3), "--yes")
	assert.Equal(t, 1, r.code)
	golden(t, "trim-minid-refused", r.stdout+r.stderr)
	assert.EqualValues(t, 10, e.client.XLen(context.Background(), "orders").Val())
	golden(t, "trim-maxlen-dry-run", e.ok("trim", "orders", "--maxlen", "5", "--dry-run"))
	golden(t, "trim-minid", e.ok("trim", "orders", "--minid", fixture.ID(3), "--yes", "--force"))
	golden(t, "trim-maxlen.json", e.ok("trim", "orders", "--maxlen", "5", "--yes", "--force", "--json"))
	golden(t, "trim-nothing", e.ok("trim", "orders", "--maxlen", "5", "--yes"))
	n, err := e.client.XLen(context.Background(), "orders").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 5, n)
}

func TestDoctor(t *testing.T) {
	// Servers of our own, not REDIS_URL's: the checks read its config.
	t.Run("healthy", func(t *testing.T) {
		e := &env{t: t, srv: redistest.Start(t, redistest.Options{})}
		out := e.ok("doctor")
		golden(t, "doctor-healthy", normalize(out, false))
		golden(t, "doctor-healthy.json", normalize(e.ok("doctor", "--json"), false))
	})
	t.Run("misconfigured", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{"maxmemory-policy allkeys-lru", "maxmemory 100mb"}})
		r := runCLI(context.Background(), "", "--url", srv.URL(), "doctor")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "doctor found problems")
		golden(t, "doctor-misconfigured", normalize(r.stdout, false))
		r = runCLI(context.Background(), "", "--url", srv.URL(), "doctor", "--json")
		assert.Equal(t, 1, r.code)
		golden(t, "doctor-misconfigured.json", normalize(r.stdout, false))
	})
	t.Run("retention", func(t *testing.T) {
		// The topology's entries are from 2023. payments has no group: a
		// stream nothing trims. orders still has entries pending in billing.
		e := newEnv(t)
		r := e.run("doctor", "--json")
		var checks []check
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &checks), r.stdout)
		var ret check
		for _, ch := range checks {
			if ch.Name == "retention" {
				ret = ch
			}
		}
		assert.Equal(t, statusWarn, ret.Status)
		assert.Contains(t, ret.Detail, "1 stream(s) grow without retention")
		assert.Contains(t, ret.Detail, "payments (1 entries")
		assert.NotContains(t, ret.Detail, "orders")
		assert.Contains(t, ret.Advice, "Retention")
	})
	t.Run("acl", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{})
		e := &env{t: t, srv: srv, client: srv.Client(t)}
		ctx := context.Background()
		// "app" may not claim or run scripts, nor ask ACL questions.
		require.NoError(t, e.client.Do(ctx, "ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-xautoclaim", "-@scripting", "-acl|dryrun").Err())
		u := strings.Replace(e.srv.URL(), "redis://", "redis://app:pw@", 1)
		r := runCLI(ctx, "", "--url", u, "doctor")
		assert.Equal(t, 1, r.code)
		golden(t, "doctor-acl-probes", normalize(r.stdout, false))
		// The default user may ask ACL DRYRUN about app.
		r = runCLI(ctx, "", "--url", e.srv.URL(), "doctor", "--acl-user", "app", "--topic", "orders")
		assert.Equal(t, 1, r.code)
		golden(t, "doctor-acl-dryrun", normalize(r.stdout, false))
	})
}

func TestErrors(t *testing.T) {
	r := runCLI(context.Background(), "", "--url", "redis://127.0.0.1:1/0", "--timeout", "2s", "topics")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "millrace: cannot connect to redis://127.0.0.1:1/0")
	r = runCLI(context.Background(), "", "--url", "ftp://x", "topics")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `unknown scheme "ftp"`)
	r = runCLI(context.Background(), "", "frobnicate")
	assert.Equal(t, 2, r.code)
	r = runCLI(context.Background(), "", "stat", "orders", "--bogus")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "unknown flag: --bogus")
	r = runCLI(context.Background(), "", "--help")
	assert.Equal(t, 0, r.code)
	golden(t, "help", r.stdout)
}

func TestExporter(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int)
	go func() {
		a := newApp(strings.NewReader(""), &stdout, &stderr)
		done <- a.run(ctx, []string{"--url", e.srv.URL(), "exporter", "--listen", "127.0.0.1:0"})
	}()
	var url string
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`http://\S+`).FindString(stderr.String())
		url = m
		return m != ""
	}, 10*time.Second, 10*time.Millisecond)
	body := httpGet(t, url)
	for _, want := range []string{
		`millrace_up 1`,
		`millrace_stream_length{topic="orders"} 10`,
		`millrace_dead_letters{topic="refunds"} 1`,
		`millrace_group_lag{group="billing",topic="orders"} 5`,
		`millrace_group_lag{group="audit",topic="orders"} 6`,
		`millrace_group_pending{group="billing",topic="orders"} 3`,
		`millrace_group_consumers{group="billing",topic="orders"} 2`,
		`go_goroutines `,
	} {
		assert.Contains(t, body, want)
	}
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("exporter did not stop")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
