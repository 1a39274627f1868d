package admin_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/fixture"
)

func ids[T any](items []T, id func(T) string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

func msgIDs(p admin.MessagePage) []string {
	return ids(p.Messages, func(m admin.Message) string { return m.ID })
}

func letterIDs(p admin.DeadLetterPage) []string {
	return ids(p.DeadLetters, func(d admin.DeadLetter) string { return d.ID })
}

// TestBrowseMessages pages through a topic forward and backward, by ID and
// by time, and refuses a topic of which nothing exists.
func TestBrowseMessages(t *testing.T) {
	t.Parallel()
	_, a := withTopology(t)
	ctx := testCtx(t)

	page, err := a.BrowseMessages(ctx, "orders", admin.MessageQuery{Start: fixture.ID(3), Count: 4})
	require.NoError(t, err)
	assert.Equal(t, []string{fixture.ID(3), fixture.ID(4), fixture.ID(5), fixture.ID(6)}, msgIDs(page))
	assert.Equal(t, fixture.ID(6), page.Next)
	assert.Equal(t, "uuid-03", page.Messages[0].UUID)
	page, err = a.BrowseMessages(ctx, "orders", admin.MessageQuery{Start: fixture.ID(3), Count: 4, After: page.Next})
	require.NoError(t, err)
	assert.Equal(t, []string{fixture.ID(7), fixture.ID(8), fixture.ID(9), fixture.ID(10)}, msgIDs(page))
	page, err = a.BrowseMessages(ctx, "orders", admin.MessageQuery{Start: fixture.ID(3), Count: 4, After: page.Next})
	require.NoError(t, err)
	assert.Empty(t, page.Messages)
	assert.Empty(t, page.Next)

	// Newest first, between two times (milliseconds), in pages of 2.
	q := admin.MessageQuery{Start: strconv.Itoa(fixture.BaseMS + 2), End: strconv.Itoa(fixture.BaseMS + 6), Count: 2, Reverse: true}
	var all []string
	for {
		page, err = a.BrowseMessages(ctx, "orders", q)
		require.NoError(t, err)
		all = append(all, msgIDs(page)...)
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	assert.Equal(t, []string{fixture.ID(6), fixture.ID(5), fixture.ID(4), fixture.ID(3), fixture.ID(2)}, all)

	_, err = a.BrowseMessages(ctx, "ordres", admin.MessageQuery{})
	require.ErrorIs(t, err, admin.ErrNoSuchTopic)
	assert.Equal(t, "millrace: no such topic: ordres", err.Error())
	page, err = a.BrowseMessages(ctx, "refunds", admin.MessageQuery{})
	require.NoError(t, err, "a topic with dead letters only exists")
	assert.Empty(t, page.Messages)
	_, err = a.BrowseMessages(ctx, "orders", admin.MessageQuery{Start: "yesterday"})
	require.Error(t, err)
}

// TestDeadLetterPage filters dead letters by reason, group and time, and
// pages through them with Next.
func TestDeadLetterPage(t *testing.T) {
	t.Parallel()
	c, a := withTopology(t)
	ctx := testCtx(t)
	// 3 from billing ("payment declined", ID(101)..ID(103)); add 4 from
	// shipping ("address unknown", ID(104)..ID(107)).
	for n := 4; n <= 7; n++ {
		fixture.Add(t, c, millrace.DeadLetterTopic("orders"), fixture.ID(100+n), fmt.Sprintf("dead-%d", n), "{}", message.Metadata{
			middleware.ReasonForPoisonedKey:  "handler failed: Address unknown",
			middleware.PoisonedTopicKey:      "orders",
			millrace.MetadataDeadLetterGroup: "shipping",
		})
	}
	dl := func(n int) string { return fixture.ID(100 + n) }

	page, err := a.DeadLetterPage(ctx, "orders", admin.DeadLetterQuery{Reason: "ADDRESS", Count: 3})
	require.NoError(t, err)
	assert.Equal(t, []string{dl(4), dl(5), dl(6)}, letterIDs(page))
	assert.Equal(t, dl(6), page.Next)
	page, err = a.DeadLetterPage(ctx, "orders", admin.DeadLetterQuery{Reason: "ADDRESS", Count: 3, After: page.Next})
	require.NoError(t, err)
	assert.Equal(t, []string{dl(7)}, letterIDs(page))
	assert.Empty(t, page.Next)

	page, err = a.DeadLetterPage(ctx, "orders", admin.DeadLetterQuery{Group: "billing", Reverse: true})
	require.NoError(t, err)
	assert.Equal(t, []string{dl(3), dl(2), dl(1)}, letterIDs(page))
	assert.EqualValues(t, 7, page.Scanned)

	// By time: dead-lettered at or after ID(102)'s time, before ID(106)'s.
	page, err = a.DeadLetterPage(ctx, "orders", admin.DeadLetterQuery{
		Since: time.UnixMilli(fixture.BaseMS + 102), Until: time.UnixMilli(fixture.BaseMS + 106)})
	require.NoError(t, err)
	assert.Equal(t, []string{dl(2), dl(3), dl(4), dl(5)}, letterIDs(page))

	// Unfiltered paging, and the old call.
	page, err = a.DeadLetterPage(ctx, "orders", admin.DeadLetterQuery{Count: 5, Reverse: true, After: dl(6)})
	require.NoError(t, err)
	assert.Equal(t, []string{dl(5), dl(4), dl(3), dl(2), dl(1)}, letterIDs(page))
	letters, err := a.DeadLetters(ctx, "orders", admin.DeadLetterQuery{Group: "shipping", Reason: "declined"})
	require.NoError(t, err)
	assert.Empty(t, letters)

	_, err = a.DeadLetterPage(ctx, "ordres", admin.DeadLetterQuery{})
	require.ErrorIs(t, err, admin.ErrNoSuchTopic)
	page, err = a.DeadLetterPage(ctx, "payments", admin.DeadLetterQuery{})
	require.NoError(t, err, "a topic with a stream and no dead letters")
	assert.Empty(t, page.DeadLetters)
}
