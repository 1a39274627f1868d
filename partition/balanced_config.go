package partition

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/millrace/millrace"
)

// Defaults of [BalancedConfig], as its fields document them.
const (
	defaultHeartbeat     = 200 * time.Millisecond
	defaultConsumerLease = 10 * time.Second // millrace's own default
	defaultBlockTime     = 200 * time.Millisecond
)

// BalancedConfig configures a [BalancedSubscriber].
type BalancedConfig struct {
	// Topics maps each partitioned topic to its number of partitions (at
	// least 1), as [Config.Topics]: publishers must use the same. Topics not
	// listed are subscribed as they are, with one millrace.Subscriber
	// configured by Subscriber.
	// Default: none.
	Topics map[string]int
	// KeyMetadata is the metadata key of the partition key, as
	// [Config.KeyMetadata]: the default of Subscriber.OrderingKey.
	// Default: MetadataKey ("partition_key").
	KeyMetadata string
	// Subscriber configures the millrace.Subscriber that reads each
	// partition this member owns. Its ConsumerGroup is required: the
	// members of a group on a topic share its partitions. Consumer must be
	// empty and RenameTakenConsumer false: partition i is read under the
	// consumer name "<ConsumerGroup>-p<i>", whoever owns it, and owning it
	// is holding that name's lease. Defaults that differ from
	// millrace.SubscriberConfig's:
	//
	//   - ConsumerLease (must not be negative) is how long a killed
	//     member's partitions stay with it: others take them within about
	//     this time (its membership ends after two thirds of it, its
	//     leases at most a third later). Default: 10s.
	//   - OrderingKey defaults to KeyMetadata, so a Nacked message holds
	//     back only its key and MaxInFlight > 1 keeps per-key order.
	//   - BlockTime defaults to 200ms: on Cluster a handover waits for the
	//     old owner's read in flight (elsewhere reads hardly block).
	//
	// CloseTimeout bounds how long a handover waits for the old owner's
	// handlers to acknowledge what they hold.
	Subscriber millrace.SubscriberConfig
	// Member names this subscriber among the members of its group; it must
	// be unique among the live members. A second subscription of the same
	// topic by this subscriber is member "<Member>-2", and so on.
	// Default: "<hostname>-<pid>-<random>".
	Member string
	// Heartbeat is how often a member renews its membership (one script on
	// "{topic}:members:<group>" and "{topic}:ownership:<group>") and
	// rebalances: a member that joins or leaves is noticed within it. It
	// must be below a sixth of ConsumerLease.
	// Default: 200ms.
	Heartbeat time.Duration
}

func (c *BalancedConfig) setDefaults() {
	if c.KeyMetadata == "" {
		c.KeyMetadata = MetadataKey
	}
	if c.Subscriber.ConsumerLease == 0 {
		c.Subscriber.ConsumerLease = defaultConsumerLease
	}
	if c.Subscriber.OrderingKey == "" {
		c.Subscriber.OrderingKey = c.KeyMetadata
	}
	if c.Subscriber.BlockTime == 0 {
		c.Subscriber.BlockTime = defaultBlockTime
	}
	if c.Member == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "unknown"
		}
		c.Member = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), watermill.NewShortUUID())
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = defaultHeartbeat
	}
}

// Validate reports every invalid field. It does not change c; call it on a
// config with defaults applied to check those too.
func (c BalancedConfig) Validate() error {
	errs := []error{Config{Topics: c.Topics}.Validate()}
	s := c.Subscriber
	if s.ConsumerGroup == "" {
		errs = append(errs, errors.New("Subscriber.ConsumerGroup is required: the members of a group share the partitions"))
	}
	if s.Consumer != "" {
		errs = append(errs, fmt.Errorf("Subscriber.Consumer must be empty, got %q: partitions are read under their own consumer names", s.Consumer))
	}
	if s.RenameTakenConsumer {
		errs = append(errs, errors.New("Subscriber.RenameTakenConsumer must be false: owning a partition is holding its consumer name"))
	}
	if s.ConsumerLease < 0 {
		errs = append(errs, fmt.Errorf("Subscriber.ConsumerLease must not be negative, got %s: owning a partition is holding its lease", s.ConsumerLease))
	}
	if err := s.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Subscriber: %w", err))
	}
	if c.Heartbeat < 0 || (c.Heartbeat > 0 && s.ConsumerLease > 0 && c.Heartbeat*6 > s.ConsumerLease) {
		errs = append(errs, fmt.Errorf("Heartbeat must be positive and below a sixth of Subscriber.ConsumerLease (%s), got %s", s.ConsumerLease, c.Heartbeat))
	}
	return errors.Join(errs...)
}

// memberTTL is how long a membership lasts without renewal.
func (c BalancedConfig) memberTTL() time.Duration { return c.Subscriber.ConsumerLease * 2 / 3 }
