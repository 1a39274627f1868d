package ui

import (
	"context"
	"fmt"
	"strings"
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

// TestBrowser_DeadLetterDialogs: with 250 dead letters, more than the 100
// rows of a page, the dialogs of "Replay all" and "Purge all" count in Redis
// as they open; "selected" buttons are disabled while nothing is; the 41st
// dead letter opens under its row, in view, without the page jumping.
func TestBrowser_DeadLetterDialogs(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx0 := context.Background()
	require.NoError(t, client.FlushAll(ctx0).Err())
	publish(t, client, "orders", 1, 0)
	for k := range 250 {
		deadLetter(t, client, "orders", fmt.Sprintf("dead-%d", k), fmt.Sprintf("declined #%d", k))
	}
	con := start(t, client, consoleConfig(false), nil)
	con.waitRound(t)
	ctx := browser(t)

	do(t, ctx,
		chromedp.Navigate(con.url+"/#/dlq/orders"),
		chromedp.WaitVisible(css(`#dead-letters tr.dl-row`)),
	)
	assert.Equal(t, "Page 1: 1–100 of 250, oldest first.", text(t, ctx, `#dlq-more`))
	assert.True(t, eval[bool](t, ctx, `document.querySelector('#purge-selected').disabled && document.querySelector('#replay-selected').disabled`),
		"nothing selected: nothing to replay or purge")
	do(t, ctx, chromedp.Click(css(`#purge-selected`)))
	assert.False(t, eval[bool](t, ctx, `document.querySelector('#confirm').open`), "a disabled button opens no dialog")

	// The 41st: scrolled to, opened, and still in view.
	row41 := `#dead-letters tr.dl-row:nth-child(41)`
	id41 := eval[string](t, ctx, fmt.Sprintf(`(() => { const r = document.querySelector(%q); r.scrollIntoView({block: 'center'}); return r.dataset.id; })()`, row41))
	scrolled := eval[float64](t, ctx, `window.scrollY`)
	require.Greater(t, scrolled, 1000.0)
	clickFor(t, ctx, row41+` a`, `#dead-letter`)
	assert.Equal(t, "declined #40", text(t, ctx, `#dl-reason`))
	assert.Equal(t, id41, eval[string](t, ctx, `document.querySelector('tr.dl-detail').previousElementSibling.dataset.id`), "under its row")
	assert.True(t, eval[bool](t, ctx, `(() => { const r = document.querySelector('#dead-letter').getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight; })()`),
		"the detail is in view")
	assert.Greater(t, eval[float64](t, ctx, `window.scrollY`), 1000.0, "the page did not jump to the top")
	assert.Contains(t, eval[string](t, ctx, `location.hash`), id41, "the address names it")

	// A selection enables the buttons and names its size.
	clickFor(t, ctx, row41+` input[name=dl]`, `#purge-selected:not([disabled])`)
	assert.Equal(t, "Purge 1 selected", text(t, ctx, `#purge-selected`))

	// Replay all counts in Redis: 250, not the 200 rows.
	do(t, ctx, chromedp.Click(css(`#replay-all`)), chromedp.WaitVisible(css(`#confirm-ok`)))
	assert.Contains(t, text(t, ctx, `#confirm-body`), "Every dead letter of orders (250 now)")
	do(t, ctx, chromedp.Click(css(`#confirm-cancel`)), until(`!document.querySelector('#confirm').open`))

	// One more arrives; the list is not read again, the dialog counts it.
	deadLetter(t, client, "orders", "dead-late", "late")
	do(t, ctx, chromedp.Click(css(`#purge-all`)), chromedp.WaitVisible(css(`#confirm-ok`)))
	assert.Contains(t, text(t, ctx, `#confirm-body`), "Every dead letter of orders (251 now) will be deleted for good.")
	do(t, ctx, chromedp.Click(css(`#confirm-ok`)), chromedp.WaitVisible(css(`#dlq-empty`)))
	n, err := client.XLen(ctx0, millrace.DeadLetterTopic("orders")).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.True(t, eval[bool](t, ctx, `document.querySelector('#purge-all').disabled && document.querySelector('#replay-all').disabled`),
		"no dead letter: nothing to replay or purge")
	assert.Contains(t, con.log.String(), `action=/api/purge topic=orders all=true ids=[] deleted=251`)
}

// TestBrowser_LagAndAge: an estimated lag reads "1,000+" on the topic row
// as on the group row; a pending entry claimed a moment ago shows its age
// (14 minutes) beside its idle time; a topic created after the console
// listed the topics opens at once.
func TestBrowser_LagAndAge(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx0 := context.Background()
	require.NoError(t, client.FlushAll(ctx0).Err())
	// 1200 entries; the group is set to the 10th by hand and an entry after
	// it is deleted, so Redis cannot tell the lag and the count stops at
	// its cap.
	pipe := client.Pipeline()
	for k := range 1200 {
		pipe.XAdd(ctx0, &redis.XAddArgs{Stream: "big", ID: fmt.Sprintf("%d-1", 1700000000000+k), Values: []string{"n", fmt.Sprint(k)}})
	}
	_, err := pipe.Exec(ctx0)
	require.NoError(t, err)
	require.NoError(t, client.Do(ctx0, "XGROUP", "CREATE", "big", "slow", "1700000000010-1").Err())
	require.NoError(t, client.XDel(ctx0, "big", "1700000001100-1").Err())
	g, err := admin.New(client, admin.Options{}).Group(ctx0, "big", "slow")
	require.NoError(t, err)
	require.Equal(t, admin.LagLowerBound, g.LagSource, "the scenario needs an estimated lag")

	old := time.Now().Add(-14 * time.Minute)
	publish(t, client, "orders", 1, old.UnixMilli())
	require.NoError(t, client.XGroupCreate(ctx0, "orders", "billing", "0").Err())
	read(t, client, "orders", "billing", "worker-1", 1, 0)
	require.NoError(t, client.XClaim(ctx0, &redis.XClaimArgs{Stream: "orders", Group: "billing", Consumer: "worker-2",
		Messages: []string{fmt.Sprintf("%d-0", old.UnixMilli())}}).Err())

	cfg := consoleConfig(false)
	cfg.DiscoveryInterval = time.Hour
	con := start(t, client, cfg, nil)
	con.waitRound(t)
	ctx := browser(t)
	do(t, ctx,
		chromedp.Navigate(con.url+"/"),
		chromedp.WaitVisible(css(`#topics tr[data-topic="big"]`)),
	)
	assert.Equal(t, "1,000+", text(t, ctx, `#topics tr[data-topic="big"] td:nth-child(7)`), "topic row")
	assert.Equal(t, "1,000+", text(t, ctx, `#topics tr[data-group="big/slow"] td:nth-child(7)`), "group row")

	clickFor(t, ctx, `#topics a[data-topic="orders"]`, `.pending[data-group="billing"] tr.pending-row`)
	pending := `.pending[data-group="billing"] tr.pending-row `
	assert.Equal(t, "worker-2", text(t, ctx, pending+`td:nth-child(2)`))
	assert.Regexp(t, `^1[45]m\d\ds$`, text(t, ctx, pending+`td.age`), "its age, from its ID")
	assert.Regexp(t, `^(\d+ms|\d+s)$`, text(t, ctx, pending+`td.idle`), "the idle time the claim restarted")
	assert.Equal(t, "Age", text(t, ctx, `.pending[data-group="billing"] th:nth-child(3)`))

	// A topic created now: the next discovery is an hour away.
	publish(t, client, "fresh", 2, 0)
	do(t, ctx,
		chromedp.Navigate(con.url+"/#/topic/fresh"),
		chromedp.WaitVisible(css(`#messages article.message`)),
	)
	assert.Contains(t, text(t, ctx, `#topic-live .stats`), "2", "its length")
	assert.NotContains(t, text(t, ctx, `main`), "404")
}

// TestBrowser_RedisDown: when Redis goes away the header says since when
// it is unreachable instead of "live", go-redis's own lines go to the
// console's log, counted, and the header is "live" again once Redis is
// back.
func TestBrowser_RedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client := srv.Client(t)
	publish(t, client, "orders", 3, 0)
	con := start(t, client, consoleConfig(false), nil)
	// go-redis logs through the console's logger for this test.
	redis.SetLogger(NewRedisLogger(con.log.logger(), 10*time.Second))
	t.Cleanup(func() { redis.SetLogger(silent{}) })
	con.waitRound(t)
	ctx := browser(t)
	do(t, ctx,
		chromedp.Navigate(con.url+"/"),
		chromedp.WaitVisible(css(`#topics tr[data-topic="orders"]`)),
		until(`document.querySelector('#live').className === 'live on'`),
	)
	assert.True(t, strings.HasPrefix(text(t, ctx, `#live`), "live"))

	srv.Kill()
	killed := time.Now()
	do(t, ctx, until(`document.querySelector('#live').className === 'live down'`))
	assert.Regexp(t, `^Redis unreachable since \d{1,2}:\d\d:\d\d`, text(t, ctx, `#live`))
	do(t, ctx, until(`document.querySelector('main').textContent.includes('Cannot read Redis')`))
	screenshot(t, ctx, "console-redis-down.png")
	do(t, ctx, until(`document.querySelector('main').textContent.includes('Cannot read Redis')`)) // the overview says its figures are old
	// Three rounds fail: one line from the sampler, go-redis's at most one
	// per 10s.
	rounds, stop := con.sampler.subscribe()
	for failed := 0; failed < 3; {
		select {
		case <-rounds:
			if !con.sampler.snapshot().downSince.IsZero() {
				failed++
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no round for 30s")
		}
	}
	stop()
	log := con.log.String()
	assert.Equal(t, 1, strings.Count(log, `msg="cannot read the topics"`), log)
	lines := strings.Count(log, `msg=go-redis`)
	assert.GreaterOrEqual(t, lines, 1, log)
	assert.LessOrEqual(t, lines, 1+int(time.Since(killed)/(10*time.Second)), "one line each 10s: %s", log)

	srv.StartAgain(t)
	do(t, ctx, until(`document.querySelector('#live').className === 'live on'`))
	assert.Contains(t, con.log.String(), `msg="reading the topics again" down_for=`)
}

// silent drops go-redis's lines after a test that routed them elsewhere.
type silent struct{}

func (silent) Printf(context.Context, string, ...interface{}) {}
