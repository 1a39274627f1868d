package millrace

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/noretry"
	"github.com/millrace/millrace/internal/rediserr"
)

// newsWaiter waits for new entries on behalf of every idle reader of the
// Subscribers over one client: one blocking XREAD over all the streams they
// wait on, on one connection, whatever the number of topics, groups and
// Subscribers. A reader that has read its stream dry tells it the last entry
// ID the stream had and is woken once a newer entry exists; it then reads
// its group without blocking. A wait the XREAD in flight does not cover
// interrupts it (CLIENT UNBLOCK), so it is reissued with that wait at once.
//
// A few readers, a quarter of the client's pool, may block on their own
// reads meanwhile, as long as those keep finding entries: a busy topic then
// gets each entry with the read that waited for it, one round trip sooner
// than after news. The first read that finds nothing in its BLOCK (at most
// 100ms) hands its turn back and its stream to the waiter.
//
// Only a single-node client (standalone or Sentinel) has one: on Cluster a
// multi-key XREAD must stay in one slot and every topic has its own, so
// there each reader blocks on its own read.
//
// Being one loop for several Subscribers, it logs with the logger of the
// Subscriber that started it (its failures concern every Subscriber of the
// client alike), and blocks for the shortest BlockTime among them, which
// bounds how long any of them waits for a wait it cannot interrupt.
type newsWaiter struct {
	loop
	client *redis.Client
	logger watermill.LoggerAdapter
	// blockers holds a token per reader blocking on its own read.
	blockers chan struct{}

	mu    sync.Mutex
	block time.Duration                     // XREAD BLOCK: the shortest BlockTime of the Subscribers
	waits map[string]map[*newsWait]struct{} // by stream
	// armed is the stream → ID set of the XREAD in flight, nil when none;
	// gen counts the XREADs sent.
	armed map[string]string
	gen   uint64
	// connID is the CLIENT ID of the XREAD's connection: 0 while unknown,
	// -1 when CLIENT ID is refused (then a wait not covered waits for the
	// XREAD in flight to end, at most BlockTime). ctl is the connection
	// that sends CLIENT UNBLOCK. Both are dialled together, back to back,
	// by a client of their own (never taken from the pool, where a
	// connection may still lead to a server the address no longer does),
	// are never dialled again on their own, and are closed together when
	// either fails; UNBLOCK is never retried. So the ID reaches the server
	// that gave it and no other: after a restart or a failover the same ID
	// may be another client's, whose blocking command an UNBLOCK would end.
	connID int64
	ctl    *redis.Conn
	// ctlFailed is set when ctl failed: the run loop closes both
	// connections and opens new ones.
	ctlFailed bool
	// ctlMu is held while ctl is in use and while it is closed: a
	// *redis.Conn must not be closed under a command.
	ctlMu sync.Mutex
	kick  chan struct{} // the set of waits changed while no XREAD was in flight
	// refusal is the ACL refusal of the XREAD, nil while it is allowed:
	// readers then read on their own.
	refusal error
}

// newsWait is one reader's wait for an entry of stream after ID after.
type newsWait struct {
	stream, after string
	news          chan struct{} // closed when there is one, or when the waiter lost track
}

// newsWaiters are the waiters of single-node clients.
var newsWaiters perClient[*newsWaiter]

// acquireNewsWaiter returns the waiter of client, started at the first
// call; nil for a client of several nodes. Each call that returns one is
// paired with a releaseNewsWaiter.
func acquireNewsWaiter(client redis.UniversalClient, block time.Duration, logger watermill.LoggerAdapter) *newsWaiter {
	single, ok := client.(*redis.Client)
	if !ok {
		return nil
	}
	w := newsWaiters.acquire(client, func() *newsWaiter {
		w := &newsWaiter{
			loop:     newLoop(context.Background()),
			client:   single,
			logger:   logger,
			blockers: make(chan struct{}, max(1, single.Options().PoolSize/4)),
			block:    block,
			waits:    map[string]map[*newsWait]struct{}{},
			kick:     make(chan struct{}, 1),
		}
		w.goRun(w.run)
		return w
	})
	w.mu.Lock()
	w.block = min(w.block, block)
	w.mu.Unlock()
	return w
}

// releaseNewsWaiter drops one reference to the waiter of client; the last
// one stops it, ending the XREAD in flight.
func releaseNewsWaiter(client redis.UniversalClient) {
	newsWaiters.release(client, func(w *newsWaiter) {
		w.cancel()
		w.interrupt(context.Background())
		w.stop()
	})
}

// refused is the ACL refusal of the waiter's XREAD, nil if none.
func (w *newsWaiter) refused() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refusal
}

// tryBlock takes a turn to block on a reader's own read; false when all
// are taken. A turn taken is given back with unblock.
func (w *newsWaiter) tryBlock() bool {
	select {
	case w.blockers <- struct{}{}:
		return true
	default:
		return false
	}
}

func (w *newsWaiter) unblock() { <-w.blockers }

// wait returns once stream has an entry after ID after (or the waiter lost
// track and the reader must look), false when ctx ends first.
func (w *newsWaiter) wait(ctx context.Context, stream, after string) bool {
	nw := &newsWait{stream: stream, after: after, news: make(chan struct{})}
	w.mu.Lock()
	if w.waits[stream] == nil {
		w.waits[stream] = map[*newsWait]struct{}{}
	}
	w.waits[stream][nw] = struct{}{}
	covered := w.armed != nil && w.armed[stream] != "" && entryid.Compare(after, w.armed[stream]) >= 0
	idle := w.armed == nil
	w.mu.Unlock()
	switch {
	case idle:
		select {
		case w.kick <- struct{}{}:
		default:
		}
	case !covered:
		w.interrupt(ctx)
	}
	select {
	case <-nw.news:
		return true
	case <-ctx.Done():
		w.mu.Lock()
		delete(w.waits[stream], nw)
		if len(w.waits[stream]) == 0 {
			delete(w.waits, stream)
		}
		w.mu.Unlock()
		return false
	}
}

// interrupt ends the XREAD in flight, if any, so that the next one covers
// every wait. CLIENT UNBLOCK reaching Redis before the XREAD it is meant for
// finds nothing blocked; it is sent again until that XREAD has returned.
func (w *newsWaiter) interrupt(ctx context.Context) {
	w.mu.Lock()
	gen, id, ctl := w.gen, w.connID, w.ctl
	inFlight := w.armed != nil
	w.mu.Unlock()
	if !inFlight || id <= 0 || ctl == nil {
		return
	}
	w.ctlMu.Lock()
	defer w.ctlMu.Unlock()
	for pause := 100 * time.Microsecond; ctx.Err() == nil; pause = min(2*pause, 50*time.Millisecond) {
		w.mu.Lock()
		current := w.ctl == ctl
		w.mu.Unlock()
		if !current {
			return // closed meanwhile
		}
		n, err := noretry.Do(ctx, ctl, "client", "unblock", id).Int64()
		if err != nil {
			w.unblockFailed(ctl, err)
			return
		}
		w.mu.Lock()
		same := w.gen == gen && w.armed != nil && w.ctl == ctl
		w.mu.Unlock()
		if n == 1 || !same || !sleepCtx(ctx, pause) {
			return
		}
	}
}

// unblockFailed handles a failed CLIENT UNBLOCK on ctl: refused, the
// waiter stops interrupting; a network error, and ctl and its ID are
// forgotten, and the run loop opens both connections anew.
func (w *newsWaiter) unblockFailed(ctl *redis.Conn, err error) {
	refused := rediserr.IsNoPerm(err) || rediserr.IsUnknownCommand(err)
	w.mu.Lock()
	if w.ctl == ctl {
		switch {
		case refused:
			w.connID = -1
		case !rediserr.IsServer(err):
			w.connID, w.ctl, w.ctlFailed = 0, nil, true
		}
	}
	w.mu.Unlock()
	if refused {
		w.noUnblock(err)
	}
}

func (w *newsWaiter) run(ctx context.Context) {
	var own *redis.Client // dials conn and ctl
	var conn, ctl *redis.Conn
	drop := func() {
		w.mu.Lock()
		w.connID, w.ctl, w.ctlFailed = 0, nil, false
		w.mu.Unlock()
		_ = conn.Close()
		w.ctlMu.Lock()
		_ = ctl.Close()
		w.ctlMu.Unlock()
		_ = own.Close()
		own, conn, ctl = nil, nil, nil
	}
	defer func() {
		if conn != nil {
			drop()
		}
	}()
	retry := newRetryBackoff()
	log := errlog.New(w.logger)
	for ctx.Err() == nil {
		if conn == nil {
			own = w.ownClient()
			conn, ctl = own.Conn(), own.Conn()
			if err := w.identify(ctx, conn, ctl); err != nil {
				drop()
				if ctx.Err() == nil {
					log.Failure("Cannot wait for new entries; retrying", err, nil)
					sleepCtx(ctx, retry.next())
				}
				continue
			}
		}
		args, block := w.arm()
		if args == nil {
			select {
			case <-w.kick:
			case <-ctx.Done():
			}
			continue
		}
		rctx, cancel := bounded(ctx, block)
		streams, err := conn.XRead(rctx, &redis.XReadArgs{Streams: args, Count: 1, Block: block}).Result()
		cancel()
		w.disarm()
		if err != nil && !rediserr.IsNil(err) {
			if ctx.Err() != nil {
				return
			}
			log.Failure("Cannot wait for new entries; retrying", err, nil)
			if rediserr.IsNoPerm(err) {
				w.mu.Lock()
				w.refusal = err
				w.mu.Unlock()
			}
			if !rediserr.IsServer(err) {
				drop()
			}
			// Whatever happened meanwhile (a restart, a failover) was not
			// heard: every reader looks for itself.
			w.wakeAll()
			sleepCtx(ctx, retry.next())
			continue
		}
		retry.reset()
		log.Recovered("Waiting for new entries again", nil)
		for _, s := range streams {
			if len(s.Messages) > 0 {
				w.heard(s.Stream, s.Messages[0].ID)
			}
		}
		w.mu.Lock()
		failed := w.ctlFailed
		w.mu.Unlock()
		if failed {
			drop()
		}
	}
}

// noUnblock says why a new wait may wait for the XREAD in flight to end.
func (w *newsWaiter) noUnblock(err error) {
	if rediserr.IsNoPerm(err) {
		w.logger.Error("Cannot interrupt the wait for new entries (ACL: it needs CLIENT ID and CLIENT UNBLOCK); "+
			"a new subscription may wait up to BlockTime for its first entries", err, nil)
		return
	}
	w.logger.Info("The server cannot interrupt a blocked read (CLIENT ID, CLIENT UNBLOCK); "+
		"a new subscription may wait up to BlockTime for its first entries", watermill.LogFields{"err": err.Error()})
}

// ownClient is a client of two connections with the options of the
// Subscribers' client: what the waiter's XREAD and its interrupts use.
func (w *newsWaiter) ownClient() *redis.Client {
	o := *w.client.Options()
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 2, 0, 2, 2
	o.ContextTimeoutEnabled = true // the bounds of its calls hold
	return redis.NewClient(&o)
}

// identify learns the CLIENT ID of conn, which interrupt needs, and opens
// ctl beside it: its own CLIENT ID dials it now, not at its first
// interrupt, which may come after a restart.
func (w *newsWaiter) identify(ctx context.Context, conn, ctl *redis.Conn) error {
	ctx, cancel := bounded(ctx, 0)
	defer cancel()
	id, err := conn.ClientID(ctx).Result()
	if err == nil {
		err = ctl.ClientID(ctx).Err()
	}
	if rediserr.IsNoPerm(err) || rediserr.IsUnknownCommand(err) {
		w.noUnblock(err)
		id, err = -1, nil
	}
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.connID, w.ctl = id, ctl
	w.mu.Unlock()
	return nil
}

// arm returns the XREAD STREAMS arguments covering every wait (per stream,
// the oldest ID waited after) and marks them in flight; nil when nobody
// waits.
func (w *newsWaiter) arm() ([]string, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.waits) == 0 {
		return nil, 0
	}
	w.gen++
	w.armed = make(map[string]string, len(w.waits))
	for stream, ws := range w.waits {
		after := ""
		for nw := range ws {
			if after == "" || entryid.Compare(nw.after, after) < 0 {
				after = nw.after
			}
		}
		w.armed[stream] = after
	}
	args := make([]string, 0, 2*len(w.armed))
	for stream := range w.armed {
		args = append(args, stream)
	}
	for _, stream := range args[:len(w.armed)] {
		args = append(args, w.armed[stream])
	}
	return args, w.block
}

func (w *newsWaiter) disarm() {
	w.mu.Lock()
	w.armed = nil
	w.mu.Unlock()
}

// heard wakes the waits of stream for which id is news.
func (w *newsWaiter) heard(stream, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for nw := range w.waits[stream] {
		if entryid.Compare(id, nw.after) > 0 {
			close(nw.news)
			delete(w.waits[stream], nw)
		}
	}
	if len(w.waits[stream]) == 0 {
		delete(w.waits, stream)
	}
}

func (w *newsWaiter) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for stream, ws := range w.waits {
		for nw := range ws {
			close(nw.news)
		}
		delete(w.waits, stream)
	}
}
