package millrace_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"

	"github.com/millrace/millrace"
)

// A subscription that heard nothing for long sleeps until a publisher
// announces a delayed message (its safety poll is 30 s): the message comes
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
