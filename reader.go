package millrace

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/rediserr"
)

// reader feeds the queue from the stream. In a group it first reads this
// consumer's own pending entries (from "0": what a previous run with the same
// name left unacknowledged), then new ones (">") with a bounded BLOCK. In
// broadcast mode it follows the stream with XREAD from where Subscribe
// found its end. Errors never end it: it backs off and tries again.
type reader struct {
	loop
	client   redis.UniversalClient
	stream   string
	m        *member // nil in broadcast mode
	newGroup string  // where a group recreated before any read starts
	prefetch int
	block    time.Duration
	// sibling, when set, is closed once another subscription of the same
	// Subscriber, reading the topic as the same consumer, has read the
	// consumer's own pending entries: this one waits for it instead of
	// reading them again.
	sibling <-chan struct{}
	held    *holder
	queue   *queue
	logger  watermill.LoggerAdapter

	// news, when set, waits for new entries instead of a blocking read:
	// reads do not block, and once one comes back short the reader waits
	// for an entry after idleAfter.
	news      *newsWaiter
	idleAfter string
	blocking  bool // holds one of news's turns to block on its own read
	// quiet numbers the wait for news the reader is in, 0 while it is not
	// waiting (see claimer.quiet); waits counts them.
	quiet *atomic.Uint64
	waits uint64
	// pause keeps the reader from reading new entries while the group is
	// paused; nil in broadcast mode.
	pause *pauseWatch
	// short says the last read of new entries returned fewer than prefetch:
	// the next one also learns the stream's end (readWithEnd).
	short bool

	lastID string // last entry read: where broadcast goes on and a group is recreated
	// knownEnd is the stream's end the last time the group had read it all
	// (readWithEnd): a group recreated while the reader waited for news
	// starts there, so the entry that brought the news is delivered.
	knownEnd string
	retry    backoff
	log      errlog.Log
	// ownPendingRead is closed once this consumer's own pending entries are
	// held (or were left to a sibling): from then on XAUTOCLAIM cannot
	// mistake them for a dead consumer's.
	ownPendingRead chan struct{}
}

// readStart is where a reader starts, learnt before Subscribe returns
// (prepareStart): the stream's end for a broadcast subscription, and for a
// group created at "$" the end it was created at.
type readStart struct {
	lastID, knownEnd string
}

type readerParams struct {
	parent   context.Context // the subscription's soft end
	client   redis.UniversalClient
	stream   string
	m        *member // nil in broadcast mode
	newGroup string  // NewGroupStartID
	prefetch int
	block    time.Duration
	start    readStart
	sibling  <-chan struct{}
	held     *holder
	queue    *queue
	news     *newsWaiter    // nil: blocking reads of its own
	quiet    *atomic.Uint64 // with news: shared with the claimer
	pause    *pauseWatch    // nil in broadcast mode
	logger   watermill.LoggerAdapter
}

func newReader(p readerParams) *reader {
	return &reader{
		loop:           newLoop(p.parent),
		client:         p.client,
		stream:         p.stream,
		m:              p.m,
		newGroup:       p.newGroup,
		prefetch:       p.prefetch,
		block:          p.block,
		sibling:        p.sibling,
		held:           p.held,
		queue:          p.queue,
		logger:         p.logger,
		news:           p.news,
		quiet:          p.quiet,
		pause:          p.pause,
		short:          true,
		lastID:         p.start.lastID,
		knownEnd:       p.start.knownEnd,
		retry:          newRetryBackoff(),
		log:            errlog.New(p.logger),
		ownPendingRead: make(chan struct{}),
	}
}

func (r *reader) start() { r.goRun(r.run) }

func (r *reader) run(ctx context.Context) {
	if r.m == nil {
		close(r.ownPendingRead)
		r.loopOn(ctx, r.readBroadcast)
		return
	}
	if r.sibling != nil {
		select {
		case <-r.sibling:
		case <-ctx.Done():
		}
	} else {
		r.loopOn(ctx, r.readOwnPending)
	}
	close(r.ownPendingRead)
	r.loopOn(ctx, r.readNew)
	if r.blocking {
		r.news.unblock()
	}
}

// loopOn calls read until it reports done or ctx ends, pacing failures
// with backoff.
func (r *reader) loopOn(ctx context.Context, read func(context.Context) (done bool, err error)) {
	for ctx.Err() == nil {
		done, err := read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.failed(ctx, err)
			continue
		}
		r.retry.reset()
		r.log.Recovered("Reading from Redis again", nil)
		if done {
			return
		}
	}
}

func (r *reader) failed(ctx context.Context, err error) {
	if rediserr.IsNoGroup(err) && r.m != nil {
		start := r.newGroup
		if r.lastID != "" {
			start = r.lastID
		}
		if r.knownEnd != "" && (r.lastID == "" || entryid.Compare(r.knownEnd, r.lastID) > 0) {
			start = r.knownEnd
		}
		r.logger.Info("Consumer group or stream is gone; recreating it", watermill.LogFields{"start_id": start})
		cctx, cancel := bounded(ctx, 0)
		err = createGroup(cctx, r.client, r.stream, r.m.group, start)
		cancel()
		if err == nil {
			return
		}
	}
	r.log.Failure("Cannot read from Redis; retrying", err, nil)
	reloadOnNetworkError(r.client, err)
	sleepCtx(ctx, r.retry.next())
}

// readOwnPending lists one page of this consumer's pending entries (what a
// previous run under the same name left unacknowledged); each is claimed,
// counting a delivery, when a worker hands it out. Done when there are no
// more.
func (r *reader) readOwnPending(ctx context.Context) (bool, error) {
	start := "-"
	if r.lastID != "" {
		start = "(" + r.lastID
	}
	pending, err := r.m.ownPending(ctx, start, r.prefetch)
	if err != nil || len(pending) == 0 {
		return err == nil, err
	}
	es := make([]*entry, len(pending))
	for i, p := range pending {
		es[i] = &entry{id: p.ID, deliveries: p.RetryCount, claim: true}
	}
	r.lastID = es[len(es)-1].id
	return !r.pushHeld(es), nil
}

// readNew waits up to the block time for entries never delivered to the
// group, or, with a news waiter, for news of the stream and then reads
// without blocking.
func (r *reader) readNew(ctx context.Context) (bool, error) {
	if r.news != nil {
		return r.readNewAfterNews(ctx)
	}
	if ok, err := r.holdWhilePaused(ctx); !ok || err != nil {
		return !ok && err == nil, err
	}
	msgs, err := r.m.read(ctx, ">", r.prefetch, r.block)
	if err != nil || len(msgs) == 0 {
		return false, err
	}
	return r.pushNew(msgs), nil
}

// holdWhilePaused returns once the group is not paused; false when ctx
// ends first. While paused the reader gives its turn to block on its own
// reads back, and after it learns the stream's end again.
func (r *reader) holdWhilePaused(ctx context.Context) (bool, error) {
	if r.pause == nil {
		return true, nil
	}
	return r.pause.hold(ctx, func() {
		if r.blocking {
			r.news.unblock()
			r.blocking = false
		}
		r.short = true
	})
}

func (r *reader) readNewAfterNews(ctx context.Context) (bool, error) {
	if err := r.news.refused(); r.idleAfter != "" && err != nil {
		r.withoutNews(err)
		return false, nil
	}
	if r.idleAfter != "" {
		r.waits++
		r.quiet.Store(r.waits)
		heard := r.news.wait(ctx, r.stream, r.idleAfter)
		r.quiet.Store(0)
		if !heard {
			return true, nil
		}
		r.idleAfter = ""
	}
	if ok, err := r.holdWhilePaused(ctx); !ok || err != nil {
		return !ok && err == nil, err
	}
	if r.blocking || r.news.tryBlock() {
		r.blocking = true
		msgs, err := r.m.read(ctx, ">", r.prefetch, min(r.block, ownReadBlock))
		if len(msgs) > 0 {
			return r.pushNew(msgs), nil
		}
		if err != nil {
			// Not while backing off: the turn goes to another reader.
			r.news.unblock()
			r.blocking = false
			return false, err
		}
		// Nothing for a while: the waiter waits from now on.
		r.news.unblock()
		r.blocking = false
		r.short = true
	}
	var msgs []redis.XMessage
	var err error
	if r.short {
		var end string
		var endErr error
		end, msgs, endErr, err = r.m.readWithEnd(ctx, r.prefetch)
		if err == nil && endErr == nil && len(msgs) < r.prefetch {
			r.idleAfter, r.knownEnd = end, end
		}
		if err == nil && rediserr.IsNoPerm(endErr) {
			r.withoutNews(endErr)
			endErr = nil
			if len(msgs) == 0 {
				return false, nil
			}
		}
		if err == nil {
			err = endErr
		}
	} else {
		msgs, err = r.m.read(ctx, ">", r.prefetch, -1)
	}
	r.short = err != nil || len(msgs) < r.prefetch
	if len(msgs) > 0 {
		if r.pushNew(msgs) {
			return true, nil
		}
	}
	return false, err
}

// withoutNews turns to blocking reads of its own when the news waiter's
// commands are refused (ACL without XREAD or XREVRANGE).
func (r *reader) withoutNews(err error) {
	r.logger.Error("Cannot wait for new entries with the other subscriptions (ACL: XREAD and XREVRANGE); "+
		"this subscription keeps a blocking read of its own", err, nil)
	if r.blocking {
		r.news.unblock()
		r.blocking = false
	}
	r.news, r.idleAfter = nil, ""
}

// pushNew holds and queues entries just read; true when stopping.
func (r *reader) pushNew(msgs []redis.XMessage) bool {
	es := toEntries(msgs)
	r.lastID = es[len(es)-1].id
	return !r.pushHeld(es)
}

// readBroadcast waits up to the block time for entries after lastID, or,
// with a news waiter, waits for news after lastID once a read came back
// short and reads without blocking.
func (r *reader) readBroadcast(ctx context.Context) (bool, error) {
	block := r.block
	if r.news != nil && r.short {
		if err := r.news.refused(); err != nil {
			r.withoutNews(err)
		}
	}
	if r.news != nil {
		if r.short && !r.news.wait(ctx, r.stream, r.lastID) {
			return true, nil
		}
		block = -1
	}
	cctx, cancel := bounded(ctx, block)
	defer cancel()
	streams, err := r.client.XRead(cctx, &redis.XReadArgs{
		Streams: []string{r.stream, r.lastID},
		Count:   int64(r.prefetch),
		Block:   block,
	}).Result()
	if err != nil && !rediserr.IsNil(err) {
		r.short = false
		return false, err
	}
	var es []*entry
	if len(streams) > 0 {
		es = toEntries(streams[0].Messages)
	}
	r.short = len(es) < r.prefetch
	if len(es) == 0 {
		return false, nil
	}
	r.lastID = es[len(es)-1].id
	for _, e := range es {
		if !r.queue.push(e) {
			return true, nil
		}
	}
	return false, nil
}

// pushHeld records es as held and queues them; false when stopping.
func (r *reader) pushHeld(es []*entry) bool {
	for _, e := range r.held.add(es) {
		if !r.queue.push(e) {
			return false
		}
	}
	return true
}

// ownReadBlock caps the BLOCK of a reader's own read beside a news waiter:
// long enough to keep a busy topic's turn between entries, short enough
// that Close hardly waits for it.
const ownReadBlock = 100 * time.Millisecond

// toEntries makes entries of messages just read, on their first delivery.
func toEntries(msgs []redis.XMessage) []*entry {
	es := make([]*entry, len(msgs))
	for i, m := range msgs {
		es[i] = &entry{id: m.ID, values: m.Values, deliveries: 1}
	}
	return es
}
