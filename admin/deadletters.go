package admin

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/rediserr"
)

// DeadLetter is one entry of a topic's dead-letter stream, decoded with
// millrace.DefaultMarshaler.
type DeadLetter struct {
	// ID is the entry's ID in the dead-letter stream; Time is the time in it,
	// when the entry was dead-lettered.
	ID   string
	Time time.Time
	// UUID, Payload and Metadata are the message's; Metadata includes the
	// dead-letter keys below.
	UUID     string
	Payload  []byte
	Metadata map[string]string
	// Topic is where the message came from (topic_poisoned) and where a
	// replay sends it; Reason says why it was dead-lettered.
	Topic  string
	Reason string
	// Group and Consumer gave up on the message; OriginalID is its entry ID
	// in Topic; Deliveries is how often Redis had delivered it.
	Group      string
	Consumer   string
	OriginalID string
	Deliveries int64
	// Foreign is true when the original entry was not written by a Watermill
	// marshaler: Payload is then a JSON object of its fields.
	Foreign bool
	// DecodeError is set when the entry could not be decoded: Payload then
	// holds its raw fields as JSON, and replay skips it.
	DecodeError string
}

func decodeDeadLetter(m redis.XMessage) DeadLetter {
	msg := decodeMessage(m)
	d := DeadLetter{
		ID: msg.ID, Time: msg.Time, UUID: msg.UUID, Payload: msg.Payload,
		Foreign: msg.Foreign, DecodeError: msg.DecodeError,
	}
	if d.DecodeError != "" {
		return d
	}
	d.Metadata = msg.Metadata
	d.Topic = d.Metadata[middleware.PoisonedTopicKey]
	d.Reason = d.Metadata[middleware.ReasonForPoisonedKey]
	d.Group = d.Metadata[millrace.MetadataDeadLetterGroup]
	d.Consumer = d.Metadata[millrace.MetadataDeadLetterConsumer]
	d.OriginalID = d.Metadata[millrace.MetadataDeadLetterEntryID]
	d.Deliveries, _ = strconv.ParseInt(d.Metadata[millrace.MetadataDeadLetterDeliveries], 10, 64)
	return d
}

// DeadLetterQuery selects entries of a dead-letter stream.
type DeadLetterQuery struct {
	// After lists entries after this entry ID (exclusive), for paging.
	// Default: from the oldest.
	After string
	// Count caps the entries listed (XRANGE ... COUNT). Default: 100.
	Count int64
}

// DeadLetters lists the dead letters of topic, oldest first.
func (a *Admin) DeadLetters(ctx context.Context, topic string, q DeadLetterQuery) ([]DeadLetter, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	if q.Count <= 0 {
		q.Count = 100
	}
	start := "-"
	if q.After != "" {
		start = "(" + q.After
	}
	dlq := a.deadLetterStream(topic)
	msgs, err := a.client.XRangeN(ctx, dlq, start, "+", q.Count).Result()
	if err != nil && !rediserr.IsNil(err) {
		return nil, fmt.Errorf("cannot read dead-letter stream %s: %w", dlq, err)
	}
	out := make([]DeadLetter, len(msgs))
	for k, m := range msgs {
		out[k] = decodeDeadLetter(m)
	}
	return out, nil
}

// DeadLetter returns the dead letter of topic with entry ID id, or
// [ErrNoSuchDeadLetter].
func (a *Admin) DeadLetter(ctx context.Context, topic, id string) (DeadLetter, error) {
	if err := checkTopic(topic); err != nil {
		return DeadLetter{}, err
	}
	if err := checkID(id); err != nil {
		return DeadLetter{}, err
	}
	dlq := a.deadLetterStream(topic)
	msgs, err := a.client.XRange(ctx, dlq, id, id).Result()
	if err != nil && !rediserr.IsNil(err) {
		return DeadLetter{}, fmt.Errorf("cannot read dead-letter stream %s: %w", dlq, err)
	}
	if len(msgs) == 0 {
		return DeadLetter{}, fmt.Errorf("%w: %s in %s", ErrNoSuchDeadLetter, id, dlq)
	}
	return decodeDeadLetter(msgs[0]), nil
}

// PurgeOptions configure [Admin.PurgeDeadLetters].
type PurgeOptions struct {
	// IDs deletes only these entries (XDEL). Default: every entry.
	IDs []string
}

// purgeChunk caps the IDs of one XDEL.
const purgeChunk = 1000

// PurgeDeadLetters deletes dead letters of topic and returns how many it
// deleted. Without IDs it empties the dead-letter stream (XTRIM MAXLEN 0),
// keeping the stream and any groups on it.
func (a *Admin) PurgeDeadLetters(ctx context.Context, topic string, opts PurgeOptions) (int64, error) {
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	dlq := a.deadLetterStream(topic)
	if len(opts.IDs) == 0 {
		n, err := a.client.XTrimMaxLen(ctx, dlq, 0).Result()
		if err != nil && !rediserr.IsNil(err) {
			return 0, fmt.Errorf("cannot purge dead-letter stream %s: %w", dlq, err)
		}
		return n, nil
	}
	for _, id := range opts.IDs {
		if err := checkID(id); err != nil {
			return 0, err
		}
	}
	var total int64
	for ids := opts.IDs; len(ids) > 0; {
		n := min(len(ids), purgeChunk)
		deleted, err := a.client.XDel(ctx, dlq, ids[:n]...).Result()
		if err != nil && !rediserr.IsNil(err) {
			return total, fmt.Errorf("cannot purge dead letters from %s: %w", dlq, err)
		}
		total += deleted
		ids = ids[n:]
	}
	return total, nil
}
