package millrace

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

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

// delayMover moves the due delayed messages of a subscription's topic into
// its stream: at most delayPollInterval after they are due (delayIdlePoll
// when the set was empty), and at the due time of the next member it knows
// of. One goroutine, one script call per round.
type delayMover struct {
	loop
	client  redis.UniversalClient
	delayed string // the topic's delayed set
	stream  string
	logger  watermill.LoggerAdapter
}

func (d *delayMover) start() { d.goRun(d.run) }

func (d *delayMover) run(ctx context.Context) {
	retry := newRetryBackoff()
	log := errorLog{logger: d.logger}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-ctx.Done():
			return
		}
		moved, wait, err := streams.MoveDue(ctx, d.client, d.delayed, d.stream, delayMoveBatch)
		next := delayPollInterval
		switch {
		case err == nil && wait < 0 && moved < delayMoveBatch:
			next = delayIdlePoll
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			log.failure("Cannot move due delayed messages; retrying", err, nil)
			next = retry.next()
		case moved >= delayMoveBatch:
			next = 0
		case wait >= 0 && wait < next:
			next = max(wait, time.Millisecond)
		}
		if err == nil {
			retry.reset()
			log.recovered("Moving delayed messages again", nil)
			if moved > 0 {
				d.logger.Debug("Moved due delayed messages into the stream", watermill.LogFields{"messages": moved})
			}
		}
		timer.Reset(next)
	}
}
