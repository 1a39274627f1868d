package millrace

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/rediserr"
)

// wakeups hears the publishers' announcements of new delayed messages
// (PUBLISH "{topic}:delayed" <due ms>) on one Pub/Sub connection per
// client, shared by its Subscribers, whatever the number of topics, and
// wakes the movers of the topic. Plain Pub/Sub, not sharded: on Redis
// Cluster one connection to any node hears every channel. An announcement missed (a reconnect, a refused
// SUBSCRIBE, a publisher that does not announce) costs a mover its next
// poll, never a message. Being one loop for several Subscribers, it logs
// with the logger of the Subscriber that started it; BlockTime does not
// concern it (a Pub/Sub receive has no BLOCK).
type wakeups struct {
	loop
	client redis.UniversalClient
	logger watermill.LoggerAdapter
	ps     *redis.PubSub

	mu     sync.Mutex
	movers map[string]map[*delayMover]struct{} // by channel
	// subscribed are the channels SUBSCRIBEd to; they stay subscribed
	// until Close (a channel without movers is ignored), so no UNSUBSCRIBE
	// right is needed. heard are those Redis confirmed.
	subscribed, heard map[string]bool
	confirmed         map[string]chan struct{} // closed at the channel's first confirmation
	started           bool                     // the receiving goroutine was started (or stop ran)
}

func newWakeups(client redis.UniversalClient, logger watermill.LoggerAdapter) *wakeups {
	return &wakeups{
		loop:       newLoop(context.Background()),
		client:     client,
		logger:     logger,
		ps:         client.Subscribe(context.Background()),
		movers:     map[string]map[*delayMover]struct{}{},
		subscribed: map[string]bool{},
		heard:      map[string]bool{},
		confirmed:  map[string]chan struct{}{},
	}
}

// allWakeups are the listeners of the clients.
var allWakeups perClient[*wakeups]

// acquireWakeups returns the listener of client, started at the first call;
// paired with a releaseWakeups.
func acquireWakeups(client redis.UniversalClient, logger watermill.LoggerAdapter) *wakeups {
	return allWakeups.acquire(client, func() *wakeups { return newWakeups(client, logger) })
}

// releaseWakeups drops one reference to the listener of client; the last
// one stops it.
func releaseWakeups(client redis.UniversalClient) {
	allWakeups.release(client, (*wakeups).stop)
}

// stop ends the listener and closes its connection.
func (w *wakeups) stop() {
	w.cancel()
	_ = w.ps.Close() // ends a receive in progress
	w.mu.Lock()
	started := w.started
	w.started = true // no start after this
	w.mu.Unlock()
	if started {
		<-w.done
	}
}

// add subscribes m to the announcements on its channel.
func (w *wakeups) add(m *delayMover) {
	ch := m.channel
	w.mu.Lock()
	if w.movers[ch] == nil {
		w.movers[ch] = map[*delayMover]struct{}{}
	}
	w.movers[ch][m] = struct{}{}
	first := !w.subscribed[ch]
	w.subscribed[ch] = true
	if first {
		w.confirmed[ch] = make(chan struct{})
	}
	confirmed := w.confirmed[ch]
	w.mu.Unlock()
	if first {
		err := w.ps.Subscribe(w.ctx, ch)
		w.startReceiving()
		if err != nil && w.ctx.Err() == nil {
			w.logger.Error("Cannot listen for delayed messages; they are found by polling", err, watermill.LogFields{"channel": ch})
			return
		}
	}
	// The mover's first round then knows it is heard. A refusal is logged
	// by the listener; the mover polls meanwhile.
	t := time.NewTimer(wakeConfirmTimeout)
	defer t.Stop()
	select {
	case <-confirmed:
	case <-t.C:
	case <-w.ctx.Done():
	}
}

// startReceiving starts the receiving goroutine once, after the first
// SUBSCRIBE: a receive before it would open the connection without a
// channel, to any node of a Cluster rather than the first channel's.
func (w *wakeups) startReceiving() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		w.started = true
		w.goRun(w.run)
	}
}

// wakeConfirmTimeout bounds how long a new subscription waits for Redis to
// confirm that it hears its topic's announcements.
const wakeConfirmTimeout = time.Second

// remove stops waking m.
func (w *wakeups) remove(m *delayMover) {
	w.mu.Lock()
	delete(w.movers[m.channel], m)
	if len(w.movers[m.channel]) == 0 {
		delete(w.movers, m.channel)
	}
	w.mu.Unlock()
}

// safety is how long a mover of w waits for its next safety look while it
// hears announcements: base, or longer with many movers, so that the looks
// of all of them come about every delaySafetySpacing; each wait is jittered
// by ±25%, which spreads movers that started together.
func (w *wakeups) safety(base time.Duration) time.Duration {
	w.mu.Lock()
	n := 0
	for _, ms := range w.movers {
		n += len(ms)
	}
	w.mu.Unlock()
	d := max(base, time.Duration(n)*delaySafetySpacing)
	return d - d/4 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// listening reports whether announcements on ch are heard.
func (w *wakeups) listening(ch string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.heard[ch]
}

func (w *wakeups) run(ctx context.Context) {
	log := errlog.New(w.logger)
	retry := newRetryBackoff()
	for ctx.Err() == nil {
		msg, err := w.ps.ReceiveTimeout(ctx, time.Minute)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if rediserr.IsNoPerm(err) {
				log.Failure("Cannot listen for delayed messages (ACL: SUBSCRIBE and the channel \"{topic}:delayed\"); they are found by polling", err, nil)
				continue
			}
			if !rediserr.IsTimeout(err) {
				w.forgetAll() // resubscribed on reconnect: heard again once confirmed
				log.Failure("Listening for delayed messages failed; retrying", err, nil)
				sleepCtx(ctx, retry.next())
			}
			continue
		}
		retry.reset()
		switch m := msg.(type) {
		case *redis.Subscription:
			w.mu.Lock()
			w.heard[m.Channel] = m.Kind == "subscribe"
			if c := w.confirmed[m.Channel]; c != nil && m.Kind == "subscribe" {
				select {
				case <-c:
				default:
					close(c)
				}
				// What was announced while not subscribed was not heard.
				for mover := range w.movers[m.Channel] {
					mover.wake(0)
				}
			}
			w.mu.Unlock()
		case *redis.Message:
			due, _ := strconv.ParseInt(m.Payload, 10, 64)
			w.mu.Lock()
			for mover := range w.movers[m.Channel] {
				mover.wake(due)
			}
			w.mu.Unlock()
		}
	}
}

// forgetAll marks every channel as not heard.
func (w *wakeups) forgetAll() {
	w.mu.Lock()
	clear(w.heard)
	w.mu.Unlock()
}
