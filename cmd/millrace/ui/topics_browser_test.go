package ui

import (
	"context"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// TestBrowser_DeleteTopic: deleting a topic asks for its name typed again,
// says what goes with it, and is refused while a group holds pending
// entries unless forced; forced, the stream, its dead letters and groups
// are gone and the log says what was deleted.
func TestBrowser_DeleteTopic(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx0 := context.Background()
	require.NoError(t, client.FlushAll(ctx0).Err())
	publish(t, client, "orders", 5, 0)
	publish(t, client, "payments", 1, 0)
	require.NoError(t, client.XGroupCreate(ctx0, "orders", "billing", "0").Err())
	read(t, client, "orders", "billing", "worker-1", 2, 0)
	deadLetter(t, client, "orders", "dead-1", "declined")
	con := start(t, client, consoleConfig(false), nil)
	con.waitRound(t)

	code, body := con.post(t, "/api/topic/delete", `{"topic":"orders","confirm":"orders"}`)
	assert.Equal(t, http.StatusConflict, code, "pending entries: refused without force")
	assert.Contains(t, body, "would be lost")
	code, _ = con.post(t, "/api/topic/delete", `{"topic":"orders","force":true}`)
	assert.Equal(t, http.StatusBadRequest, code, "the name must be repeated")
	n, err := client.Exists(ctx0, "orders", millrace.DeadLetterTopic("orders")).Result()
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "nothing deleted")

	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(con.url+"/#/topic/orders"))
	clickFor(t, ctx, `#delete-topic`, `#delete-topic-name`)
	assert.Equal(t, "Topic orders is deleted for good with everything of it: 5 entries, 1 consumer group, 1 dead letter, its delayed messages and its keys. This cannot be undone. Stop its publishers and subscribers first: they would create it again.",
		text(t, ctx, `#delete-topic-what`))
	assert.Contains(t, text(t, ctx, `#delete-topic-pending`), "billing (2)")
	do(t, ctx, chromedp.SendKeys(css(`#delete-topic-name`), "order"))
	assert.True(t, eval[bool](t, ctx, `document.querySelector('#confirm-ok').disabled`), "not the name")
	do(t, ctx, chromedp.SendKeys(css(`#delete-topic-name`), "s"))
	assert.True(t, eval[bool](t, ctx, `document.querySelector('#confirm-ok').disabled`), "pending entries, not forced")
	screenshot(t, ctx, "console-delete-topic.png")
	do(t, ctx,
		chromedp.Click(css(`#delete-topic-force`)),
		until(`!document.querySelector('#confirm-ok').disabled`),
		chromedp.Click(css(`#confirm-ok`)),
		until(`document.querySelector('#toast').textContent === 'Topic orders deleted: 5 entries, 1 dead letter, 1 group.'`),
		chromedp.WaitVisible(css(`#topics tr[data-topic="payments"]`)),
		until(`!document.querySelector('#topics tr[data-topic="orders"]')`),
	)
	n, err = client.Exists(ctx0, "orders", millrace.DeadLetterTopic("orders")).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Regexp(t, `msg="action done" action=/api/topic/delete topic=orders force=true entries=5 dead_letters=1 delayed=0 groups=\[billing:2-pending\] partitions=0 keys=\d+`, con.log.String())
}
