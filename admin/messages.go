package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
)

// Message is one entry of a topic's stream, decoded with
// millrace.DefaultMarshaler.
type Message struct {
	// ID is the entry's ID; Time is the time in it, when it was added.
	ID   string
	Time time.Time
	// UUID, Payload and Metadata are the message's. The UUID of an entry
	// without one is its ID.
	UUID     string
	Payload  []byte
	Metadata map[string]string
	// Foreign is true when the entry was not written by a Watermill
	// marshaler (millrace.MetadataForeign): Payload is then a JSON object of
	// its fields.
	Foreign bool
	// DecodeError is set when the entry could not be decoded: Payload then
	// holds its raw fields as JSON and Metadata is empty.
	DecodeError string
}

func decodeMessage(m redis.XMessage) Message {
	d := Message{ID: m.ID, Metadata: map[string]string{}}
	d.Time, _ = entryid.Time(m.ID)
	msg, err := millrace.DefaultMarshaler{}.Unmarshal(m.Values)
	if err != nil {
		d.DecodeError = err.Error()
		d.Payload, _ = json.Marshal(m.Values)
		return d
	}
	d.UUID = msg.UUID
	if d.UUID == "" {
		d.UUID = m.ID
	}
	d.Payload = msg.Payload
	if msg.Metadata != nil {
		d.Metadata = map[string]string(msg.Metadata)
	}
	d.Foreign = d.Metadata[millrace.MetadataForeign] == "true"
	return d
}

// Messages returns the newest count entries of topic (10 if count <= 0),
// newest first (XREVRANGE key + - COUNT count). It reads the stream only:
// no group moves and nothing is acknowledged. A topic without a stream has
// none.
func (a *Admin) Messages(ctx context.Context, topic string, count int64) ([]Message, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	if count <= 0 {
		count = 10
	}
	stream := keys.Stream(topic)
	msgs, err := a.client.XRevRangeN(ctx, stream, "+", "-", count).Result()
	if err != nil && !rediserr.IsNil(err) {
		return nil, fmt.Errorf("cannot read topic %s: %w", topic, err)
	}
	out := make([]Message, len(msgs))
	for k, m := range msgs {
		out[k] = decodeMessage(m)
	}
	return out, nil
}
