package ui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/redistest"
)

// browser starts Debian's chromium headless for one test and returns a
// chromedp context bounded to 60s.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: apt-get install chromium (make test installs it)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	// The first call starts the browser for the life of bctx: no timeout
	// on it; the actions get one.
	require.NoError(t, chromedp.Do(bctx), "cannot start chromium")
	// Collect what the page writes to its console: an exception fails the
	// test, and everything is shown when it fails.
	var (
		mu         sync.Mutex
		console    []string
		exceptions int
	)
	messages := chromedp.Console(bctx)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, m.String())
			if m.IsException() {
				exceptions++
			}
			mu.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	t.Cleanup(func() {
		cancel()
		cancelBrowser()
		cancelAlloc()
		<-collected
		if exceptions > 0 {
			t.Errorf("the page threw %d exception(s)", exceptions)
		}
		if t.Failed() {
			t.Logf("browser console:\n%s", strings.Join(console, "\n"))
		}
	})
	return ctx
}

// screenshot saves the viewport as a PNG: to docs/ with
// UPDATE_SCREENSHOTS=1 (the README shows them), else to the test's temp
// dir.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	dir := t.TempDir()
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "..", "docs")
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
	t.Logf("screenshot %s", filepath.Join(dir, name))
}

// scrollTop scrolls the page so that sel is at the top of the view, for a
// screenshot.
func scrollTop(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	eval[bool](t, ctx, fmt.Sprintf(`(() => { document.querySelector(%q).scrollIntoView({block: 'start'}); return true; })()`, sel))
}

// scenario builds the topics the browser tests look at and returns the
// prefill that samples 60 rounds, 2s apart, while messages flow:
//   - "orders": a backlog of 40 entries from 20 minutes ago; group
//     "billing" reads one entry every other round and holds 3 old pending
//     entries (falling behind, old pending); group "audit" keeps up; one
//     entry deleted (trimmed);
//   - a dead letter of "orders" that arrives in round 40 (growing DLQ);
//   - "payments": 61 entries never trimmed, no group (no retention with
//     UntrimmedLength 30), one of them foreign.
func scenario(t *testing.T, c redis.UniversalClient) func(*Server) {
	t.Helper()
	ctx := context.Background()
	old := time.Now().Add(-20 * time.Minute).UnixMilli()
	publish(t, c, "orders", 40, old)
	require.NoError(t, c.XGroupCreate(ctx, "orders", "billing", "0").Err())
	require.NoError(t, c.XGroupCreate(ctx, "orders", "audit", "0").Err())
	read(t, c, "orders", "billing", "worker-1", 4, 1)
	read(t, c, "orders", "audit", "auditor", 100, 100)
	require.NoError(t, c.XDel(ctx, "orders", fmt.Sprintf("%d-0", old+39)).Err())
	publish(t, c, "payments", 40, 0)
	return func(s *Server) {
		start := time.Now()
		for k := range 60 {
			publish(t, c, "orders", 2+(k*7)%5, 0)
			read(t, c, "orders", "audit", "auditor", 100, 100)
			if k%2 == 0 {
				read(t, c, "orders", "billing", "worker-2", 1, 1)
			}
			if k%3 == 0 {
				publish(t, c, "payments", 1, 0)
			}
			if k == 40 {
				deadLetter(t, c, "orders", "dead-1", "payment declined: card expired")
			}
			if k == 50 {
				require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "payments", Values: []string{"sku", "A-7", "qty", "2"}}).Err())
			}
			at := start.Add(time.Duration(k-60) * 2 * time.Second)
			s.sampler.now = func() time.Time { return at }
			s.sampler.sample(ctx)
		}
		s.sampler.now = time.Now
	}
}

func consoleConfig(readOnly bool) Config {
	return Config{
		ReadOnly: readOnly, Target: "redis 127.0.0.1 db 0", Interval: 500 * time.Millisecond,
		Thresholds: Thresholds{UntrimmedLength: 30},
	}
}

// TestBrowser_ReplayDeadLetter loads the overview, opens the topic and its
// dead letters, replays the dead letter by clicking, and checks in Redis
// that it is back in its topic.
func TestBrowser_ReplayDeadLetter(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	require.NoError(t, client.FlushAll(context.Background()).Err())
	con := start(t, client, consoleConfig(false), scenario(t, client))
	ctx := browser(t)
	a := admin.New(client, admin.Options{})

	// Overview: every topic, the problems flagged.
	do(t, ctx,
		chromedp.Navigate(con.url+"/"),
		chromedp.WaitVisible(css(`#topics tr[data-topic="orders"]`)),
	)
	problems := text(t, ctx, `#problems`)
	for _, want := range []string{
		"group billing: falling behind", "group billing: oldest pending entry is 20m",
		"dead letters growing, 0 → 1", "payments: no retention: 61 entries",
	} {
		assert.Contains(t, problems, want)
	}
	assert.NotContains(t, problems, "group audit")
	assert.Contains(t, text(t, ctx, `#topics tr[data-topic="orders"]`), "trimmed")
	assert.GreaterOrEqual(t, eval[int](t, ctx, `document.querySelectorAll('#topics td.bad').length`), 3,
		"lag, oldest pending and dead letters stand out")

	// Live: a message published now shows up without reloading the page.
	before, err := client.XLen(context.Background(), "orders").Result()
	require.NoError(t, err)
	publish(t, client, "orders", 1, 0)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](
		fmt.Sprintf(`document.querySelector('#topics tr[data-topic="orders"] td:nth-child(2)').textContent === %q`, fmt.Sprint(before+1)),
		chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the overview did not update")
	screenshot(t, ctx, "console-overview.png")

	// Topic page: groups, consumers, pending entries, newest messages.
	do(t, ctx,
		chromedp.Click(css(`#topics a[data-topic="orders"]`)),
		chromedp.WaitVisible(css(`.group[data-group="billing"] table.consumers`)),
		chromedp.WaitVisible(css(`#messages article.message`)),
	)
	groups := text(t, ctx, `#topic-live`)
	assert.Contains(t, groups, "worker-1")
	assert.Contains(t, groups, "audit")
	assert.Contains(t, text(t, ctx, `.pending[data-group="billing"]`), "worker-1", "the pending entries name their owner")
	messages := text(t, ctx, `#messages`)
	assert.Contains(t, messages, "source")
	assert.Contains(t, messages, "checkout")

	// Dead letters: open the dead letter, then replay it by clicking.
	do(t, ctx,
		chromedp.Click(css(`#dlq-link`)),
		chromedp.WaitVisible(css(`#dead-letters tr.dl-row`)),
		chromedp.Click(css(`#dead-letters tr.dl-row a`)),
		chromedp.WaitVisible(css(`#dead-letter`)),
	)
	assert.Equal(t, "payment declined: card expired", text(t, ctx, `#dl-reason`))
	screenshot(t, ctx, "console-dead-letters.png")

	clickFor(t, ctx, `#dead-letters input[name=dl]`, `#replay-selected:not([disabled])`)
	clickFor(t, ctx, `#replay-selected`, `#confirm-ok`)
	assert.Contains(t, text(t, ctx, `#confirm-body`), "will be published again to the topic each came from")
	do(t, ctx,
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitVisible(css(`#dlq-empty`)),
	)

	n, err := client.XLen(context.Background(), millrace.DeadLetterTopic("orders")).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the dead letter left the dead-letter stream")
	newest, err := a.Messages(context.Background(), "orders", 1)
	require.NoError(t, err)
	require.Len(t, newest, 1)
	assert.Equal(t, "dead-1", newest[0].UUID, "the replayed message is back in its topic")
	assert.Equal(t, `{"order":99,"amount":"12.50"}`, string(newest[0].Payload))
	// Entries of other producers are shown as such.
	do(t, ctx, chromedp.Click(css(`header a.nav`)))
	clickFor(t, ctx, `#topics a[data-topic="payments"]`, `#messages .badge.foreign`)
	assert.Contains(t, text(t, ctx, `#messages article.message:has(.badge.foreign)`), `"sku": "A-7"`)

	assert.Regexp(t, `msg="action done" action=/api/replay topic=orders all=false to_group=billing groups=\[billing\] replayed=1 moved=\[\d+-\d+->orders/\d+-\d+\] missing=\[\] skipped=0`, con.log.String())
}

// TestBrowser_ReadOnly checks that a read-only console shows no action and
// refuses a forged one, from the page and from outside it.
func TestBrowser_ReadOnly(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	require.NoError(t, client.FlushAll(context.Background()).Err())
	publish(t, client, "orders", 3, 0)
	require.NoError(t, client.XGroupCreate(context.Background(), "orders", "billing", "0").Err())
	id := deadLetter(t, client, "orders", "dead-1", "payment declined")
	con := start(t, client, consoleConfig(true), nil)
	con.waitRound(t)
	ctx := browser(t)

	do(t, ctx,
		chromedp.Navigate(con.url+"/#/dlq/orders"),
		chromedp.WaitVisible(css(`#read-only`)),
		chromedp.WaitVisible(css(`#dead-letters tr.dl-row`)),
	)
	assert.Zero(t, eval[int](t, ctx, `document.querySelectorAll('.toolbar button').length`), "no replay or purge button")
	assert.Zero(t, eval[int](t, ctx, `document.querySelectorAll('input[type=checkbox]').length`), "no selection")
	do(t, ctx,
		chromedp.Click(css(`main h1 a`)), // a link within the page: no load event
		chromedp.WaitVisible(css(`.group[data-group="billing"]`)),
	)
	assert.Zero(t, eval[int](t, ctx, `document.querySelectorAll('.group button, #delete-topic').length`), "no group or topic action")

	// A forged action from the page itself, with the right token.
	status := eval[int](t, ctx, fmt.Sprintf(`fetch('/api/replay', {method: 'POST', headers: {'Content-Type': 'application/json',
		'X-Millrace-Csrf': document.querySelector('meta[name="millrace-csrf"]').content},
		body: JSON.stringify({topic: 'orders', ids: [%q]})}).then((r) => r.status)`, id), chromedp.EvalAwaitPromise)
	assert.Equal(t, 403, status)

	// The same from outside the page, for every action.
	for _, path := range []string{"/api/replay", "/api/purge", "/api/group/reset", "/api/group/delete", "/api/group/prune", "/api/topic/delete"} {
		code, body := con.post(t, path, fmt.Sprintf(`{"topic":"orders","group":"billing","ids":[%q],"to":"0"}`, id))
		assert.Equal(t, 403, code, path)
		assert.Contains(t, body, "read-only", path)
	}
	n, err := client.XLen(context.Background(), millrace.DeadLetterTopic("orders")).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the dead letter is still there")
	groups, err := admin.New(client, admin.Options{}).Groups(context.Background(), "orders")
	require.NoError(t, err)
	assert.Len(t, groups, 1, "the group is still there")
	assert.GreaterOrEqual(t, strings.Count(con.log.String(), `msg="action refused"`), 7, con.log.String())
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// do runs browser actions, each within 15s, and logs how long they took.
// The pages redraw on every sampling round: a step that found a node the
// redraw then replaced runs again (no click was sent then).
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	for k, step := range steps {
		began := time.Now()
		_, err := retryStale(ctx, step)
		require.NoError(t, err, "step %d", k+1)
		if d := time.Since(began); d > time.Second {
			t.Logf("step %d took %s", k+1, d)
		}
	}
}

// clickFor clicks sel until want is visible, within 15s. A click can miss:
// the pages redraw on every sampling round, and a redraw that moves the
// node between the click's measuring and its dispatch sends it elsewhere.
// A click that did its work is not repeated (want is visible then).
func clickFor(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := retryStale(ctx, chromedp.Click(css(sel)))
		require.NoError(t, err, "click %s", sel)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = chromedp.Run(wctx, chromedp.WaitVisible(css(want)))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not visible after clicking %s for 15s: %v", want, sel, err)
		}
		if visible(ctx, want) {
			return
		}
	}
}

// visible reports whether sel is on the page and shown.
func visible(ctx context.Context, sel string) bool {
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(
		`(() => { const e = document.querySelector(%q); return !!e && e.offsetParent !== null; })()`, sel)))
	return err == nil && ok
}

// retryStale runs a within 15s, again while it fails on a node that the
// page replaced meanwhile.
func retryStale[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		v, err := chromedp.Run(ctx, a)
		if err == nil || !isStale(err) || ctx.Err() != nil {
			return v, err
		}
	}
}

// isStale reports a DevTools error about a node that no longer exists.
func isStale(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "node with given id") || strings.Contains(msg, "Node is detached")
}

// text is the text of the element sel, read in one step in the page, so a
// redraw cannot replace the element between finding and reading it. It
// waits until the element is there and has text.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Poll[string](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && e.innerText; })()`, sel)))
	require.NoError(t, err, sel)
	return s
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	require.NoError(t, err, expr)
	return v
}
