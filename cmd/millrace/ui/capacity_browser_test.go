package ui

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/redistest"
)

// TestBrowser_CapacityProblems: the overview flags a group that lost
// entries to the topic's ceiling, publishes refused at it, an abandoned
// group (deleted from the problem in one click and a confirmation) and a
// group whose position is beyond the stream's end; the topic page shows
// each group's state.
func TestBrowser_CapacityProblems(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx0 := context.Background()
	require.NoError(t, client.FlushAll(ctx0).Err())
	publish(t, client, "orders", 10, time.Now().Add(-20*time.Minute).UnixMilli())
	require.NoError(t, client.XGroupCreate(ctx0, "orders", "gone", "0").Err())
	require.NoError(t, client.XGroupCreate(ctx0, "orders", "billing", "$").Err())
	require.NoError(t, client.Do(ctx0, "XGROUP", "CREATE", "orders", "future", "99999999999999-0").Err())
	require.NoError(t, client.HSet(ctx0, keys.Overflow("orders"), keys.OverflowDropped+"billing", 7, keys.OverflowRefused, 3).Err())
	cfg := consoleConfig(false)
	cfg.AdminOptions.AbandonedAfter = 10 * time.Minute
	con := start(t, client, cfg, nil)
	con.waitRound(t)
	ctx := browser(t)

	do(t, ctx,
		chromedp.Navigate(con.url+"/"),
		chromedp.WaitVisible(css(`#problems li[data-kind="abandoned"]`)),
	)
	problems := text(t, ctx, `#problems`)
	for _, want := range []string{
		"orders: group gone: abandoned: no consumer seen for a long time, 10 entries unread; delete it unless it is coming back",
		"orders: group billing: 7 entries trimmed by the topic's ceiling before it read them",
		"orders: 3 publishes refused at the topic's ceiling",
		"orders: group future: position beyond the end of the stream: it skips every new message until the stream reaches it; reset it",
	} {
		assert.Contains(t, problems, want)
	}
	assert.Contains(t, eval[string](t, ctx, `document.querySelector('#problems li[data-kind="beyond-end"]').className`), "bad")
	screenshot(t, ctx, "console-problems.png")

	// The abandoned group: one click, a confirmation, gone.
	clickFor(t, ctx, `#problems li[data-kind="abandoned"] button[data-action="delete-group"]`, `#confirm-ok`)
	assert.Contains(t, text(t, ctx, `#confirm-body`), "Group gone is deleted")
	do(t, ctx, chromedp.Click(css(`#confirm-ok`)), until(`document.querySelector('#toast').textContent === 'Group gone deleted.'`))
	_, err := admin.New(client, admin.Options{}).Group(ctx0, "orders", "gone")
	assert.ErrorIs(t, err, admin.ErrNoSuchGroup)
	do(t, ctx, until(`!document.querySelector('#problems li[data-kind="abandoned"]')`))
	assert.Contains(t, con.log.String(), `action=/api/group/delete topic=orders group=gone from=0-0 lag_before=10 pending=0 consumers=0`)

	// The topic page shows each group's state.
	clickFor(t, ctx, `#topics a[data-topic="orders"]`, `.group[data-group="future"]`)
	assert.Equal(t, "beyond the end", text(t, ctx, `.group[data-group="future"] [data-state="beyond-end"]`))
	assert.Equal(t, "7 dropped", text(t, ctx, `.group[data-group="billing"] [data-state="dropped"]`))
}

// TestBrowser_ResetBeyondEnd: a reset to an ID past the stream's end is
// refused by the dialog and the server unless forced; forced, it is done
// and logged as such.
func TestBrowser_ResetBeyondEnd(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx0 := context.Background()
	require.NoError(t, client.FlushAll(ctx0).Err())
	publish(t, client, "orders", 5, 0)
	require.NoError(t, client.XGroupCreate(ctx0, "orders", "billing", "0").Err())
	con := start(t, client, consoleConfig(false), nil)
	con.waitRound(t)
	a := admin.New(client, admin.Options{})

	code, body := con.post(t, "/api/group/reset", `{"topic":"orders","group":"billing","to":"99999999999999-0"}`)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "beyond the end of the stream")
	code, body = con.post(t, "/api/group/reset", `{"topic":"orders","group":"billing","time":"2999-01-01T00:00:00Z"}`)
	assert.Equal(t, http.StatusConflict, code, body)
	g, err := a.Group(ctx0, "orders", "billing")
	require.NoError(t, err)
	assert.Equal(t, "0-0", g.LastDeliveredID, "nothing moved")

	ctx := browser(t)
	billing := `.group[data-group="billing"] `
	do(t, ctx, chromedp.Navigate(con.url+"/#/topic/orders"))
	clickFor(t, ctx, billing+`button[data-action="reset"]`, `#reset-what`)
	do(t, ctx,
		chromedp.Click(css(`input[name=reset-to][value=id]`)),
		chromedp.SendKeys(css(`#reset-id`), "99999999999999-0"),
		chromedp.WaitVisible(css(`#reset-beyond`)),
	)
	assert.Contains(t, text(t, ctx, `#reset-beyond-text`), "This is beyond the end of the stream")
	assert.True(t, eval[bool](t, ctx, `document.querySelector('#confirm-ok').disabled`), "not without force")
	screenshot(t, ctx, "console-reset-beyond-end.png")
	do(t, ctx,
		chromedp.Click(css(`#reset-force`)),
		until(`!document.querySelector('#confirm-ok').disabled`),
		chromedp.Click(css(`#confirm-ok`)),
		until(`document.querySelector('#toast').textContent === 'Group billing reset to 99999999999999-0.'`),
	)
	g, err = a.Group(ctx0, "orders", "billing")
	require.NoError(t, err)
	assert.Equal(t, "99999999999999-0", g.LastDeliveredID)
	assert.True(t, g.BeyondEnd)
	assert.Regexp(t, `action=/api/group/reset topic=orders group=billing from=0-0 lag_before=5 pending=0 to=99999999999999-0 force=true now_at=99999999999999-0`, con.log.String())
	// The page flags it.
	do(t, ctx, chromedp.WaitVisible(css(billing+`[data-state="beyond-end"]`)))
}

// TestBrowser_PauseResume pauses and resumes a group from its page: the
// state shows on the topic page and the overview, is the one Redis holds,
// and each action's log line says what changed.
func TestBrowser_PauseResume(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx0 := context.Background()
	require.NoError(t, client.FlushAll(ctx0).Err())
	publish(t, client, "orders", 4, 0)
	require.NoError(t, client.XGroupCreate(ctx0, "orders", "billing", "0").Err())
	read(t, client, "orders", "billing", "worker-1", 1, 0)
	con := start(t, client, consoleConfig(false), nil)
	con.waitRound(t)
	ctx := browser(t)
	a := admin.New(client, admin.Options{})
	billing := `.group[data-group="billing"] `

	do(t, ctx, chromedp.Navigate(con.url+"/#/topic/orders"))
	clickFor(t, ctx, billing+`button[data-action="pause"]`, `#pause-what`)
	assert.Equal(t, "The subscribers of group billing stop taking new entries within a second and finish the 1 entry they hold. "+
		"New messages wait in the stream (the lag grows) until the group is resumed. The pause holds across restarts of the subscribers.", text(t, ctx, `#pause-what`))
	do(t, ctx, chromedp.Click(css(`#confirm-ok`)),
		until(`document.querySelector('#toast').textContent === 'Group billing paused.'`),
		chromedp.WaitVisible(css(billing+`[data-state="paused"]`)),
		chromedp.WaitVisible(css(billing+`button[data-action="resume"]`)))
	st, err := a.GroupPaused(ctx0, "orders", "billing")
	require.NoError(t, err)
	assert.True(t, st.Paused)
	assert.Contains(t, eval[string](t, ctx, `document.querySelector('.group[data-group="billing"] [data-state="paused"]').title`), "since ")
	scrollTop(t, ctx, `#topic-live h2`)
	screenshot(t, ctx, "console-paused.png")

	do(t, ctx, chromedp.Click(css(`header a.nav`)), chromedp.WaitVisible(css(`#topics tr[data-group="orders/billing"] [data-state="paused"]`)))
	assert.Regexp(t, `orders: group billing: paused since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC, 3 entries waiting`, text(t, ctx, `#problems li[data-kind="paused"]`))

	clickFor(t, ctx, `#topics a[data-topic="orders"]`, billing+`button[data-action="resume"]`)
	clickFor(t, ctx, billing+`button[data-action="resume"]`, `#resume-what`)
	assert.Equal(t, "The subscribers of group billing take new entries again within a second: 3 entries wait for it.", text(t, ctx, `#resume-what`))
	do(t, ctx, chromedp.Click(css(`#confirm-ok`)),
		until(`document.querySelector('#toast').textContent === 'Group billing resumed.'`),
		chromedp.WaitVisible(css(billing+`button[data-action="pause"]`)))
	st, err = a.GroupPaused(ctx0, "orders", "billing")
	require.NoError(t, err)
	assert.False(t, st.Paused)
	log := con.log.String()
	assert.Contains(t, log, `action=/api/group/pause topic=orders group=billing paused=true changed=true`)
	assert.Contains(t, log, `action=/api/group/resume topic=orders group=billing paused=false changed=true`)
}
