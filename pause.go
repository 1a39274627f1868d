package millrace

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/pause"
	"github.com/millrace/millrace/internal/rediserr"
)

// pauseWatch keeps a group's reader from taking new entries while an
// operator has paused the group (admin.PauseGroup): the state is a small
// stream of the topic's slot (package pause), so it survives restarts of
// the subscribers. The reader looks at it before a read of new entries, at
// most every pauseLookEvery: a busy subscription notices a pause within
// that, an idle one, which takes nothing, when news wakes it. While paused
// the reader waits for news of the pause stream with the other idle
// readers (no command of its own), or, without a news waiter (Cluster),
// looks every pausePoll. Held entries are still handed out, redelivered
// and acknowledged meanwhile.
type pauseWatch struct {
	client       redis.UniversalClient
	topic, group string
	logger       watermill.LoggerAdapter
	news         *newsWaiter // nil: poll while paused

	looked time.Time
	state  pause.State
	// paused is set while the group is paused, for the claimer.
	paused atomic.Bool
	off    bool // the look is refused (ACL): never paused
	log    errlog.Log
	retry  backoff
}

// pauseLookEvery is how stale the state a read of new entries goes by may
// be, at most; pausePoll is how often a paused reader without a news waiter
// looks again.
const (
	pauseLookEvery = 500 * time.Millisecond
	pausePoll      = time.Second
)

func newPauseWatch(client redis.UniversalClient, topic, group string, news *newsWaiter, logger watermill.LoggerAdapter) *pauseWatch {
	return &pauseWatch{
		client: client, topic: topic, group: group, news: news, logger: logger,
		log: errlog.New(logger), retry: newRetryBackoff(),
	}
}

// look reads the state.
func (p *pauseWatch) look(ctx context.Context) error {
	cctx, cancel := bounded(ctx, 0)
	defer cancel()
	s, err := pause.Read(cctx, p.client, p.topic, p.group)
	if err != nil {
		switch {
		case rediserr.IsNoPerm(err):
			p.logger.Error("Cannot read whether the group is paused (ACL: it needs XREVRANGE and XREAD on {topic}:paused:*); "+
				"this subscription ignores pauses", err, nil)
		case rediserr.IsWrongType(err):
			p.logger.Error("Cannot read whether the group is paused: its key is not a stream; this subscription ignores pauses",
				err, watermill.LogFields{"key": keys.Paused(p.topic, p.group)})
		default:
			return err
		}
		p.off = true
		p.paused.Store(false)
		return nil
	}
	p.looked, p.state = time.Now(), s
	p.paused.Store(s.Paused)
	return nil
}

// hold returns once the group is not paused (at once when the state was
// looked at less than pauseLookEvery ago and said so); false when ctx
// ends first. onPause is called once the group is found paused, before the
// wait. A failed first look is returned: the caller backs off as after a
// failed read.
func (p *pauseWatch) hold(ctx context.Context, onPause func()) (bool, error) {
	if p.off || time.Since(p.looked) < pauseLookEvery && !p.state.Paused {
		return true, nil
	}
	if err := p.look(ctx); err != nil || !p.state.Paused || p.off {
		return err == nil, err
	}
	onPause()
	p.logger.Info("Consumer group is paused: taking no new entries, finishing those held",
		watermill.LogFields{"paused_at": p.state.Since})
	for p.state.Paused && !p.off {
		if !p.waitChange(ctx) {
			return false, nil
		}
		if err := p.look(ctx); err != nil {
			p.log.Failure("Cannot read whether the group is still paused; retrying", err, nil)
			if !sleepCtx(ctx, p.retry.next()) {
				return false, nil
			}
			continue
		}
		p.retry.reset()
		p.log.Recovered("Reading whether the group is paused again", nil)
	}
	p.logger.Info("Consumer group is resumed: taking new entries again", nil)
	return true, nil
}

// waitChange waits for an entry of the pause stream after the last one
// seen, or pausePoll without a news waiter; false when ctx ends.
func (p *pauseWatch) waitChange(ctx context.Context) bool {
	if p.news != nil && p.news.refused() == nil {
		return p.news.wait(ctx, keys.Paused(p.topic, p.group), p.state.ID)
	}
	return sleepCtx(ctx, pausePoll)
}
