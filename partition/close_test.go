package partition_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/partition"
)

// slowSubscriber is a message.Subscriber whose Close blocks until release
// is closed. Each subscription has one message waiting; its channel is
// closed by Close, after the release.
type slowSubscriber struct {
	entered  chan struct{} // closed when Close is called
	release  chan struct{}
	returned atomic.Bool // set just before Close returns

	mu   sync.Mutex
	outs []chan *message.Message
}

var errSlowClose = errors.New("slow close")

func (s *slowSubscriber) Subscribe(_ context.Context, topic string) (<-chan *message.Message, error) {
	ch := make(chan *message.Message, 1)
	ch <- message.NewMessage(topic, nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outs = append(s.outs, ch)
	return ch, nil
}

func (s *slowSubscriber) Close() error {
	close(s.entered)
	<-s.release
	s.mu.Lock()
	for _, ch := range s.outs {
		close(ch)
	}
	s.mu.Unlock()
	s.returned.Store(true)
	return errSlowClose
}

// A Close that runs while another is still closing the wrapped subscriber
// returns only after it: once the wrapped Close has returned and the merged
// channel is closed. The subscription holds a message nobody acked.
func TestClose_Concurrent(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		inner := &slowSubscriber{entered: make(chan struct{}), release: make(chan struct{})}
		sub, err := partition.NewSubscriber(inner, partition.Config{Topics: map[string]int{"orders": 2}})
		require.NoError(t, err)
		out, err := sub.Subscribe(context.Background(), "orders")
		require.NoError(t, err)
		held := <-out // never acked

		firstErr := make(chan error, 1)
		go func() { firstErr <- sub.Close() }()
		<-inner.entered
		var secondErr error
		secondDone := make(chan struct{})
		go func() {
			secondErr = sub.Close()
			close(secondDone)
		}()
		synctest.Wait() // both calls are blocked, or the second returned
		select {
		case <-secondDone:
			t.Error("the second Close returned while the first was closing the wrapped subscriber")
		default:
		}

		close(inner.release)
		<-secondDone
		assert.NoError(t, secondErr)
		assert.True(t, inner.returned.Load(), "the second Close returned before the wrapped Close")
		select {
		case msg, open := <-out:
			assert.False(t, open, "message %v after Close", msg)
		default:
			t.Error("the second Close returned before the merged channel was closed")
		}
		assert.ErrorIs(t, <-firstErr, errSlowClose, "the first Close returns the wrapped subscriber's error")
		assert.NoError(t, sub.Close(), "idempotent")
		_, err = sub.Subscribe(context.Background(), "orders")
		assert.ErrorIs(t, err, partition.ErrSubscriberClosed)
		held.Ack()
	})
}
