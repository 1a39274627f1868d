package millrace

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/noretry"
	"github.com/millrace/millrace/internal/rediserr"
)

// Consumer-name leases.
//
// A Subscriber's claim on a consumer name in a group of a topic is the
// topic's key "{topic}:consumer:<group>:<name>" holding the Subscriber's
// token and the name of the holder key of its client,
// "{topic}:holder:<random>" (in the slot of the first topic leased over
// the client), which lives only while the process renews it. A name is
// held while its key names a holder key that exists: a second live
// Subscriber under the same name finds both and is refused, as the first
// keeps its holder alive; a crashed process's holder key expires within
// ConsumerLease, and with it every name its Subscribers held.
//
// So the idle cost is flat in topics and in Subscribers: one SET per
// client every third of ConsumerLease keeps every name held over it,
// whatever the number of topics, of Subscribers (one per handler, as
// Watermill's CQRS builds them) and, on Cluster, of slots (the holder key
// is in one slot; a name key names it across slots). Each name key itself
// is written when taken, refreshed every nameKeyTTL/3 (it only keeps the
// keys of crashed processes from lingering) and expired at release.

// nameKeyTTL is how long a name key outlives its last refresh: it holds a
// name only while its holder key lives, so it needs no short expiry.
const nameKeyTTL = 6 * time.Hour

// consumerLease is one subscription's claim on a consumer name in a group
// of a topic: the name key, held through the Subscriber's holder.
type consumerLease struct {
	client redis.UniversalClient
	key    string
	holder *nameHolder
	value  string        // the Subscriber's token and the holder's key
	ttl    time.Duration // ConsumerLease: how long a taken name waits
	once   sync.Once     // drops the holder's reference
	// foreign is set while another live Subscriber holds the key (taken
	// after this one's holder lapsed); guarded by holder.mu.
	foreign bool
	logger  watermill.LoggerAdapter
	// mu orders refresh (the holder's renewals, the leaser) and release:
	// a refresh never takes the name again after its release.
	mu       sync.Mutex
	released bool
	log      errlog.Log
}

// takeLeaseScript sets KEYS[1] to ARGV[1] for ARGV[2] ms unless it holds
// another value, or holds ARGV[3] (a holder found dead; "" for none).
// Returns 1 when the key is ours now, else the value that holds it.
var takeLeaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] and v ~= ARGV[3] then
  return v
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// dropLeaseScript makes KEYS[1] expire at once if it holds ARGV[1] (SET
// PX 1, so the lease needs no right beyond GET and SET).
var dropLeaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', 1)
  return 1
end
return 0
`)

// take claims or refreshes the name; false when another live Subscriber
// holds it. A name whose holder key is gone is taken over. Taken, the name
// is no longer one the holder has left to give up.
func (l *consumerLease) take(ctx context.Context) (bool, error) {
	h := l.holder
	h.dropping.RLock()
	defer h.dropping.RUnlock()
	dead := ""
	for range 2 {
		v, err := takeLeaseScript.Run(ctx, l.client, []string{l.key}, l.value, nameKeyTTL.Milliseconds(), dead).Result()
		if err != nil {
			return false, err
		}
		other, ok := v.(string)
		if !ok {
			h.mu.Lock()
			delete(h.left, l.key)
			h.mu.Unlock()
			return true, nil
		}
		_, holder, ok := strings.Cut(other, "|")
		if !ok || !strings.Contains(holder, ":holder:") {
			// Not a holder's (a version that renewed every name key):
			// held until it expires.
			return false, nil
		}
		if h.orphaned(other) {
			// Our own holder, for a subscription of this process that
			// ended without giving the name up (its release met a cut
			// connection): held by nothing.
			dead = other
			continue
		}
		// GET, not EXISTS: the lease needs no right beyond GET and SET.
		err = l.client.Get(ctx, holder).Err()
		if err == nil {
			return false, nil
		}
		if !rediserr.IsNil(err) {
			return false, err
		}
		dead = other
	}
	return false, nil // taken by another meanwhile, alive a moment ago
}

// acquire takes the name, waiting while another Subscriber holds it, for
// as long as a lease lasts: a predecessor that crashed stops renewing and
// its holder key expires within that time, a live one keeps it.
func (l *consumerLease) acquire(ctx context.Context) (bool, error) {
	deadline := time.Now().Add(l.ttl + l.ttl/2)
	for {
		ok, err := l.take(ctx)
		if ok || err != nil || !time.Now().Before(deadline) {
			return ok, err
		}
		if !sleepCtx(ctx, l.ttl/10) {
			return false, ctx.Err()
		}
	}
}

// refresh keeps the name key from expiring and says whether the name is
// still ours, taking it back from a holder that died.
func (l *consumerLease) refresh(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return
	}
	ok, err := l.take(ctx)
	log := &l.log
	switch {
	case err != nil:
		if ctx.Err() == nil {
			log.Failure("Cannot renew the lease on the consumer name", err, nil)
		}
		return
	case !ok:
		log.Failure("Another live subscriber took this consumer name; both read the same pending entries", ErrConsumerInUse, nil)
	default:
		log.Recovered("Holding the consumer name again", nil)
	}
	l.holder.mu.Lock()
	l.foreign = !ok
	l.holder.mu.Unlock()
}

// release gives the name up at once, if it is still ours. While Redis
// cannot be reached (a restart, a cut connection) it tries again until ctx
// ends: a name key left behind lingers for nameKeyTTL.
func (l *consumerLease) release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released = true
	for {
		err := dropLeaseScript.Run(ctx, l.client, []string{l.key}, l.value).Err()
		if !rediserr.IsUnavailable(err) {
			return err
		}
		if !sleepCtx(ctx, releaseRetry) {
			// The holder tries again while it lives: until then the key
			// names a live holder, and other processes could not take
			// the name.
			l.holder.leave(l.key, l.value)
			return err
		}
	}
}

// releaseRetry is the pause between attempts of a release that found Redis
// unavailable.
const releaseRetry = 100 * time.Millisecond

// done drops the subscription's reference to the holder: the last one
// stops its renewals and lets its key expire. Idempotent.
func (l *consumerLease) done(ctx context.Context) {
	l.once.Do(func() {
		l.mu.Lock()
		l.released = true // a refresh in flight has ended: none follows
		l.mu.Unlock()
		l.holder.drop(ctx, l)
		nameHolders.release(l.client, func(*nameHolder) {})
	})
}

// nameHolders are the holders of the clients with Subscribers holding
// consumer names.
var nameHolders perClient[*nameHolder]

// nameHolder is a client's holder key, kept alive while any subscription
// over the client holds a consumer name. Its zero value is ready: the
// first hold sets it up, for a span that ends with the last drop.
type nameHolder struct {
	mu     sync.Mutex
	client redis.UniversalClient
	// ttl is the shortest ConsumerLease of the Subscribers of the span:
	// the key's expiry, renewed every third of it.
	ttl    time.Duration
	logger watermill.LoggerAdapter
	key    string // set while held
	leases map[*consumerLease]struct{}
	// recheck counts the renewals that still look at every name after
	// the holder key lapsed: a Subscriber that found the key gone a moment
	// before this one set it again may take a name just after the first
	// look.
	recheck int
	renewer *loop
	// left are the name keys (to their values) whose release did not
	// reach Redis, given up on the next renewals.
	left map[string]string
	// dropping orders the drops of left keys (writers) and the takes of
	// names (readers): a name taken again is either dropped before or no
	// longer left.
	dropping sync.RWMutex
}

// leave adds a name key whose release did not reach Redis.
func (h *nameHolder) leave(key, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.left == nil {
		h.left = map[string]string{}
	}
	h.left[key] = value
}

// dropLeft gives up the names whose release did not reach Redis before;
// those it cannot reach Redis for stay for the next call.
func (h *nameHolder) dropLeft(ctx context.Context) {
	h.dropping.Lock()
	defer h.dropping.Unlock()
	h.mu.Lock()
	left, client := maps.Clone(h.left), h.client
	h.mu.Unlock()
	for key, value := range left {
		err := dropLeaseScript.Run(ctx, client, []string{key}, value).Err()
		if rediserr.IsUnavailable(err) {
			continue
		}
		h.mu.Lock()
		if h.left[key] == value {
			delete(h.left, key)
		}
		h.mu.Unlock()
	}
}

// hold adds l to the names the holder keeps, setting its key first if it
// holds nothing yet: a name key must never name a holder key not yet set.
func (h *nameHolder) hold(ctx context.Context, s *Subscriber, topic string, l *consumerLease) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.renewer != nil {
		h.ttl = min(h.ttl, s.config.ConsumerLease)
	} else {
		h.client, h.ttl, h.logger = s.client, s.config.ConsumerLease, s.logger
		key := keys.Holder(topic, watermill.NewUUID())
		if err := h.client.Set(ctx, key, 1, h.ttl).Err(); err != nil {
			return err
		}
		h.key = key
		if h.leases == nil {
			h.leases = map[*consumerLease]struct{}{}
		}
		r := newLoop(context.Background())
		h.renewer = &r
		r.goRun(func(ctx context.Context) { h.run(ctx, key) })
	}
	l.holder, l.value = h, s.token+"|"+h.key
	h.leases[l] = struct{}{}
	return nil
}

// orphaned reports a name key value that names this holder's key but no
// lease it keeps: a subscription that ended without giving the name up.
func (h *nameHolder) orphaned(value string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.key == "" || !strings.HasSuffix(value, "|"+h.key) {
		return false
	}
	for l := range h.leases {
		if l.value == value {
			return false
		}
	}
	return true
}

// drop removes l; after the last, the renewals stop and the key expires.
func (h *nameHolder) drop(ctx context.Context, l *consumerLease) {
	h.mu.Lock()
	delete(h.leases, l)
	if len(h.leases) > 0 || h.renewer == nil {
		h.mu.Unlock()
		return
	}
	r, key, client, logger := h.renewer, h.key, h.client, h.logger
	h.renewer = nil
	h.mu.Unlock()
	r.stop()
	h.dropLeft(ctx)
	if err := client.Set(ctx, key, 0, time.Millisecond).Err(); err != nil {
		logger.Error("Cannot release the consumer names; they are free after ConsumerLease", err, nil)
	}
}

// run renews the key every third of ConsumerLease with one SET ... GET,
// which also tells whether it had lapsed: then (or when the renewal's
// outcome is unknown), and twice after, every
// name is looked at (another Subscriber may have taken it meanwhile); a
// name found taken is looked at on every renewal until it is ours again.
func (h *nameHolder) run(ctx context.Context, key string) {
	h.mu.Lock()
	client, log, ttl := h.client, errlog.New(h.logger), h.ttl
	h.mu.Unlock()
	t := time.NewTimer(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		h.mu.Lock()
		ttl = h.ttl
		h.mu.Unlock()
		t.Reset(ttl / 3)
		// Sent once: a SET resent after its reply was lost finds the key
		// set, whether it had lapsed or not.
		err := noretry.Do(ctx, client, "SET", key, 1, "PX", ttl.Milliseconds(), "GET").Err()
		if err != nil && !rediserr.IsNil(err) {
			if ctx.Err() == nil {
				log.Failure("Cannot renew the lease on the consumer names", err, nil)
			}
			// It may have been done: look at every name after the next,
			// which comes soon (the error may be a stale connection's).
			h.mu.Lock()
			h.recheck = 3
			h.mu.Unlock()
			t.Reset(min(ttl/3, releaseRetry))
			continue
		}
		log.Recovered("Renewing the lease on the consumer names again", nil)
		// Bounded, so that a node that does not answer (a left key's, on
		// Cluster) does not hold up the renewals.
		dropCtx, cancel := context.WithTimeout(ctx, ttl/3)
		h.dropLeft(dropCtx)
		cancel()
		h.mu.Lock()
		if rediserr.IsNil(err) {
			h.recheck = 3
		}
		var look []*consumerLease
		for l := range h.leases {
			if h.recheck > 0 || l.foreign {
				look = append(look, l)
			}
		}
		h.recheck = max(h.recheck-1, 0)
		h.mu.Unlock()
		for _, l := range look {
			l.refresh(ctx)
		}
	}
}

// claimConsumer returns the consumer name a new subscription of topic uses
// and the lease that holds it (nil when leases are off): the configured
// name, or, when a live Subscriber elsewhere holds it and RenameTakenConsumer
// is set, a new unique name.
func (s *Subscriber) claimConsumer(ctx context.Context, topic string) (string, *consumerLease, error) {
	cfg := s.config
	if cfg.ConsumerGroup == "" || cfg.ConsumerLease < 0 {
		return cfg.Consumer, nil, nil
	}
	lease, ok, err := s.leaseName(ctx, topic, cfg.Consumer, true)
	if rediserr.IsNoPerm(err) || rediserr.IsScriptRefused(err) {
		// An ACL from before ConsumerLease: subscribe unguarded, and say so.
		s.logger.Error("Cannot hold the consumer name (ACL: the lease needs EVALSHA, GET and SET on "+
			"the topic's keys); a second subscriber under this name would not be detected", err,
			watermill.LogFields{"topic": topic, "consumer_group": cfg.ConsumerGroup, "consumer": cfg.Consumer})
		return cfg.Consumer, nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("cannot claim consumer name %s of group %s on topic %s: %w", cfg.Consumer, cfg.ConsumerGroup, topic, err)
	}
	if ok {
		return cfg.Consumer, lease, nil
	}
	if !cfg.RenameTakenConsumer {
		return "", nil, fmt.Errorf("%w: %s in group %s on topic %s", ErrConsumerInUse, cfg.Consumer, cfg.ConsumerGroup, topic)
	}
	name := cfg.Consumer + "-" + watermill.NewShortUUID()
	if lease, _, err = s.leaseName(ctx, topic, name, false); err != nil {
		return "", nil, fmt.Errorf("cannot claim consumer name %s of group %s on topic %s: %w", name, cfg.ConsumerGroup, topic, err)
	}
	s.logger.Info("Consumer name is in use by another live subscriber; subscribing under a new one", watermill.LogFields{
		"topic": topic, "consumer_group": cfg.ConsumerGroup, "consumer": cfg.Consumer, "new_consumer": name,
	})
	return name, lease, nil
}

// leaseName takes name in topic's group through the Subscriber's holder,
// waiting (wait) while another live Subscriber holds it. The lease it
// returns holds a reference to the holder, dropped by done, unless the name
// was not taken.
func (s *Subscriber) leaseName(ctx context.Context, topic, name string, wait bool) (*consumerLease, bool, error) {
	cfg := s.config
	l := &consumerLease{
		client: s.client,
		key:    keys.Consumer(topic, cfg.ConsumerGroup, name),
		ttl:    cfg.ConsumerLease,
	}
	l.logger = s.logger.With(watermill.LogFields{"topic": topic, "consumer_group": cfg.ConsumerGroup, "consumer": name})
	l.log = errlog.New(l.logger)
	h := nameHolders.acquire(s.client, func() *nameHolder { return new(nameHolder) })
	if err := h.hold(ctx, s, topic, l); err != nil {
		nameHolders.release(s.client, func(*nameHolder) {})
		return nil, false, err
	}
	// Counted before the take: a subscription of this Subscriber under the
	// name that ends meanwhile does not give up what this one takes.
	s.mu.Lock()
	s.names[l.key]++
	s.mu.Unlock()
	take := l.take
	if wait {
		take = l.acquire
	}
	ok, err := take(ctx)
	if !ok || err != nil {
		// The take may have been done with its reply lost (a cut
		// connection, ctx ended): give the name up unless another
		// subscription of this Subscriber holds it.
		s.unclaimNow(l, false)
		return nil, false, err
	}
	return l, true, nil
}
