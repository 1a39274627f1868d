// Package partition splits one hot topic over several streams, so that it
// can grow past one Redis Cluster node (one stream lives in one slot of one
// master).
//
// Partitioning is opt-in per topic: [Config.Topics] lists the partitioned
// topics and their number of partitions N. Partition i of topic "orders" is
// the ordinary topic "{orders#i}" (see [Topics]): its own stream with its own
// hash tag, so the partitions hash to different slots and Cluster spreads
// them over its masters, while each partition's dead-letter stream shares its
// slot.
//
// A [Publisher] sends each message to the partition of its partition key
// (metadata [MetadataKey] by default, see [Of]); a [Subscriber] subscribes to
// every partition with the wrapped subscriber, in one consumer group, and
// merges them into one channel. Messages of one key go to one partition, and
// a subscription with MaxInFlight 1 hands out a partition's messages one at a
// time, in stream order: per-key order holds as long as each partition is
// consumed by one subscriber at a time. To share the work between several
// consumers and keep per-key order, give each consumer a disjoint set of
// partitions ([Config.Assigned]); consumers that all subscribe to every
// partition share each partition's entries and trade order for availability,
// as they do on an unpartitioned topic.
//
//	cfg := partition.Config{Topics: map[string]int{"orders": 6}}
//	pub, err := partition.NewPublisher(millracePublisher, cfg)
//	sub, err := partition.NewSubscriber(millraceSubscriber, cfg)
//	messages, err := sub.Subscribe(ctx, "orders") // the 6 partitions, merged
//
// Topics not listed in Config.Topics pass through both wrappers unchanged.
// Changing N moves keys to other partitions: messages of one key published
// before and after the change may be handled out of order, so drain the
// topic (or start a new one) to change N.
package partition
