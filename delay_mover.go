package millrace

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/streams"
)

// Delayed-message timings.
const (
	// delayPollInterval bounds how long a due message waits in the delayed
	// set before a subscription of its topic moves it, when the subscription
	// does not hear the publishers' announcements. The mover also wakes up
	// at the due time of the next member it saw.
	delayPollInterval = 200 * time.Millisecond
	// delayIdlePoll is the pace while the topic has no delayed message at
	// all and announcements are not heard: a message delayed into an empty
	// set is moved up to this long after it is due.
	delayIdlePoll = 3 * time.Second
	// delaySafetyPoll is the pace while announcements are heard: the mover
	// sleeps until the next due time it knows or an announcement, and
	// looks anyway this often, for a publisher that does not announce or a
	// listener's connection that died without a word (no PING is sent: it
	// would need one more ACL right).
	// (Announcements lost in a reconnect are covered by the look every
	// mover takes when its channel is subscribed again.)
	delaySafetyPoll = time.Minute
	// delaySafetyPollCluster is the same on Cluster, where an announcement
	// reaches the listener's node over the cluster bus, and is lost while
	// the bus link is down.
	delaySafetyPollCluster = 30 * time.Second
	// delaySafetySpacing spreads the safety looks of the movers that share
	// a client's listener: with n of them, each looks every n ×
	// delaySafetySpacing when that is longer than its safety poll, so that
	// together they cost about one look (two commands) every two seconds
	// however many topics the client subscribes to.
	delaySafetySpacing = 2 * time.Second
	// delayStartupPolls is how long after it starts a mover polls at
	// delayPollInterval whatever it hears: an announcement published
	// before its channel's SUBSCRIBE took effect (on Cluster, before the
	// subscribing node heard of it over the bus) is not heard again.
	delayStartupPolls = 2 * wakeConfirmTimeout
	// delayMoveBatch caps the members one script call moves; a full batch
	// is followed at once by another call.
	delayMoveBatch = 100
)

// delayMover moves the due delayed messages of a subscription's topic into
// its stream: at their due time when it knows of them (from its last round
// or a publisher's announcement), otherwise within delayPollInterval, or
// within delayIdlePoll while the set is empty. One goroutine, one script
// call per round.
type delayMover struct {
	loop
	client  redis.UniversalClient
	delayed string // the topic's delayed set
	stream  string
	topic   string
	logger  watermill.LoggerAdapter

	wakeups *wakeups      // nil when announcements are not listened to
	channel string        // where the topic's announcements come
	safety  time.Duration // delaySafetyPoll or, on Cluster, delaySafetyPollCluster
	woken   chan struct{}
}

type delayMoverParams struct {
	parent  context.Context // the subscription's soft end
	client  redis.UniversalClient
	topic   string
	wakeups *wakeups // the client's listener; nil: poll only
	logger  watermill.LoggerAdapter
}

func newDelayMover(p delayMoverParams) *delayMover {
	d := &delayMover{
		loop:    newLoop(p.parent),
		client:  p.client,
		delayed: keys.Delayed(p.topic),
		stream:  streamKey(p.topic),
		topic:   p.topic,
		logger:  p.logger,
		wakeups: p.wakeups,
		channel: keys.DelayedWake(p.topic),
		safety:  delaySafetyPoll,
		woken:   make(chan struct{}, 1),
	}
	if !singleNode(p.client) {
		d.safety = delaySafetyPollCluster
	}
	return d
}

func (d *delayMover) start() {
	if d.wakeups != nil {
		d.wakeups.add(d)
	}
	d.goRun(d.run)
}

func (d *delayMover) stop() {
	d.loop.stop()
	if d.wakeups != nil {
		d.wakeups.remove(d)
	}
}

// wake makes the mover look at the delayed set now; due is the announced
// due time (unused: the script's reply says when the next is due).
func (d *delayMover) wake(int64) {
	select {
	case d.woken <- struct{}{}:
	default:
	}
}

// listening reports whether the publishers' announcements reach the mover.
func (d *delayMover) listening() bool {
	return d.wakeups != nil && d.wakeups.listening(d.channel)
}

func (d *delayMover) run(ctx context.Context) {
	retry := newRetryBackoff()
	log := errlog.New(d.logger)
	started := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-d.woken:
			timer.Stop()
		case <-ctx.Done():
			return
		}
		cctx, cancel := bounded(ctx, 0)
		moved, wait, err := streams.MoveDue(cctx, d.client, d.delayed, d.stream, delayMoveBatch)
		cancel()
		var next time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			log.Failure("Cannot move due delayed messages; retrying", err, nil)
			next = retry.next()
		case moved >= delayMoveBatch:
			next = 0
		case d.listening():
			safety := d.wakeups.safety(d.safety)
			next = safety
			if wait >= 0 {
				next = min(max(wait, time.Millisecond), safety)
			}
		case wait < 0:
			next = delayIdlePoll
		default:
			next = min(max(wait, time.Millisecond), delayPollInterval)
		}
		if time.Since(started) < delayStartupPolls {
			next = min(next, delayPollInterval)
		}
		if err == nil {
			retry.reset()
			log.Recovered("Moving delayed messages again", nil)
			if moved > 0 {
				d.logger.Debug("Moved due delayed messages into the stream", watermill.LogFields{"messages": moved})
			}
		}
		timer.Reset(next)
	}
}
