package partition

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/membership"
)

// ownedState is where a partition of a member is in its life.
type ownedState int

const (
	taking    ownedState = iota // Subscribe is acquiring the partition's consumer name
	running                     // subscribed: its messages are forwarded
	releasing                   // its subscription is ending
)

// owned is a partition a member takes, reads or releases: its own
// millrace.Subscriber, under the partition's consumer name.
type owned struct {
	p      int
	state  ownedState
	sub    *millrace.Subscriber
	cancel context.CancelFunc // ends the acquisition, or the subscription
	// release is closed when the partition is being released: a message
	// taken from it but not handed out is Nacked instead.
	release   chan struct{}
	forwarded chan struct{} // closed once its channel is drained
	since     time.Time
}

// event is what a partition's goroutines report to the member.
type event struct {
	p    int
	kind eventKind
	ch   <-chan *message.Message // taken: the partition's messages
	err  error                   // failed: why
}

type eventKind int

const (
	taken    eventKind = iota // Subscribe returned the partition's channel
	failed                    // Subscribe failed or was given up
	released                  // the subscription ended and its name is free
)

// take subscribes to partition p under its consumer name, in the
// background: Subscribe waits while the name's lease is held elsewhere.
func (m *member) take(p int) {
	cfg := m.config.Subscriber
	cfg.Consumer = membership.Consumer(m.group, p)
	sub, err := millrace.NewSubscriber(m.client, cfg, m.logger)
	if err != nil { // validated with the config: not expected
		m.logger.Error("Cannot build the partition's subscriber", err, watermill.LogFields{"partition": p})
		return
	}
	ctx, cancel := context.WithCancel(m.values)
	o := &owned{p: p, state: taking, sub: sub, cancel: cancel, release: make(chan struct{}), forwarded: make(chan struct{}), since: time.Now()}
	m.owned[p] = o
	go func() {
		ch, err := sub.Subscribe(ctx, m.parts[p])
		if err != nil {
			m.events <- event{p: p, kind: failed, err: err}
			return
		}
		m.events <- event{p: p, kind: taken, ch: ch}
	}()
}

// handle applies what a partition's goroutine reports.
func (m *member) handle(ev event) {
	o := m.owned[ev.p]
	fields := watermill.LogFields{"partition": ev.p, "after": time.Since(o.since).Round(time.Millisecond)}
	switch ev.kind {
	case failed:
		delete(m.owned, ev.p)
		_ = o.sub.Close()
		switch {
		case o.stopped():
			m.logger.Debug("Gave up taking partition", fields)
		case isInUse(ev.err):
			m.logger.Info("Partition is still held by another member; trying again", fields)
		default:
			m.takeLog.Failure("Cannot take partition; trying again", ev.err, fields)
		}
	case taken:
		o.state = running
		go o.forward(ev.ch, m.out)
		if o.stopped() {
			m.release(o) // given up while Subscribe was returning
			return
		}
		m.takeLog.Recovered("Taking partitions again", nil)
		m.logger.Info("Took partition", fields)
	case released:
		delete(m.owned, ev.p)
		m.logger.Info("Released partition", fields)
	}
}

// stop gives the partition up: it cancels the acquisition or ends the
// subscription, and makes forward Nack what it holds. Only the member's
// goroutine calls it.
func (o *owned) stop() {
	if !o.stopped() {
		close(o.release)
		o.cancel()
	}
}

// stopped reports whether the partition was given up.
func (o *owned) stopped() bool {
	select {
	case <-o.release:
		return true
	default:
	}
	return false
}

// forward hands the partition's messages out on out until its channel
// closes. Once the partition is being released, a message it holds is
// Nacked: it stays pending at the partition's consumer name and the next
// owner delivers it first.
func (o *owned) forward(in <-chan *message.Message, out chan<- *message.Message) {
	defer close(o.forwarded)
	for msg := range in {
		select {
		case out <- msg:
		case <-o.release:
			msg.Nack()
		}
	}
}

// release ends the partition's subscription in the background: it stops
// handing out messages, waits (up to CloseTimeout) for the handlers to
// acknowledge those they hold, releases the rest and frees the consumer
// name. The member hears when it is done.
func (m *member) release(o *owned) {
	o.state = releasing
	o.since = time.Now()
	o.stop()
	go func() {
		_ = o.sub.Close()
		<-o.forwarded
		m.events <- event{p: o.p, kind: released}
	}()
}
