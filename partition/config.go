package partition

import (
	"errors"
	"fmt"
)

// MetadataKey is the default metadata key of a message's partition key
// ([Config.KeyMetadata]).
const MetadataKey = "partition_key"

// Config says which topics are partitioned and how messages are assigned to
// partitions. Publishers and subscribers of a topic must agree on Topics and
// KeyMetadata. The zero value is valid and partitions nothing.
type Config struct {
	// Topics maps each partitioned topic to its number of partitions (at
	// least 1). Topics not listed are published and subscribed as they are.
	// Default: none.
	Topics map[string]int
	// KeyMetadata is the metadata key holding a message's partition key:
	// messages with the same key go to the same partition, in the order they
	// were published. A message without a key goes to the partition of its
	// UUID (spread evenly, no order). Default: MetadataKey ("partition_key").
	KeyMetadata string
	// Assigned, for a subscriber, picks the partitions of a topic it
	// consumes. Give each consumer of a group a disjoint set (e.g.
	// partition%consumers == index) to keep per-key order with several
	// consumers; every partition must be assigned to some consumer, or its
	// messages wait. Publishers ignore it. Default: nil, every partition.
	Assigned func(topic string, partition int) bool
}

func (c *Config) setDefaults() {
	if c.KeyMetadata == "" {
		c.KeyMetadata = MetadataKey
	}
}

// Validate reports every invalid topic. It does not change c.
func (c Config) Validate() error {
	var errs []error
	for topic, n := range c.Topics {
		if _, err := Topics(topic, n); err != nil {
			errs = append(errs, fmt.Errorf("invalid Topics[%q]: %w", topic, err))
		}
	}
	return errors.Join(errs...)
}

// partitionTopics returns the partition topics of every partitioned topic.
func (c Config) partitionTopics() map[string][]string {
	topics := make(map[string][]string, len(c.Topics))
	for topic, n := range c.Topics {
		topics[topic], _ = Topics(topic, n) // validated
	}
	return topics
}
