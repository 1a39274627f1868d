// Package partition splits one hot topic over several streams, so that it
// can grow past one Redis Cluster node (one stream lives in one slot of one
// master), and shares those streams among the live consumers of a group
// while keeping the order of each key.
//
// Partitioning is opt-in per topic: [Config.Topics] lists the partitioned
// topics and their number of partitions N. Partition i of topic "orders" is
// the ordinary topic "{orders#i}" (see [Topics]): its own stream with its own
// hash tag, so the partitions hash to different slots and Cluster spreads
// them over its masters, while each partition's dead-letter stream shares its
// slot.
//
// A [Publisher] sends each message to the partition of its partition key
// (metadata [MetadataKey] by default, see [Of]), so the messages of one key
// are in one partition, in the order they were published.
//
// # Automatic assignment: BalancedSubscriber
//
// A [BalancedSubscriber] is a member of its consumer group on a partitioned
// topic. The live members of the group share the partitions: each partition
// is owned by one member at a time, and a member that joins, leaves (Close,
// or cancelling Subscribe's context) or dies makes them move, evenly and as
// few as possible.
//
//	pub, err := partition.NewPublisher(millracePublisher, partition.Config{Topics: map[string]int{"orders": 12}})
//	sub, err := partition.NewBalancedSubscriber(client, partition.BalancedConfig{
//		Topics:     map[string]int{"orders": 12},
//		Subscriber: millrace.SubscriberConfig{ConsumerGroup: "billing", MaxInFlight: 8},
//	}, logger)
//	messages, err := sub.Subscribe(ctx, "orders") // the partitions this member owns, as they move
//
// How it works: partition i is always read under the consumer name
// "<group>-p<i>", and owning it is holding that name's lease
// (millrace.SubscriberConfig.ConsumerLease): the owner subscribes with its
// own millrace.Subscriber under that name. Members renew their membership
// every Heartbeat (200ms) in a sorted set "{orders}:members:<group>" and
// report what they own in a hash "{orders}:ownership:<group>", both in the
// slot of "orders", with one script that reads the server's clock. From the
// live members every member computes the same assignment: each of M members
// gets N/M partitions, the N%M that own the most one more, everyone keeps
// what it owns up to its share, and the rest goes to the members below
// theirs. A member releases what is beyond its share, and takes what is in
// it once nobody reports owning it. Every change is logged ("Rebalancing
// partitions" with the partitions taken, released and waited for; "Took
// partition", "Released partition").
//
// What is guaranteed: the messages of one key are handled one at a time, in
// the order they were published, across joins, leaves and rebalances. A
// partition changes owner only after its old owner has stopped handing out
// its messages, its handlers have acknowledged what they hold (up to
// Subscriber.CloseTimeout), the rest is released and the lease is free; the
// new owner first delivers the partition's pending entries, in stream order,
// then new ones. Inside a partition, Subscriber.OrderingKey (the partition
// key by default) hands out messages of different keys in parallel, up to
// MaxInFlight, and a Nacked message holds back only its own key.
//
// What a crash costs: a member that dies (SIGKILL, a lost machine) stops
// renewing; its membership ends after two thirds of ConsumerLease and its
// partitions' leases at most a third later, and the others take its
// partitions over. The messages it had handled but not acknowledged are
// delivered again, first, before the next messages of their key
// (at-least-once): a message is never handled before an earlier message of
// its key was handled once. A member that stops longer than ConsumerLease
// (a GC pause, SIGSTOP, a network partition) counts as dead: when it comes
// back it finds its partitions owned by another member, and both release
// them before one takes them afresh; until its next heartbeat it may still
// hand out messages it had read, as a crashed member's are handled again.
// A handler still running after
// CloseTimeout at a handover is abandoned: its message is delivered to the
// new owner, possibly while it still runs.
//
// # Fixed assignment: Subscriber
//
// A [Subscriber] subscribes to every partition of a partitioned topic (or
// those [Config.Assigned] picks) with the wrapped subscriber, in one
// consumer group, and merges them into one channel. Per-key order holds as
// long as each partition is consumed by one subscriber at a time: give each
// consumer a disjoint set of partitions ([Config.Assigned]), and every
// partition to some consumer; nothing moves when one stops. Consumers that
// all subscribe to every partition share each partition's entries and trade
// order for availability, as they do on an unpartitioned topic.
//
//	cfg := partition.Config{Topics: map[string]int{"orders": 6}}
//	sub, err := partition.NewSubscriber(millraceSubscriber, cfg)
//	messages, err := sub.Subscribe(ctx, "orders") // the 6 partitions, merged
//
// Topics not listed in Config.Topics pass through both wrappers (and the
// BalancedSubscriber) unchanged. Changing N moves keys to other partitions:
// messages of one key published before and after the change may be handled
// out of order, so drain the topic (or start a new one) to change N. A
// group that switches from fixed to automatic assignment keeps the pending
// entries of the old consumer names; members take them over after
// ClaimMinIdle, out of order.
package partition
