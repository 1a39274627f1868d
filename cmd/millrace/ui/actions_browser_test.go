package ui

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/redistest"
)

// TestBrowser_GroupActions resets, prunes and deletes a group and purges
// the dead letters through the page, checking what each confirmation says
// and what Redis holds afterwards.
func TestBrowser_GroupActions(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	require.NoError(t, client.FlushAll(context.Background()).Err())
	ctx0 := context.Background()
	publish(t, client, "orders", 10, 0)
	require.NoError(t, client.XGroupCreate(ctx0, "orders", "billing", "0").Err())
	read(t, client, "orders", "billing", "worker-1", 2, 1) // holds 1 pending
	read(t, client, "orders", "billing", "worker-2", 2, 2) // holds none
	deadLetter(t, client, "orders", "dead-1", "declined")
	deadLetter(t, client, "orders", "dead-2", "declined")
	con := start(t, client, consoleConfig(false), nil)
	con.waitRound(t)
	ctx := browser(t)
	a := admin.New(client, admin.Options{})
	group := func() admin.GroupStats {
		g, err := a.Group(ctx0, "orders", "billing")
		require.NoError(t, err)
		return g
	}
	billing := `.group[data-group="billing"] `

	// Reset to the newest entry: the confirmation counts what is skipped.
	do(t, ctx, chromedp.Navigate(con.url+"/#/topic/orders"))
	clickFor(t, ctx, billing+`button[data-action="reset"]`, `#reset-what`)
	do(t, ctx, chromedp.Click(css(`input[name=reset-to][value=newest]`)))
	assert.Equal(t, "Group billing will skip everything it has not read yet: 6 unread entries are never delivered to it. Its 1 pending entry stays pending.",
		text(t, ctx, `#reset-what`))
	do(t, ctx, chromedp.Click(css(`#confirm-ok`)), chromedp.WaitVisible(css(`#toast.show`)))
	assert.Contains(t, text(t, ctx, `#toast`), "Group billing reset to $.")
	assert.Zero(t, group().Lag)
	assert.EqualValues(t, 1, group().Pending)

	// Prune: the dry run names who goes and who stays.
	do(t, ctx,
		chromedp.Click(css(billing+`button[data-action="prune"]`)),
		chromedp.Clear(css(`#prune-idle`)),
		chromedp.SendKeys(css(`#prune-idle`), "0s"),
		// Each key asks for a new preview; the button is enabled once the
		// last one is in.
		until(`document.querySelector('#prune-what').textContent.includes('worker-2') && !document.querySelector('#confirm-ok').disabled`),
	)
	assert.Regexp(t, `^Removes 1 consumer: worker-2\.\s+Kept, since they still hold pending entries: worker-1 \(1 pending, idle \d+m?s\)\.$`,
		text(t, ctx, `#prune-what`))
	do(t, ctx, chromedp.Click(css(`#confirm-ok`)), until(`document.querySelector('#toast').textContent.startsWith('Removed 1')`))
	require.Len(t, group().Consumers, 1)
	assert.Equal(t, "worker-1", group().Consumers[0].Name)

	// Delete: the confirmation says what goes with the group.
	do(t, ctx,
		// The page has heard of the round after the prune.
		until(`document.querySelectorAll('.group[data-group="billing"] table.consumers tbody tr').length === 1`),
		chromedp.Click(css(billing+`button[data-action="delete"]`)),
		chromedp.WaitVisible(css(`#confirm-ok`)),
	)
	assert.Contains(t, text(t, ctx, `#confirm-body`), "its 1 pending entry is no longer tracked for it and its 1 consumer go with it")
	do(t, ctx, chromedp.Click(css(`#confirm-ok`)), until(`document.querySelector('#toast').textContent === 'Group billing deleted.'`))
	_, err := a.Group(ctx0, "orders", "billing")
	assert.ErrorIs(t, err, admin.ErrNoSuchGroup)

	// Purge all dead letters, after a confirmation that it cannot be undone.
	do(t, ctx,
		chromedp.Click(css(`#dlq-link`)),
		chromedp.WaitVisible(css(`#dead-letters tr.dl-row`)),
		chromedp.Click(css(`#purge-all`)),
		chromedp.WaitVisible(css(`#confirm-ok`)),
	)
	assert.Contains(t, text(t, ctx, `#confirm-body`), "Every dead letter of orders (2 now) will be deleted for good. This cannot be undone.")
	do(t, ctx, chromedp.Click(css(`#confirm-ok`)), chromedp.WaitVisible(css(`#dlq-empty`)))
	n, err := client.XLen(ctx0, millrace.DeadLetterTopic("orders")).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
	log := con.log.String()
	for _, want := range []string{
		`action=/api/group/reset topic=orders group=billing from=\d+-\d+ lag_before=6 pending=1 to=\$ now_at=\d+-\d+ lag_after=0 `,
		`action=/api/group/prune topic=orders group=billing idle=0s dry_run=false removed=\[worker-2\] kept=\[worker-1\] `,
		`action=/api/group/delete topic=orders group=billing from=\d+-\d+ lag_before=0 pending=1 consumers=1 `,
		`action=/api/purge topic=orders all=true ids=\[\] deleted=2 `,
	} {
		assert.Regexp(t, want, log)
	}
}

// until waits until the JavaScript expression is true in the page.
func until(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr)(ctx, t)
		return chromedp.Void{}, err
	}
}
