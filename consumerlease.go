package millrace

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
)

// consumerLease is a Subscriber's claim on a consumer name in a group of a
// topic: a key holding the Subscriber's random token that expires unless
// renewed. A second live Subscriber under the same name finds the key held
// by another token, which catches a copied configuration before two
// processes share one pending entries list.
type consumerLease struct {
	client redis.UniversalClient
	key    string
	token  string
	ttl    time.Duration
	// scriptOnly is set once GETEX was refused: renewals then take the
	// lease with the script, at three commands instead of one. foreign is
	// set while another Subscriber holds the key: renewals then take it
	// with the script, which does not extend that one's lease, so a dead
	// holder's lapses.
	scriptOnly, foreign bool
}

func newConsumerLease(client redis.UniversalClient, topic, group, consumer, token string, ttl time.Duration) *consumerLease {
	return &consumerLease{client: client, key: keys.Consumer(topic, group, consumer), token: token, ttl: ttl}
}

// takeLeaseScript sets KEYS[1] to ARGV[1] for ARGV[2] ms unless another
// token holds it; 1 when it is ours now.
var takeLeaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then
  return 0
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

// take claims or renews the name; false when another Subscriber holds it.
func (l *consumerLease) take(ctx context.Context) (bool, error) {
	n, err := takeLeaseScript.Run(ctx, l.client, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
	return n == 1, err
}

// renew extends the lease with one command, GETEX PX, which also says
// whose it is: false when another Subscriber holds it (whose lease that
// GETEX extended once; later renewals use take until the name is ours
// again). A lapsed lease is taken again. refused is GETEX's NOPERM,
// returned once; renewals then use take.
func (l *consumerLease) renew(ctx context.Context) (ok bool, refused, err error) {
	if !l.scriptOnly && !l.foreign {
		v, err := l.client.GetEx(ctx, l.key, l.ttl).Result()
		switch {
		case err == nil && v == l.token:
			return true, nil, nil
		case err == nil:
			l.foreign = true
			return false, nil, nil
		case rediserr.IsNoPerm(err):
			l.scriptOnly, refused = true, err
		case !rediserr.IsNil(err):
			return false, nil, err
		}
	}
	ok, err = l.take(ctx)
	if ok {
		l.foreign = false
	}
	return ok, refused, err
}

// acquire takes the name, waiting while another Subscriber holds it, for
// as long as a lease lasts: a predecessor that crashed stops renewing and
// its lease expires within that time, a live one keeps it.
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

// release gives the name up at once, if it is still ours.
func (l *consumerLease) release(ctx context.Context) error {
	return dropLeaseScript.Run(ctx, l.client, []string{l.key}, l.token).Err()
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
	lease := newConsumerLease(s.client, topic, cfg.ConsumerGroup, cfg.Consumer, s.token, cfg.ConsumerLease)
	ok, err := lease.acquire(ctx)
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
	lease = newConsumerLease(s.client, topic, cfg.ConsumerGroup, name, s.token, cfg.ConsumerLease)
	if _, err := lease.take(ctx); err != nil {
		return "", nil, fmt.Errorf("cannot claim consumer name %s of group %s on topic %s: %w", name, cfg.ConsumerGroup, topic, err)
	}
	s.logger.Info("Consumer name is in use by another live subscriber; subscribing under a new one", watermill.LogFields{
		"topic": topic, "consumer_group": cfg.ConsumerGroup, "consumer": cfg.Consumer, "new_consumer": name,
	})
	return name, lease, nil
}
