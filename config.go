package millrace

import (
	"errors"
	"fmt"
	"time"

	"github.com/millrace/millrace/internal/entryid"
)

// Defaults of [PublisherConfig] and [SubscriberConfig].
const (
	DefaultClaimMinIdle        = 30 * time.Second
	DefaultBlockTime           = time.Second
	DefaultPrefetch            = 100
	DefaultMaxInFlight         = 1
	DefaultClaimBatch          = 100
	DefaultAckBatch            = 256
	DefaultAckInterval         = 2 * time.Millisecond
	DefaultNackBackoff         = 100 * time.Millisecond
	DefaultNackBackoffMax      = 10 * time.Second
	DefaultCloseTimeout        = 10 * time.Second
	DefaultPruneConsumersAfter = time.Hour
	DefaultPublishBatch        = 512
	DefaultPublishPipelines    = 2
)

// Start positions of a new consumer group ([SubscriberConfig.NewGroupStartID]).
const (
	// StartOldest makes a new group read the topic's whole history.
	StartOldest = "0"
	// StartNewest makes a new group read only entries added after it was created.
	StartNewest = "$"
)

// Retention bounds a topic's stream. Trimming deletes the oldest entries
// whether or not every consumer group has read them: a group lagging further
// behind than the retention loses those messages.
type Retention struct {
	// MaxLen keeps about this many entries: XADD ... MAXLEN ~ MaxLen.
	// Redis trims whole nodes, so a few tens more may stay. 0 = no limit.
	MaxLen int64
	// MaxAge drops entries older than this, by the time in their IDs:
	// XADD ... MINID ~ <now-MaxAge> (with MaxLen, an XTRIM MINID ~ once per
	// pipeline and topic). Like MaxLen it trims whole nodes, so up to about a
	// hundred older entries may stay. 0 = no limit.
	MaxAge time.Duration
	// KeepUnacked makes retention safe: an entry is trimmed only once every
	// consumer group of the topic has read and acknowledged it (and, with
	// MaxAge, once it is also older than MaxAge). With neither MaxLen nor
	// MaxAge, everything acknowledged by all groups is trimmed. The Publisher
	// trims every TrimInterval with XINFO GROUPS, XPENDING and XTRIM MINID ~;
	// a topic without groups is not trimmed. It cannot be combined with
	// MaxLen.
	KeepUnacked bool
}

func (r Retention) validate() error {
	if r.MaxLen < 0 {
		return fmt.Errorf("MaxLen must not be negative, got %d", r.MaxLen)
	}
	if r.MaxAge < 0 {
		return fmt.Errorf("MaxAge must not be negative, got %s", r.MaxAge)
	}
	if r.KeepUnacked && r.MaxLen > 0 {
		return errors.New("KeepUnacked cannot be combined with MaxLen: trimming by count cannot spare unacknowledged entries")
	}
	return nil
}

// PublisherConfig configures a [Publisher]. The zero value is valid.
type PublisherConfig struct {
	// Marshaler encodes messages into stream entries. Default: DefaultMarshaler.
	Marshaler Marshaler

	// Retention applies to every topic without an entry in TopicRetention.
	// Default: none, streams grow until trimmed.
	Retention Retention
	// TopicRetention overrides Retention per topic.
	TopicRetention map[string]Retention

	// MaxBatch caps how many XADDs go into one pipeline. Concurrent Publish
	// calls are coalesced into shared pipelines up to this size; the messages
	// of one call always share a pipeline. Default: 512.
	MaxBatch int
	// Pipelines is how many pipelines may be in flight at once, each on its
	// own pooled connection. Default: 2.
	Pipelines int

	// Durability makes Publish wait for replicas (WAIT) or AOF fsync
	// (WAITAOF) after its XADDs. Default: none.
	Durability Durability

	// TrimInterval is how often topics with Retention.KeepUnacked are
	// trimmed. Default: 1s.
	TrimInterval time.Duration
}

func (c *PublisherConfig) setDefaults() {
	if c.Marshaler == nil {
		c.Marshaler = DefaultMarshaler{}
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultPublishBatch
	}
	if c.Pipelines == 0 {
		c.Pipelines = DefaultPublishPipelines
	}
	if c.TrimInterval == 0 {
		c.TrimInterval = DefaultTrimInterval
	}
}

// trimsInPipeline reports whether a pipeline to the topic ends with XTRIM:
// when MaxLen takes XADD's one trimming clause and MaxAge needs another.
func (r Retention) trimsInPipeline() bool { return r.MaxAge > 0 && r.MaxLen > 0 && !r.KeepUnacked }

// minID is XADD's MINID clause for MaxAge, when XADD trims by age.
func (r Retention) minID() string {
	if r.MaxAge == 0 || r.MaxLen > 0 || r.KeepUnacked {
		return ""
	}
	return entryid.MinAt(time.Now().Add(-r.MaxAge))
}

// keepsUnacked reports whether any topic's retention is KeepUnacked.
func (c PublisherConfig) keepsUnacked() bool {
	if c.Retention.KeepUnacked {
		return true
	}
	for _, r := range c.TopicRetention {
		if r.KeepUnacked {
			return true
		}
	}
	return false
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
	if c.MaxBatch < 0 {
		return fmt.Errorf("MaxBatch must not be negative, got %d", c.MaxBatch)
	}
	if c.Pipelines < 0 {
		return fmt.Errorf("Pipelines must not be negative, got %d", c.Pipelines)
	}
	if c.TrimInterval < 0 {
		return fmt.Errorf("TrimInterval must not be negative, got %s", c.TrimInterval)
	}
	return nil
}

func (c PublisherConfig) retention(topic string) Retention {
	if r, ok := c.TopicRetention[topic]; ok {
		return r
	}
	return c.Retention
}

// SubscriberConfig configures a [Subscriber]. The zero value is valid and
// subscribes in broadcast mode.
type SubscriberConfig struct {
	// ConsumerGroup shares the work of a topic between all subscribers of the
	// group: each entry goes to one of them (XREADGROUP). Empty means
	// broadcast: every subscriber reads every entry added after it subscribed
	// (XREAD), nothing is acknowledged and nothing is redelivered after a crash.
	ConsumerGroup string
	// Consumer names this subscriber within its group. A restarted subscriber
	// with the same name first gets back the entries it had not acknowledged.
	// It must be unique among live subscribers of the group: two under one
	// name take each other's pending entries as their own. Default: a unique
	// generated name.
	Consumer string
	// ClaimMinIdle is how long an entry must sit unacknowledged at another
	// consumer before this one takes it over (XAUTOCLAIM min-idle-time). Live
	// consumers extend the lease of the entries they hold, so only the
	// entries of crashed or stuck consumers are taken. Default: 30s.
	ClaimMinIdle time.Duration
	// MaxDeliveries moves an entry to the dead-letter topic, and acknowledges
	// it, once Redis has delivered it more than this many times (Nacks,
	// crashes and reclaims all count). 0 = never.
	MaxDeliveries int

	// NewGroupStartID is where a group created by this subscriber starts:
	// StartOldest ("0", the whole history), StartNewest ("$") or an entry ID.
	// It does not move an existing group. Default: StartOldest.
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
	// handlers. Default: 1.
	MaxInFlight int
	// BlockTime is how long one read waits for new entries (XREADGROUP BLOCK).
	// It bounds how long Close waits for a read in flight. Default: 1s.
	BlockTime time.Duration
	// ClaimInterval is how often the group's pending entries are scanned for
	// idle ones of other consumers; each scan goes through the whole list,
	// ClaimBatch entries per XAUTOCLAIM. Default: ClaimMinIdle/2, at most 5s.
	ClaimInterval time.Duration
	// ClaimBatch caps one XAUTOCLAIM (COUNT). Default: 100.
	ClaimBatch int
	// AckBatch caps the IDs of one XACK. Default: 256.
	AckBatch int
	// AckInterval is how long acknowledgements may wait to be batched into
	// one XACK. Close always flushes them. Default: 2ms.
	AckInterval time.Duration
	// NackBackoff is the wait before a Nacked message is delivered again;
	// it doubles with each Nack of the same entry up to NackBackoffMax.
	// Default: 100ms and 10s.
	NackBackoff    time.Duration
	NackBackoffMax time.Duration
	// PruneConsumersAfter removes consumers of the group that have been idle
	// this long and hold no pending entry (XGROUP DELCONSUMER, checked
	// atomically in a script, so no pending entry is ever dropped), checked
	// once a minute. Generated consumer names otherwise pile up in the group
	// over restarts. A live consumer removed this way is recreated by its
	// next read. Default: 1h; negative disables.
	PruneConsumersAfter time.Duration
	// CloseTimeout bounds how long Close (or cancelling Subscribe's context)
	// waits for handlers to Ack or Nack the messages they hold. Messages
	// still unacknowledged then stay pending and are redelivered. Close
	// returns within about CloseTimeout+BlockTime, plus a bounded final XACK
	// and release when Redis is slow. Default: 10s.
	CloseTimeout time.Duration
	// DeadLetterTopic names the dead-letter topic of a topic.
	// Default: DeadLetterTopic, "{topic}:dlq".
	DeadLetterTopic func(topic string) string

	// Unmarshaler decodes stream entries. Default: DefaultMarshaler.
	Unmarshaler Unmarshaler
	// Marshaler encodes dead-lettered messages. Default: DefaultMarshaler.
	Marshaler Marshaler
}

func (c *SubscriberConfig) setDefaults() {
	if c.ClaimMinIdle == 0 {
		c.ClaimMinIdle = DefaultClaimMinIdle
	}
	if c.NewGroupStartID == "" {
		c.NewGroupStartID = StartOldest
	}
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.BlockTime == 0 {
		c.BlockTime = DefaultBlockTime
	}
	if c.ClaimInterval == 0 {
		c.ClaimInterval = min(c.ClaimMinIdle/2, 5*time.Second)
	}
	if c.ClaimBatch == 0 {
		c.ClaimBatch = DefaultClaimBatch
	}
	if c.AckBatch == 0 {
		c.AckBatch = DefaultAckBatch
	}
	if c.AckInterval == 0 {
		c.AckInterval = DefaultAckInterval
	}
	if c.NackBackoff == 0 {
		c.NackBackoff = DefaultNackBackoff
	}
	if c.NackBackoffMax == 0 {
		c.NackBackoffMax = max(DefaultNackBackoffMax, c.NackBackoff)
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.PruneConsumersAfter == 0 {
		c.PruneConsumersAfter = DefaultPruneConsumersAfter
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
