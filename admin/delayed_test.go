package admin_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

// MoveDueDelayed serves topics whose consumers are not Millrace subscribers.
func TestMoveDueDelayed(t *testing.T) {
	t.Parallel()
	c, a := newAdmin(t)
	topic := "{tagged}topic-" + watermill.NewShortUUID() // a topic with its own hash tag
	pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	ctx := context.Background()

	delayed := func(payload string, d time.Duration) *message.Message {
		msg := message.NewMessage(watermill.NewUUID(), []byte(payload))
		delay.Message(msg, delay.For(d))
		return msg
	}
	due, notDue := delayed("due", time.Second), delayed("not due", time.Hour)
	require.NoError(t, pub.Publish(topic, due, notDue))
	moved, err := a.MoveDueDelayed(ctx, topic, 0)
	require.NoError(t, err)
	assert.Zero(t, moved, "nothing is due yet")

	time.Sleep(1100 * time.Millisecond) // until the first message is due
	moved, err = a.MoveDueDelayed(ctx, topic, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, moved)
	all, err := c.XRange(ctx, topic, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, all, 1)
	got, err := millrace.DefaultMarshaler{}.Unmarshal(all[0].Values)
	require.NoError(t, err)
	assert.Equal(t, due.UUID, got.UUID)
	assert.Equal(t, "due", string(got.Payload))
	n, err := c.ZCard(ctx, millrace.DelayedKey(topic)).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the other message waits")

	_, err = a.MoveDueDelayed(ctx, "", 0)
	require.ErrorIs(t, err, millrace.ErrEmptyTopic)
}
