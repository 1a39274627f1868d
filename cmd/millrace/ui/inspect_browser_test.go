package ui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/redistest"
)

// TestBrowser_PendingEntry: a pending entry opens under its row like a
// dead letter: payload, metadata, consumer, deliveries, age, idle and the
// handler's last error, which the list shows too.
func TestBrowser_PendingEntry(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx0 := context.Background()
	require.NoError(t, client.FlushAll(ctx0).Err())
	old := time.Now().Add(-14 * time.Minute).UnixMilli()
	publish(t, client, "orders", 3, old)
	require.NoError(t, client.XGroupCreate(ctx0, "orders", "billing", "0").Err())
	read(t, client, "orders", "billing", "worker-1", 2, 0)
	id := fmt.Sprintf("%d-0", old+1)
	// Delivered twice; the handler's error of the last delivery kept as the
	// RecordErrors middleware keeps it.
	require.NoError(t, client.XClaim(ctx0, &redis.XClaimArgs{Stream: "orders", Group: "billing", Consumer: "worker-2", Messages: []string{id}}).Err())
	require.NoError(t, client.Set(ctx0, keys.LastError("orders", "billing", id), "payment service: 503 Service Unavailable", time.Hour).Err())
	con := start(t, client, consoleConfig(false), nil)
	con.waitRound(t)
	ctx := browser(t)

	row := fmt.Sprintf(`.pending[data-group="billing"] tr.pending-row[data-id="%s"]`, id)
	do(t, ctx, chromedp.Navigate(con.url+"/#/topic/orders"), chromedp.WaitVisible(css(row)))
	assert.Equal(t, "payment service: 503 Service Unavailable", text(t, ctx, row+` td.last-error`), "the list shows the last error")
	clickFor(t, ctx, row+` a`, `#pending-entry`)
	assert.Equal(t, "payment service: 503 Service Unavailable", text(t, ctx, `#pe-last-error`))
	assert.Equal(t, "worker-2", text(t, ctx, `#pe-consumer`))
	assert.Equal(t, "2", text(t, ctx, `#pe-deliveries`))
	assert.Regexp(t, `^1[45]m\d\ds \(added `, text(t, ctx, `#pe-age`))
	assert.Regexp(t, `^(\d+ms|\d+s) since its last delivery$`, text(t, ctx, `#pe-idle`))
	detail := text(t, ctx, `#pending-entry`)
	assert.Contains(t, detail, `"n": 1`, "the payload")
	assert.Contains(t, detail, "checkout", "the metadata")
	assert.Equal(t, id, eval[string](t, ctx, `document.querySelector('tr.pending-detail').previousElementSibling.dataset.id`), "under its row")
	assert.Contains(t, eval[string](t, ctx, `location.hash`), "/pending/billing/"+id)
	scrollTop(t, ctx, `.pending[data-group="billing"]`)
	screenshot(t, ctx, "console-pending-entry.png")

	// Opened from its address, after a reload.
	do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(css(`#pending-entry`)))
	assert.Equal(t, "worker-2", text(t, ctx, `#pe-consumer`))
}

// TestBrowser_ReplayToOneGroup: the replay dialog says which groups will
// see the messages, offers the group that gave up on them or every group,
// and a replay to one group reaches that group only.
func TestBrowser_ReplayToOneGroup(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx0 := context.Background()
	require.NoError(t, client.FlushAll(ctx0).Err())
	publish(t, client, "orders", 1, 0)
	for _, g := range []string{"audit", "billing", "shipping"} {
		require.NoError(t, client.XGroupCreate(ctx0, "orders", g, "$").Err())
	}
	deadLetter(t, client, "orders", "dead-1", "declined") // billing gave up on it
	con := start(t, client, consoleConfig(false), nil)
	con.waitRound(t)
	ctx := browser(t)

	do(t, ctx, chromedp.Navigate(con.url+"/#/dlq/orders"), chromedp.WaitVisible(css(`#dead-letters tr.dl-row`)))
	clickFor(t, ctx, `#dead-letters input[name=dl]`, `#replay-selected:not([disabled])`)
	clickFor(t, ctx, `#replay-selected`, `#replay-groups`)
	assert.Equal(t, "billing", eval[string](t, ctx, `document.querySelector('#replay-group').value`), "the group that gave up on it")
	assert.Equal(t, "Seen by group billing only: the other groups (audit, shipping) skip them.", text(t, ctx, `#replay-groups`))
	do(t, ctx, chromedp.Click(css(`input[name=replay-to][value=every]`)),
		until(`document.querySelector('#replay-groups').textContent.startsWith('Seen by every group')`))
	assert.Equal(t, "Seen by every group: audit, billing, shipping. A group that had processed a message processes it again.", text(t, ctx, `#replay-groups`))
	do(t, ctx, chromedp.Click(css(`input[name=replay-to][value=one]`)),
		until(`document.querySelector('#replay-groups').textContent.startsWith('Seen by group billing')`))
	screenshot(t, ctx, "console-replay.png")
	do(t, ctx, chromedp.Click(css(`#confirm-ok`)),
		until(`document.querySelector('#toast').textContent === 'Replayed 1 to group billing.'`),
	)
	newest, err := admin.New(client, admin.Options{}).Messages(ctx0, "orders", 1)
	require.NoError(t, err)
	require.Len(t, newest, 1)
	assert.Equal(t, "dead-1", newest[0].UUID)
	assert.Equal(t, "billing", newest[0].Metadata[millrace.MetadataReplayGroup], "the entry names the one group that handles it")
	log := con.log.String()
	assert.Regexp(t, `action=/api/replay topic=orders all=false to_group=billing groups=\[billing\] replayed=1 `, log)
	assert.False(t, strings.Contains(log, "action failed"), log)
}

// TestBrowser_BrowseTopic pages through a topic's messages newest first,
// then from an entry ID and from a time, oldest first.
func TestBrowser_BrowseTopic(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	require.NoError(t, client.FlushAll(context.Background()).Err())
	base := time.Now().Add(-time.Hour).UnixMilli()
	publish(t, client, "orders", 45, base)
	con := start(t, client, consoleConfig(false), nil)
	con.waitRound(t)
	ctx := browser(t)
	first := `(document.querySelector('#messages article.message') || {dataset: {}}).dataset.id`
	id := func(k int) string { return fmt.Sprintf("%d-0", base+int64(k)) }

	do(t, ctx, chromedp.Navigate(con.url+"/#/topic/orders"), chromedp.WaitVisible(css(`#messages article.message`)))
	assert.Equal(t, id(44), eval[string](t, ctx, first), "newest first")
	assert.Equal(t, 20, eval[int](t, ctx, `document.querySelectorAll('#messages article.message').length`))
	clickFor(t, ctx, `#browse-next`, `#browse-list[data-page="2"]`)
	assert.Equal(t, id(24), eval[string](t, ctx, first), "the next page is older")
	assert.Contains(t, text(t, ctx, `#browse-page`), "Page 2")
	clickFor(t, ctx, `#browse-next`, `#browse-list[data-page="3"]`)
	assert.Equal(t, 5, eval[int](t, ctx, `document.querySelectorAll('#messages article.message').length`))
	scrollTop(t, ctx, `#browse`)
	screenshot(t, ctx, "console-browse.png")
	assert.False(t, visible(ctx, `#browse-next`), "the last page")
	clickFor(t, ctx, `#browse-prev`, `#browse-list[data-page="2"]`)
	assert.Equal(t, id(24), eval[string](t, ctx, first))

	// From an entry ID, oldest first.
	do(t, ctx,
		chromedp.SetValue(css(`#browse-order`), "oldest"),
		chromedp.SendKeys(css(`#browse-from`), id(10)),
	)
	clickFor(t, ctx, `#browse-go`, fmt.Sprintf(`#browse-list[data-from=%q][data-order="oldest"]`, id(10)))
	assert.Equal(t, id(10), eval[string](t, ctx, first))
	assert.Contains(t, text(t, ctx, `#browse-page`), "Page 1 · 20 oldest first, "+id(10)+" to "+id(29))
	// From a time.
	at := time.UnixMilli(base + 30).UTC().Format("2006-01-02T15:04:05.000Z")
	do(t, ctx, chromedp.SetValue(css(`#browse-from`), at))
	clickFor(t, ctx, `#browse-go`, fmt.Sprintf(`#browse-list[data-from="%d"]`, base+30))
	assert.Equal(t, id(30), eval[string](t, ctx, first))
	do(t, ctx, chromedp.SetValue(css(`#browse-from`), "yesterday-ish"))
	clickFor(t, ctx, `#browse-go`, `#browse-error`)
	assert.Equal(t, "Not an entry ID or a time: yesterday-ish", text(t, ctx, `#browse-error`))
}

// TestBrowser_DeadLetterFilter pages through dead letters and filters them
// by reason or last error, original group and time, oldest or newest
// first; the last error shows in the list and the detail.
func TestBrowser_DeadLetterFilter(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx0 := context.Background()
	require.NoError(t, client.FlushAll(ctx0).Err())
	publish(t, client, "orders", 1, 0)
	base := time.Now().Add(-time.Hour).UnixMilli()
	id := func(k int) string { return fmt.Sprintf("%d-0", base+int64(k)) }
	for k := range 130 {
		group, reason := "billing", "delivered 4 times, more than MaxDeliveries 3"
		md := message.Metadata{
			middleware.ReasonForPoisonedKey: reason, middleware.PoisonedTopicKey: "orders",
			millrace.MetadataDeadLetterConsumer: "worker-1", millrace.MetadataDeadLetterDeliveries: "4",
		}
		if k%3 == 0 {
			group = "audit"
		}
		if k%5 == 0 {
			md[millrace.MetadataLastError] = "card expired: 4242"
		}
		md[millrace.MetadataDeadLetterGroup] = group
		fixture.Add(t, client, millrace.DeadLetterTopic("orders"), id(k), fmt.Sprintf("dead-%d", k), `{}`, md)
	}
	con := start(t, client, consoleConfig(false), nil)
	con.waitRound(t)
	ctx := browser(t)
	rows := `document.querySelectorAll('#dead-letters tr.dl-row')`
	firstRow := `(document.querySelector('#dead-letters tr.dl-row') || {dataset: {}}).dataset.id`

	do(t, ctx, chromedp.Navigate(con.url+"/#/dlq/orders"), chromedp.WaitVisible(css(`#dead-letters tr.dl-row`)))
	assert.Equal(t, 100, eval[int](t, ctx, rows+`.length`))
	assert.Equal(t, "Page 1: 1–100 of 130, oldest first.", text(t, ctx, `#dlq-more`))
	clickFor(t, ctx, `#dlq-next`, `#dlq-list[data-page="2"]`)
	assert.Equal(t, 30, eval[int](t, ctx, rows+`.length`))
	assert.Equal(t, id(100), eval[string](t, ctx, firstRow))
	assert.False(t, visible(ctx, `#dlq-next`), "the last page")
	clickFor(t, ctx, `#dlq-prev`, `#dlq-list[data-page="1"]`)
	assert.Equal(t, id(0), eval[string](t, ctx, firstRow))
	assert.Equal(t, "card expired: 4242", text(t, ctx, `#dead-letters tr.dl-row[data-id="`+id(0)+`"] .last-error`), "the list shows the last error")

	// By last error (any case) and group: k%5 == 0 and k%3 == 0, k < 130.
	do(t, ctx, setValue(`#dlq-reason`, "CARD EXPIRED"), setValue(`#dlq-group`, "audit"))
	clickFor(t, ctx, `#dlq-apply`, `#dlq-list[data-query*="group=audit"]`)
	assert.Equal(t, 9, eval[int](t, ctx, rows+`.length`), "0, 15, 30, ..., 120")
	assert.Equal(t, "Page 1: 9 matches among 130 read, of 130 dead letters.", text(t, ctx, `#dlq-more`))

	// By time, newest first: dead-lettered in [base+10, base+20).
	do(t, ctx, setValue(`#dlq-reason`, ""), setValue(`#dlq-group`, ""),
		setValue(`#dlq-since`, time.UnixMilli(base+10).UTC().Format("2006-01-02 15:04:05.000")),
		setValue(`#dlq-until`, fmt.Sprint(base+20)),
		setValue(`#dlq-order`, "newest"))
	clickFor(t, ctx, `#dlq-apply`, `#dlq-list[data-query*="reverse=1"]`)
	assert.Equal(t, 10, eval[int](t, ctx, rows+`.length`))
	assert.Equal(t, id(19), eval[string](t, ctx, firstRow), "newest first")

	// The detail shows the last error.
	clickFor(t, ctx, `#dead-letters tr.dl-row[data-id="`+id(15)+`"] a`, `#dead-letter`)
	assert.Equal(t, "card expired: 4242", text(t, ctx, `#dl-last-error`))
	assert.Equal(t, "delivered 4 times, more than MaxDeliveries 3", text(t, ctx, `#dl-reason`))
	eval[bool](t, ctx, `(() => { window.scrollTo(0, 0); return true; })()`)
	screenshot(t, ctx, "console-dead-letter-filter.png")

	// Replay all says the filter does not narrow it.
	clickFor(t, ctx, `#replay-all`, `#replay-groups`)
	assert.Contains(t, text(t, ctx, `#confirm-body`), "Every dead letter of orders (130 now, not only those the filter shows)")
}

// setValue sets the value of the form field sel (an empty one too).
func setValue(sel, v string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; return true; })()`, sel, v))(ctx, t)
		return chromedp.Void{}, err
	}
}
