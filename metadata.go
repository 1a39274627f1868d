package millrace

// Metadata keys Millrace sets on the messages it delivers.
const (
	// MetadataEntryID is the stream entry ID of a delivered message, e.g.
	// "1700000000000-0".
	MetadataEntryID = "_millrace_entry_id"

	// MetadataDeliveryCount is how many times Redis has delivered the entry,
	// this delivery included: Redis's own counter (XPENDING), so it counts
	// Nacks, reclaims from crashed consumers and restarts alike. It is "1" on
	// a first delivery and stays "1" without a consumer group.
	MetadataDeliveryCount = "_millrace_delivery_count"

	// MetadataForeign is "true" on messages decoded from entries that were not
	// written by a Watermill marshaler (e.g. redis-cli XADD): their payload is
	// a JSON object of the entry's fields.
	MetadataForeign = "_millrace_foreign"

	// MetadataLastError is where a handler's error travels: [RecordErrors]
	// (or [RecordError]) sets it on a message whose handler failed, and the
	// subscription that sees the Nack keeps it with the pending entry, for
	// the admin API and the dead letter. A dead letter carries it too: the
	// error of the entry's last failed delivery.
	MetadataLastError = "_millrace_last_error"

	// MetadataReplayGroup, on a message replayed from the dead letters to
	// one consumer group, names that group: subscribers of every other
	// group acknowledge the entry without handing it out.
	MetadataReplayGroup = "_millrace_replay_group"
)

// Metadata keys on dead-lettered messages, besides those of Watermill's
// PoisonQueue middleware that they also carry, so tools written for it read
// them: middleware.ReasonForPoisonedKey (why), middleware.PoisonedTopicKey
// and middleware.PoisonedSubscriberKey (the consumer).
const (
	// MetadataDeadLetterGroup is the consumer group that gave up on the entry.
	MetadataDeadLetterGroup = "_millrace_dlq_group"
	// MetadataDeadLetterConsumer is the consumer that dead-lettered the entry.
	MetadataDeadLetterConsumer = "_millrace_dlq_consumer"
	// MetadataDeadLetterEntryID is the entry's ID in its original stream.
	MetadataDeadLetterEntryID = "_millrace_dlq_entry_id"
	// MetadataDeadLetterDeliveries is Redis's delivery count when the entry
	// was dead-lettered.
	MetadataDeadLetterDeliveries = "_millrace_dlq_deliveries"
	// MetadataDeadLetterTime is when the entry was dead-lettered (RFC 3339).
	MetadataDeadLetterTime = "_millrace_dlq_time"
)
