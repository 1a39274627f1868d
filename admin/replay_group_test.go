package admin_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
)

// groupSub subscribes a consumer group of topic with MaxDeliveries 1.
func groupSub(t *testing.T, c redis.UniversalClient, topic, group string) <-chan *message.Message {
	t.Helper()
	sub, err := millrace.NewSubscriber(c, millrace.SubscriberConfig{
		ConsumerGroup: group,
		MaxDeliveries: 1,
		NackBackoff:   time.Millisecond,
		BlockTime:     50 * time.Millisecond,
		CloseTimeout:  time.Second,
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	return ch
}

func next(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return nil
	}
}

// groupPast waits until group has read past entry id and holds nothing
// pending: it has acknowledged id (a message handed out waits unacknowledged
// for the test to take it).
func groupPast(t *testing.T, c redis.UniversalClient, topic, group, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		gs, err := c.XInfoGroups(context.Background(), topic).Result()
		require.NoError(t, err)
		for _, g := range gs {
			if g.Name == group {
				return entryid.Compare(g.LastDeliveredID, id) >= 0 && g.Pending == 0
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "group %s did not acknowledge %s", group, id)
}

// A message one group (audit) processed and another (billing) gave up on is
// replayed to billing only: billing handles it again, audit's subscriber
// acknowledges it without handing it out. Replayed to all, both get it.
func TestReplay_ToOneGroup(t *testing.T) {
	c, a := newAdmin(t)
	ctx := testCtx(t)
	topic := "refunds"
	billing := groupSub(t, c, topic, "billing")
	audit := groupSub(t, c, topic, "audit")
	pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{}, nil)
	require.NoError(t, err)
	defer pub.Close()
	sent := message.NewMessage("refund-1", []byte(`{"amount":10}`))
	require.NoError(t, pub.Publish(topic, sent))

	next(t, audit).Ack()
	next(t, billing).Nack()
	require.Eventually(t, func() bool { return xlen(t, c, millrace.DeadLetterTopic(topic)) == 1 }, 10*time.Second, 5*time.Millisecond)

	groups, err := a.ReplayGroups(ctx, topic, admin.ReplayOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"audit", "billing"}, groups, "replaying to all reaches every group")
	groups, err = a.ReplayGroups(ctx, topic, admin.ReplayOptions{Group: "billing"})
	require.NoError(t, err)
	assert.Equal(t, []string{"billing"}, groups)
	_, err = a.ReplayGroups(ctx, topic, admin.ReplayOptions{Group: "nosuch"})
	require.ErrorIs(t, err, admin.ErrNoSuchGroup)
	_, err = a.ReplayDeadLetters(ctx, topic, admin.ReplayOptions{Group: "nosuch"})
	require.ErrorIs(t, err, admin.ErrNoSuchGroup)
	assert.EqualValues(t, 1, xlen(t, c, millrace.DeadLetterTopic(topic)), "a refused replay moves nothing")

	dry, err := a.ReplayDeadLetters(ctx, topic, admin.ReplayOptions{Group: "billing", DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"billing"}, dry.Groups)
	require.Len(t, dry.Replayed, 1)

	res, err := a.ReplayDeadLetters(ctx, topic, admin.ReplayOptions{Group: "billing"})
	require.NoError(t, err)
	assert.Equal(t, []string{"billing"}, res.Groups)
	require.Len(t, res.Replayed, 1)
	again := next(t, billing)
	assert.Equal(t, "refund-1", again.UUID)
	assert.Equal(t, "billing", again.Metadata.Get(millrace.MetadataReplayGroup))
	again.Ack()
	groupPast(t, c, topic, "audit", res.Replayed[0].NewID)
	select {
	case m := <-audit:
		t.Fatalf("audit handled the replay meant for billing: %s", m.UUID)
	default:
	}

	// Replayed to all: today's behaviour, both groups handle it.
	require.NoError(t, pub.Publish(topic, message.NewMessage("refund-2", nil)))
	next(t, audit).Ack()
	next(t, billing).Nack()
	require.Eventually(t, func() bool { return xlen(t, c, millrace.DeadLetterTopic(topic)) == 1 }, 10*time.Second, 5*time.Millisecond)
	res, err = a.ReplayDeadLetters(ctx, topic, admin.ReplayOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"audit", "billing"}, res.Groups)
	for _, ch := range []<-chan *message.Message{audit, billing} {
		m := next(t, ch)
		assert.Equal(t, "refund-2", m.UUID)
		assert.Empty(t, m.Metadata.Get(millrace.MetadataReplayGroup))
		m.Ack()
	}
}
