package millrace

import (
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/streams"
)

// Delayed-message timings.
const (
	// delayPollInterval bounds how long a due message waits in the delayed
	// set before a subscription of its topic moves it. The mover also wakes
	// up at the due time of the next member it saw, so a message is usually
	// moved within a few milliseconds of its due time.
	delayPollInterval = 200 * time.Millisecond
	// delayIdlePoll is the pace while the topic has no delayed message at
	// all, so that an idle subscription stays at about two Redis commands a
	// second: a message delayed into an empty set is moved up to this long
	// after it is due.
	delayIdlePoll = 3 * time.Second
	// delayMoveBatch caps the members one script call moves; a full batch
	// is followed at once by another call.
	delayMoveBatch = 100
)

// delayer moves the due delayed messages of a subscription's topic into its
// stream: at most delayPollInterval after they are due (delayIdlePoll when
// the set was empty), and at the due time of the next member it knows of. One goroutine, one script call per round;
// it ends with the subscription's soft context.
type delayer struct {
	sub  *subscription
	done chan struct{}
}

func newDelayer(sub *subscription) *delayer { return &delayer{sub: sub, done: make(chan struct{})} }

func (d *delayer) start() { go d.run() }

// stop waits for the goroutine, which ends with the subscription's soft
// context.
func (d *delayer) stop() { <-d.done }

func (d *delayer) run() {
	defer close(d.done)
	sub := d.sub
	ctx := sub.soft
	retry := newRetryBackoff()
	log := errorLog{logger: sub.logger}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-ctx.Done():
			return
		}
		moved, wait, err := streams.MoveDue(ctx, sub.client, keys.Delayed(sub.topic), sub.stream, delayMoveBatch)
		next := delayPollInterval
		switch {
		case err == nil && wait < 0 && moved < delayMoveBatch:
			next = delayIdlePoll
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			log.failure("Cannot move due delayed messages; retrying", err, sub.fields)
			next = retry.next()
		case moved >= delayMoveBatch:
			next = 0
		case wait >= 0 && wait < next:
			next = max(wait, time.Millisecond)
		}
		if err == nil {
			retry.reset()
			log.recovered("Moving delayed messages again", sub.fields)
			if moved > 0 {
				sub.logger.Debug("Moved due delayed messages into the stream", sub.fields.Add(watermill.LogFields{"messages": moved}))
			}
		}
		timer.Reset(next)
	}
}
