package millrace

import (
	"errors"
	"fmt"
	"time"

	"github.com/millrace/millrace/internal/entryid"
)

// Defaults of [PublisherConfig] and [SubscriberConfig], as their fields
// document them.
const (
	defaultPublishBatch        = 512
	defaultPublishPipelines    = 1
	defaultTrimInterval        = time.Second
	defaultClaimMinIdle        = 30 * time.Second
	defaultConsumerLease       = 10 * time.Second
	defaultPrefetch            = 100
	defaultMaxInFlight         = 1
	defaultBlockTime           = time.Second
	defaultClaimIntervalMax    = 5 * time.Second
	defaultClaimBatch          = 100
	defaultAckBatch            = 256
	defaultAckInterval         = 2 * time.Millisecond
	defaultNackBackoff         = 100 * time.Millisecond
	defaultNackBackoffMax      = 10 * time.Second
	defaultPruneConsumersAfter = time.Hour
	defaultCloseTimeout        = 10 * time.Second
)

// Start positions of a new consumer group ([SubscriberConfig.NewGroupStartID]).
const (
	// StartOldest makes a new group read the topic's whole history.
	StartOldest = "0"
	// StartNewest makes a new group read only entries added after it was created.
	StartNewest = "$"
)

// PublisherConfig configures a [Publisher]. The zero value is valid.
type PublisherConfig struct {
	// Marshaler encodes messages into stream entries.
	// Default: DefaultMarshaler{}.
	Marshaler Marshaler

	// Retention applies to every topic without an entry in TopicRetention.
	// The zero Retention (here or in TopicRetention) means the default.
	// Default: Retention{KeepUnacked: true, MaxAge: time.Hour}: trims what
	// every group acknowledged more than an hour ago.
	Retention Retention
	// TopicRetention overrides Retention per topic.
	// Default: nil, every topic has Retention.
	TopicRetention map[string]Retention

	// MaxBatch caps how many XADDs go into one pipeline. Concurrent Publish
	// calls are coalesced into shared pipelines up to this size; the messages
	// of one call always share a pipeline.
	// Default: 512.
	MaxBatch int
	// Pipelines is how many pipelines may be in flight at once, each on its
	// own pooled connection. One gathers the most calls per round trip,
	// which costs the client and Redis least per message; more may help
	// where Redis has cores of its own and is the bottleneck.
	// Default: 1.
	Pipelines int

	// Durability makes Publish wait for replicas (WAIT) or AOF fsync
	// (WAITAOF) after its XADDs.
	// Default: Durability{}, no wait.
	Durability Durability

	// Retries is how many times Publish sends a call again when its
	// pipeline failed on a network error or a timeout, after 50ms, then
	// 100ms, ...: the script that adds the messages of a call records the
	// producer's sequence number with them, so a resend of what Redis
	// already ran adds nothing. Never with PlainXAdd. Negative: never.
	// Default: 2.
	Retries int
	// PlainXAdd adds every message with a plain XADD instead of a script
	// (EVALSHA) that adds the call's messages all or none and records the
	// producer's sequence number. Publish then never sends again: a lost
	// reply fails it with ErrOutcomeUnknown, and a call Redis refused
	// part-way returns a *PartialPublishError. For servers or ACLs without
	// scripts; Publish also falls back to it, logged, when scripts are
	// refused.
	// Default: false.
	PlainXAdd bool
	// Idempotency deduplicates by message UUID: a UUID is added to a topic
	// at most once within Idempotency.Window, also when the application
	// publishes it again.
	// Default: Idempotency{}, off.
	Idempotency Idempotency

	// TrimInterval is how often topics with Retention.KeepUnacked are
	// trimmed (XINFO GROUPS, XPENDING, XTRIM MINID ~ per topic published to).
	// Default: 1s.
	TrimInterval time.Duration
}

func (c *PublisherConfig) setDefaults() {
	if c.Marshaler == nil {
		c.Marshaler = DefaultMarshaler{}
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = defaultPublishBatch
	}
	if c.Pipelines == 0 {
		c.Pipelines = defaultPublishPipelines
	}
	if c.TrimInterval == 0 {
		c.TrimInterval = defaultTrimInterval
	}
	c.Retention = c.Retention.resolved()
	if c.Retries == 0 {
		c.Retries = defaultPublishRetries
	}
}

// Validate reports the first invalid field. It does not change c.
func (c PublisherConfig) Validate() error {
	if err := c.Retention.validate(); err != nil {
		return fmt.Errorf("Retention: %w", err)
	}
	for topic, r := range c.TopicRetention {
		if topic == "" {
			return fmt.Errorf("TopicRetention: %w", ErrEmptyTopic)
		}
		if err := r.validate(); err != nil {
			return fmt.Errorf("TopicRetention[%q]: %w", topic, err)
		}
	}
	if err := c.Durability.validate(); err != nil {
		return fmt.Errorf("Durability: %w", err)
	}
	if err := c.Idempotency.validate(); err != nil {
		return fmt.Errorf("Idempotency: %w", err)
	}
	if c.MaxBatch < 0 {
		return fmt.Errorf("MaxBatch must not be negative, got %d", c.MaxBatch)
	}
	if c.Pipelines < 0 {
		return fmt.Errorf("Pipelines must not be negative, got %d", c.Pipelines)
	}
	if c.TrimInterval < 0 {
		return fmt.Errorf("TrimInterval must not be negative, got %s", c.TrimInterval)
	}
	if c.PlainXAdd && c.refusesAtCeiling() {
		return errors.New("PlainXAdd cannot be combined with Overflow RefusePublish, which checks the stream's length in a script")
	}
	if c.PlainXAdd && c.Idempotency.enabled() {
		return errors.New("PlainXAdd cannot be combined with Idempotency, which adds with a script")
	}
	return nil
}

// SubscriberConfig configures a [Subscriber]. The zero value is valid and
// subscribes in broadcast mode.
type SubscriberConfig struct {
	// ConsumerGroup shares the work of a topic between all subscribers of the
	// group: each entry goes to one of them (XREADGROUP). Empty means
	// broadcast: every subscriber reads every entry added after it subscribed
	// (XREAD), nothing is acknowledged and nothing is redelivered after a crash.
	// Default: "", broadcast.
	ConsumerGroup string
	// Consumer names this subscriber within its group. A restarted subscriber
	// with the same name first gets back the entries it had not acknowledged.
	// It must be unique among live subscribers of the group: two under one
	// name take each other's pending entries as their own.
	// Default: "<hostname>-<pid>-<random>", unique per Subscriber.
	Consumer string
	// ConsumerLease guards the Consumer name against a second live
	// Subscriber of the group and topic (a copied configuration, a fixed
	// name in a scaled deployment), which would silently share this one's
	// pending entries: the name is held by a key ("{topic}:consumer:...")
	// naming the Subscriber's holder key ("{first topic}:holder:...", SET
	// PX ConsumerLease), renewed every third of it with one SET for all the
	// Subscriber's topics, and released by Close. Subscribe under a name
	// held elsewhere waits up to 1.5×ConsumerLease for that holder key to
	// expire (a crashed predecessor's does), then fails with
	// ErrConsumerInUse, or subscribes under a new name with
	// RenameTakenConsumer. Negative turns the check off.
	// Default: 10s.
	ConsumerLease time.Duration
	// RenameTakenConsumer subscribes under "<Consumer>-<random>" (logged)
	// when the Consumer name is held by another live Subscriber, instead of
	// failing.
	// Default: false.
	RenameTakenConsumer bool
	// ClaimMinIdle is how long an entry must sit unacknowledged at another
	// consumer before this one takes it over (XAUTOCLAIM min-idle-time). Live
	// consumers extend the lease of the entries they hold, so only the
	// entries of crashed or stuck consumers are taken.
	// Default: 30s.
	ClaimMinIdle time.Duration
	// MaxDeliveries moves an entry to the dead-letter topic, and acknowledges
	// it, once Redis has delivered it more than this many times (Nacks,
	// crashes and reclaims all count).
	// Default: 0, never.
	MaxDeliveries int

	// NewGroupStartID is where a group created by this subscriber starts:
	// StartOldest ("0", the whole history), StartNewest ("$") or an entry ID.
	// It does not move an existing group (XGROUP CREATE id).
	// Default: StartOldest.
	NewGroupStartID string
	// Prefetch is how many entries one read fetches (XREADGROUP COUNT) and
	// the size of the queue in front of the handlers; with a read and a claim
	// waiting for room, about three times this many entries are in memory.
	// Default: 100.
	Prefetch int
	// MaxInFlight is how many messages a subscription hands out before their
	// Ack or Nack. 1 hands them out in stream order, except that a Nacked
	// message comes back after its backoff and entries taken over from dead
	// consumers are interleaved; more trade order for throughput with slow
	// handlers, unless OrderingKey keeps the order of each key.
	// Default: 1.
	MaxInFlight int
	// OrderingKey names a metadata key (such as partition.MetadataKey) whose
	// value orders messages: the messages of one value are handed out one at
	// a time, in the order the subscription reads them, while messages of
	// different values go to the MaxInFlight handlers in parallel. A Nacked
	// message holds back the later messages of its value, and only those,
	// until it is acknowledged or dead-lettered (MaxDeliveries). Messages
	// without the key are handed out as without OrderingKey. The order is
	// that of one subscription: entries it takes over from other consumers
	// of the group come when they are taken. Up to Prefetch more entries
	// wait in memory behind their key, and an entry to be redelivered after
	// a restart or a takeover costs one XRANGE (pipelined) to read its key.
	// Default: "", no per-key order.
	OrderingKey string
	// BlockTime is how long one wait for new entries blocks before it is
	// renewed: on a standalone or Sentinel client the XREAD BLOCK of the wait
	// every Subscriber over the client shares (the shortest BlockTime of
	// theirs; a busy topic's own reads block for 100ms at most), on Cluster
	// the XREADGROUP BLOCK of each subscription's read, which Close waits
	// for.
	// Default: 1s.
	BlockTime time.Duration
	// ClaimInterval is how often the group's pending entries are scanned for
	// idle ones of other consumers; each scan goes through the whole list,
	// ClaimBatch entries per XAUTOCLAIM. On a quiet topic (standalone or
	// Sentinel) one XPENDING finding the list empty stands for the scans
	// until the next entry is added, a restart or failover, or for ten
	// times ClaimMinIdle.
	// Default: ClaimMinIdle/2, at most 5s.
	ClaimInterval time.Duration
	// ClaimBatch caps one XAUTOCLAIM (COUNT); Prefetch caps it in turn.
	// Default: 100.
	ClaimBatch int
	// AckBatch caps the IDs of one XACK.
	// Default: 256.
	AckBatch int
	// AckInterval is how long acknowledgements may wait to be batched into
	// one XACK. Close always flushes them.
	// Default: 2ms.
	AckInterval time.Duration
	// NackBackoff is the wait before a Nacked message is delivered again;
	// it doubles with each Nack of the same entry up to NackBackoffMax.
	// Default: 100ms.
	NackBackoff time.Duration
	// NackBackoffMax caps the doubling NackBackoff.
	// Default: 10s, or NackBackoff if that is longer.
	NackBackoffMax time.Duration
	// PruneConsumersAfter removes consumers of the group that have been idle
	// this long and hold no pending entry (XGROUP DELCONSUMER, checked
	// atomically in a script, so no pending entry is ever dropped), checked
	// every quarter of it, at least every 15 minutes. Generated consumer
	// names otherwise pile up in the group over restarts. A live consumer with nothing to read for this long is
	// removed too, and is added again with the next entry it reads.
	// Negative disables it.
	// Default: 1h.
	PruneConsumersAfter time.Duration
	// CloseTimeout bounds how long Close (or cancelling Subscribe's context)
	// waits for handlers to Ack or Nack the messages they hold. Messages
	// still unacknowledged then stay pending and are redelivered. Close
	// returns within about CloseTimeout (on Cluster +BlockTime), plus a
	// bounded final XACK and release when Redis is slow.
	// Default: 10s.
	CloseTimeout time.Duration
	// DeadLetterTopic names the dead-letter topic of a topic.
	// Default: DeadLetterTopic, "{topic}:dlq".
	DeadLetterTopic func(topic string) string
	// NoDelayedMover leaves the delayed messages of the subscribed topics to
	// other subscribers (or to a producer that moves them): this Subscriber
	// never polls the delayed set, so its ACL user needs no sorted-set
	// rights, and a broadcast subscriber only XREAD and XREVRANGE. A topic
	// whose subscribers all set it gets no delayed message delivered.
	// Default: false, every subscription moves its topic's due messages.
	NoDelayedMover bool

	// Unmarshaler decodes stream entries.
	// Default: DefaultMarshaler{}.
	Unmarshaler Unmarshaler
	// Marshaler encodes dead-lettered messages.
	// Default: DefaultMarshaler{}.
	Marshaler Marshaler
}

func (c *SubscriberConfig) setDefaults() {
	if c.ClaimMinIdle == 0 {
		c.ClaimMinIdle = defaultClaimMinIdle
	}
	if c.ConsumerLease == 0 {
		c.ConsumerLease = defaultConsumerLease
	}
	if c.NewGroupStartID == "" {
		c.NewGroupStartID = StartOldest
	}
	if c.Prefetch == 0 {
		c.Prefetch = defaultPrefetch
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = defaultMaxInFlight
	}
	if c.BlockTime == 0 {
		c.BlockTime = defaultBlockTime
	}
	if c.ClaimInterval == 0 {
		c.ClaimInterval = min(c.ClaimMinIdle/2, defaultClaimIntervalMax)
	}
	if c.ClaimBatch == 0 {
		c.ClaimBatch = defaultClaimBatch
	}
	if c.AckBatch == 0 {
		c.AckBatch = defaultAckBatch
	}
	if c.AckInterval == 0 {
		c.AckInterval = defaultAckInterval
	}
	if c.NackBackoff == 0 {
		c.NackBackoff = defaultNackBackoff
	}
	if c.NackBackoffMax == 0 {
		c.NackBackoffMax = max(defaultNackBackoffMax, c.NackBackoff)
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	if c.PruneConsumersAfter == 0 {
		c.PruneConsumersAfter = defaultPruneConsumersAfter
	}
	if c.DeadLetterTopic == nil {
		c.DeadLetterTopic = DeadLetterTopic
	}
	if c.Unmarshaler == nil {
		c.Unmarshaler = DefaultMarshaler{}
	}
	if c.Marshaler == nil {
		c.Marshaler = DefaultMarshaler{}
	}
}

// Validate reports every invalid field. It does not change c; call it
// on a config with defaults applied to check those too.
func (c SubscriberConfig) Validate() error {
	var errs []error
	positive := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %d", name, v))
		}
	}
	positive("ClaimMinIdle", int64(c.ClaimMinIdle))
	positive("MaxDeliveries", int64(c.MaxDeliveries))
	positive("Prefetch", int64(c.Prefetch))
	positive("MaxInFlight", int64(c.MaxInFlight))
	positive("BlockTime", int64(c.BlockTime))
	positive("ClaimInterval", int64(c.ClaimInterval))
	positive("ClaimBatch", int64(c.ClaimBatch))
	positive("AckBatch", int64(c.AckBatch))
	positive("AckInterval", int64(c.AckInterval))
	positive("NackBackoff", int64(c.NackBackoff))
	positive("NackBackoffMax", int64(c.NackBackoffMax))
	positive("CloseTimeout", int64(c.CloseTimeout))
	if c.NackBackoffMax != 0 && c.NackBackoffMax < c.NackBackoff {
		errs = append(errs, fmt.Errorf("NackBackoffMax (%s) is below NackBackoff (%s)", c.NackBackoffMax, c.NackBackoff))
	}
	if c.ConsumerLease > 0 && c.ConsumerLease < 30*time.Millisecond {
		errs = append(errs, fmt.Errorf("ConsumerLease must be at least 30ms, got %s", c.ConsumerLease))
	}
	if c.BlockTime > 0 && c.BlockTime < time.Millisecond {
		errs = append(errs, fmt.Errorf("BlockTime must be at least 1ms (BLOCK counts milliseconds, and 0 waits forever), got %s", c.BlockTime))
	}
	if c.ClaimMinIdle != 0 && c.ClaimMinIdle < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("ClaimMinIdle must be at least 10ms, got %s", c.ClaimMinIdle))
	}
	if c.ConsumerGroup == "" && c.MaxDeliveries > 0 {
		errs = append(errs, errors.New("MaxDeliveries needs a ConsumerGroup: broadcast subscribers have no delivery counter"))
	}
	switch {
	case c.NewGroupStartID == "", c.NewGroupStartID == StartOldest, c.NewGroupStartID == StartNewest:
	case !entryid.Valid(c.NewGroupStartID):
		errs = append(errs, fmt.Errorf("NewGroupStartID must be %q, %q or an entry ID like 1700000000000-0, got %q", StartOldest, StartNewest, c.NewGroupStartID))
	}
	return errors.Join(errs...)
}
