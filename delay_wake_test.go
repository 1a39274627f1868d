package millrace_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"

	"github.com/millrace/millrace"
)

// A subscription that heard nothing for long sleeps until a publisher
// announces a delayed message (its safety poll is a minute): the message comes
// at its due time, far sooner than any poll would find it.
func TestDelay_AnnouncementWakesIdleMover(t *testing.T) {
	t.Parallel()
	fx := newGroupTopic(t, nil)
	for round := range 3 {
		msg := message.NewMessage(watermill.NewUUID(), []byte("later"))
		delay.Message(msg, delay.For(50*time.Millisecond))
		published := time.Now()
		if err := fx.pub.Publish(fx.topic, msg); err != nil {
			t.Fatal(err)
		}
		m := receiveWithin(t, fx.ch, 10*time.Second)
		assert.Equal(t, msg.UUID, m.UUID, "round %d", round)
		assert.GreaterOrEqual(t, time.Since(published), 50*time.Millisecond, "never early")
		m.Ack()
	}
}

// A broadcast subscriber with NoDelayedMover does not listen: a group
// subscriber of the topic moves the message for everyone.
func TestDelay_NoDelayedMoverDoesNotListen(t *testing.T) {
	t.Parallel()
	fx := newGroupTopic(t, nil)
	bc := subscribe(t, fx.subscriber(t, millrace.SubscriberConfig{BlockTime: 100 * time.Millisecond, NoDelayedMover: true}), fx.topic)
	msg := message.NewMessage(watermill.NewUUID(), []byte("later"))
	delay.Message(msg, delay.For(50*time.Millisecond))
	if err := fx.pub.Publish(fx.topic, msg); err != nil {
		t.Fatal(err)
	}
	receiveWithin(t, fx.ch, 10*time.Second).Ack()
	receiveWithin(t, bc, 10*time.Second).Ack()
}

// receiveWithin waits up to d for a message on ch.
func receiveWithin(t *testing.T, ch <-chan *message.Message, d time.Duration) *message.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(d):
		t.Fatalf("no message within %s", d)
		return nil
	}
}

// A delayed message whose announcement was not heard (here: none was sent)
// is found when the listener subscribes again after a reconnect: every
// mover of the channel looks once, long before its safety poll.
func TestDelay_ResubscribeLooksForMissedAnnouncements(t *testing.T) {
	t.Parallel()
	fx := newGroupTopic(t, nil)
	// A first delayed message makes sure the mover has settled into
	// waiting for announcements.
	first := message.NewMessage(watermill.NewUUID(), []byte("first"))
	delay.Message(first, delay.For(time.Millisecond))
	if err := fx.pub.Publish(fx.topic, first); err != nil {
		t.Fatal(err)
	}
	receiveWithin(t, fx.ch, 10*time.Second).Ack()
	// A mover polls every 200 ms for its first 2 s, whatever it hears (an
	// announcement may have come before its SUBSCRIBE took effect); after
	// its first poll past them it waits for announcements.
	time.Sleep(2*time.Second + 500*time.Millisecond)

	ctx := context.Background()
	due := float64(time.Now().UnixMilli())
	if err := fx.client.ZAdd(ctx, millrace.DelayedKey(fx.topic), redis.Z{Score: due, Member: "unannounced"}).Err(); err != nil {
		t.Fatal(err)
	}
	requireNoMessage(t, fx.ch, 300*time.Millisecond)
	if err := fx.client.Do(ctx, "client", "kill", "type", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	m := receiveWithin(t, fx.ch, 10*time.Second)
	assert.Equal(t, "true", m.Metadata.Get(millrace.MetadataForeign))
	m.Ack()
}
