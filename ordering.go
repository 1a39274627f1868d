package millrace

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/millrace/millrace/internal/errlog"
)

// orderer stands between the queue and the workers of a subscription with an
// OrderingKey. It hands out the entries of one key one at a time, in the
// order it gets them, and entries of different keys (and entries without
// the key) as soon as a worker is free. An entry holds its key from when it
// is handed out until a worker reports it finished (acknowledged,
// dead-lettered, gone); a Nacked entry keeps holding it, and comes back
// through back after its backoff, ahead of the later entries of its key.
//
// An entry read for this delivery carries its fields; one that is to be
// claimed (own pending entries after a restart, entries taken over) does
// not, so its fields are read first (XRANGE, which counts no delivery),
// a batch of them per round trip. The orderer is the only goroutine that
// touches its maps and lists.
type orderer struct {
	loop
	key         string
	in          <-chan *entry // the queue
	back        chan *entry   // redeliveries: always taken, they hold their key
	finished    chan *entry   // entries finished by the workers
	ready       chan *entry   // entries handed to the workers
	limit       int           // entries waiting here, at most, before in is read again
	m           *member       // nil in broadcast mode, where nothing is claimed
	unmarshaler Unmarshaler
	logger      watermill.LoggerAdapter

	keys     map[string]*keyQueue
	runnable []*entry // entries free to go, in order
	waiting  int      // entries in runnable and in the keys' backlogs
}

// keyQueue is the state of a key with an entry handed out.
type keyQueue struct {
	holder  string   // the entry handed out, or waiting to be redelivered
	backlog []*entry // the later entries of the key, in order
}

type ordererParams struct {
	parent      context.Context // the subscription's soft end
	key         string          // OrderingKey
	queue       *queue
	workers     int // MaxInFlight
	limit       int // Prefetch: entries waiting behind their key
	m           *member
	unmarshaler Unmarshaler
	logger      watermill.LoggerAdapter
}

func newOrderer(p ordererParams) *orderer {
	return &orderer{
		loop:        newLoop(p.parent),
		key:         p.key,
		in:          p.queue.ch,
		back:        make(chan *entry),
		finished:    make(chan *entry, p.workers),
		ready:       make(chan *entry),
		limit:       p.limit,
		m:           p.m,
		unmarshaler: p.unmarshaler,
		logger:      p.logger,
		keys:        map[string]*keyQueue{},
	}
}

func (o *orderer) start() { o.goRun(o.run) }

func (o *orderer) run(ctx context.Context) {
	for {
		var in <-chan *entry
		if o.waiting < o.limit {
			in = o.in
		}
		var ready chan<- *entry
		var next *entry
		if len(o.runnable) > 0 {
			ready, next = o.ready, o.runnable[0]
		}
		select {
		case e := <-in:
			if !o.take(ctx, e) {
				return
			}
		case e := <-o.back:
			o.redelivered(e)
		case e := <-o.finished:
			o.finish(e)
		case ready <- next:
			o.runnable[0] = nil
			o.runnable = o.runnable[1:]
			o.waiting--
		case <-ctx.Done():
			return
		}
	}
}

// take routes e and, when e must be claimed, the entries queued behind it,
// after reading their fields in one round trip; false when stopping.
func (o *orderer) take(ctx context.Context, e *entry) bool {
	batch := []*entry{e}
	if o.unresolved(e) {
	drain:
		for o.waiting+len(batch) < o.limit {
			select {
			case more := <-o.in:
				batch = append(batch, more)
			default:
				break drain
			}
		}
		var claims []*entry
		for _, b := range batch {
			if o.unresolved(b) {
				claims = append(claims, b)
			}
		}
		if !o.peek(ctx, claims) {
			return false
		}
	}
	for _, b := range batch {
		o.resolve(b)
		o.route(b)
	}
	return true
}

// unresolved reports whether e's fields must be read before its key is
// known.
func (o *orderer) unresolved(e *entry) bool {
	return !e.keyed && e.claim && e.values == nil && o.m != nil
}

// peek reads the fields of es, retrying while Redis fails; false when
// stopping.
func (o *orderer) peek(ctx context.Context, es []*entry) bool {
	retry := newRetryBackoff()
	log := errlog.New(o.logger)
	for {
		err := o.m.peek(ctx, es)
		if err == nil {
			log.Recovered("Reading ordering keys again", nil)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Failure("Cannot read the ordering keys of entries to redeliver; retrying", err, watermill.LogFields{"entries": len(es)})
		reloadOnNetworkError(o.m.client, err)
		if !sleepCtx(ctx, retry.next()) {
			return false
		}
	}
}

// resolve sets e's key from its metadata, keeping the decoded message for
// its delivery. An entry without fields (deleted from the stream) or that
// cannot be decoded has no key: a worker disposes of it.
func (o *orderer) resolve(e *entry) {
	if e.keyed {
		return
	}
	e.keyed = true
	if e.values == nil {
		return
	}
	msg, err := o.unmarshaler.Unmarshal(e.values)
	if err != nil {
		return
	}
	e.key = msg.Metadata.Get(o.key)
	e.decoded = msg
}

// route queues e behind the entries of its key, or makes it runnable when
// its key is free or it has none.
func (o *orderer) route(e *entry) {
	o.waiting++
	if e.key == "" {
		o.runnable = append(o.runnable, e)
		return
	}
	q := o.keys[e.key]
	if q == nil {
		o.keys[e.key] = &keyQueue{holder: e.id}
		o.runnable = append(o.runnable, e)
		return
	}
	q.backlog = append(q.backlog, e)
}

// redelivered makes a redelivered entry runnable again: it still holds its
// key.
func (o *orderer) redelivered(e *entry) {
	if q := o.keys[e.key]; e.key != "" && q != nil && q.holder == e.id {
		o.waiting++
		o.runnable = append(o.runnable, e)
		return
	}
	o.route(e)
}

// finish frees the key of a finished entry, handing the next entry of the
// key out.
func (o *orderer) finish(e *entry) {
	q := o.keys[e.key]
	if e.key == "" || q == nil || q.holder != e.id {
		return
	}
	if len(q.backlog) == 0 {
		delete(o.keys, e.key)
		return
	}
	next := q.backlog[0]
	q.backlog[0] = nil
	q.backlog = q.backlog[1:]
	q.holder = next.id
	o.runnable = append(o.runnable, next)
}
