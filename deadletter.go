package millrace

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/streams"
)

// deadLetter copies e to the topic's dead-letter stream with metadata saying
// why, then acknowledges it. If the copy fails, e is tried again later.
// Without a group there is nothing to acknowledge, and e is only logged.
func (sub *subscription) deadLetter(e *entry, reason string) {
	fields := sub.fields.Add(watermill.LogFields{"entry_id": e.id, "reason": reason, "deliveries": e.deliveries})
	if sub.group == "" {
		sub.logger.Error("Skipping stream entry", nil, fields)
		return
	}
	dlq := sub.config.DeadLetterTopic(sub.topic)
	values, err := sub.deadLetterValues(e, reason)
	if err != nil {
		sub.deadLetterLog.failure(sub.logger, "Cannot encode dead letter; retrying later", err, fields)
		sub.redeliver.schedule(e, retryMax)
		return
	}
	ctx, cancel := context.WithTimeout(sub.hard, finalCallTimeout)
	defer cancel()
	// XADD first and XACK only once it succeeded: MULTI would not roll the
	// XACK back if the XADD failed. A crash in between leaves the entry in
	// both streams, never in neither.
	if err := sub.client.XAdd(ctx, &redis.XAddArgs{Stream: streamKey(dlq), Values: values}).Err(); err != nil {
		sub.deadLetterLog.failure(sub.logger, "Cannot dead-letter entry; retrying later", err, fields)
		sub.redeliver.schedule(e, retryMax)
		return
	}
	if err := sub.client.XAck(ctx, sub.stream, sub.group, e.id).Err(); err != nil {
		sub.logger.Error("Dead-lettered entry not acknowledged; it may be dead-lettered again", err, fields)
	}
	sub.held.remove(e.id)
	sub.logger.Info("Moved entry to the dead-letter topic", fields.Add(watermill.LogFields{"dead_letter_topic": dlq}))
}

// deadLetterValues is e as a message in the dead-letter stream: decoded and
// re-encoded with the dead-letter metadata, or, when it cannot be decoded,
// a message whose payload is the entry's fields as JSON.
func (sub *subscription) deadLetterValues(e *entry, reason string) ([]interface{}, error) {
	msg, err := sub.config.Unmarshaler.Unmarshal(e.values)
	if err != nil {
		raw, jerr := json.Marshal(e.values)
		if jerr != nil {
			return nil, jerr
		}
		msg = message.NewMessage(e.id, raw)
	}
	if msg.UUID == "" {
		msg.UUID = e.id
	}
	if msg.Metadata == nil {
		msg.Metadata = message.Metadata{}
	}
	delete(msg.Metadata, MetadataEntryID)
	delete(msg.Metadata, MetadataDeliveryCount)
	msg.Metadata[MetadataReasonPoisoned] = reason
	msg.Metadata[MetadataTopicPoisoned] = sub.topic
	msg.Metadata[MetadataSubscriberPoisoned] = sub.config.Consumer
	msg.Metadata[MetadataDeadLetterGroup] = sub.group
	msg.Metadata[MetadataDeadLetterConsumer] = sub.config.Consumer
	msg.Metadata[MetadataDeadLetterEntryID] = e.id
	msg.Metadata[MetadataDeadLetterDeliveries] = strconv.FormatInt(e.deliveries, 10)
	msg.Metadata[MetadataDeadLetterTime] = time.Now().UTC().Format(time.RFC3339Nano)
	fields, err := sub.config.Marshaler.Marshal(sub.config.DeadLetterTopic(sub.topic), msg)
	if err != nil {
		return nil, err
	}
	return streams.Flatten(fields), nil
}
