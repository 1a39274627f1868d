package millrace

import (
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Stream entry fields written by [DefaultMarshaler]. They are the fields
// watermill-redisstream writes, so both adapters can share streams.
const (
	UUIDField     = "_watermill_message_uuid"
	PayloadField  = "payload"
	MetadataField = "metadata"
)

// Marshaler turns a message into the field-value pairs of one stream entry.
// The signature is watermill-redisstream's, so its custom marshalers work
// unchanged.
type Marshaler interface {
	Marshal(topic string, msg *message.Message) (map[string]interface{}, error)
}

// Unmarshaler turns the fields of a stream entry back into a message. A
// message it returns with an empty UUID gets the entry ID as its UUID. An
// error marks the entry as malformed: it is dead-lettered, never delivered.
type Unmarshaler interface {
	Unmarshal(values map[string]interface{}) (*message.Message, error)
}

// MarshalerUnmarshaler is both a [Marshaler] and an [Unmarshaler].
type MarshalerUnmarshaler interface {
	Marshaler
	Unmarshaler
}

// DefaultMarshaler writes the UUID, the payload as raw bytes and the metadata
// as a msgpack map[string]string. Entries without a UUID field, written by
// redis-cli or by programs in other languages, are read as foreign entries:
// the payload is a JSON object of all their fields and the UUID is left
// empty (so it becomes the entry ID).
type DefaultMarshaler struct{}

var _ MarshalerUnmarshaler = DefaultMarshaler{}

// Marshal implements [Marshaler].
func (DefaultMarshaler) Marshal(_ string, msg *message.Message) (map[string]interface{}, error) {
	md, err := marshalMetadata(msg.Metadata)
	if err != nil {
		return nil, fmt.Errorf("cannot marshal metadata of message %s: %w", msg.UUID, err)
	}
	return map[string]interface{}{
		UUIDField:     msg.UUID,
		PayloadField:  []byte(msg.Payload),
		MetadataField: md,
	}, nil
}

// flatMarshaler is a Marshaler that appends an entry's fields to dst as
// XADD takes them, in name order, without a map in between.
type flatMarshaler interface {
	appendFlat(dst []interface{}, msg *message.Message) ([]interface{}, error)
}

var _ flatMarshaler = DefaultMarshaler{}

// appendFlat is Marshal's fields, in name order.
func (DefaultMarshaler) appendFlat(dst []interface{}, msg *message.Message) ([]interface{}, error) {
	md, err := marshalMetadata(msg.Metadata)
	if err != nil {
		return nil, fmt.Errorf("cannot marshal metadata of message %s: %w", msg.UUID, err)
	}
	return append(dst, UUIDField, msg.UUID, MetadataField, md, PayloadField, []byte(msg.Payload)), nil
}

// Unmarshal implements [Unmarshaler].
func (DefaultMarshaler) Unmarshal(values map[string]interface{}) (*message.Message, error) {
	rawUUID, ok := values[UUIDField]
	if !ok {
		return unmarshalForeign(values)
	}
	uuid, ok := rawUUID.(string)
	if !ok {
		return nil, fmt.Errorf("field %s is %T, not a string", UUIDField, rawUUID)
	}
	return decodeMessage(values, uuid)
}

// decodeMessage builds the message with uuid from the payload and msgpack
// metadata fields of an entry, both optional.
func decodeMessage(values map[string]interface{}, uuid string) (*message.Message, error) {
	payload, _, err := stringField(values, PayloadField)
	if err != nil {
		return nil, err
	}
	msg := message.NewMessage(uuid, []byte(payload))
	if s, ok, err := stringField(values, MetadataField); err != nil {
		return nil, err
	} else if ok {
		md, err := unmarshalMetadata(s)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", MetadataField, err)
		}
		if md != nil {
			msg.Metadata = md
		}
	}
	return msg, nil
}

// stringField reads field name of an entry: ok is false when it is absent,
// and a value that is not a string is an error.
func stringField(values map[string]interface{}, name string) (s string, ok bool, err error) {
	raw, ok := values[name]
	if !ok {
		return "", false, nil
	}
	if s, ok = raw.(string); !ok {
		return "", true, fmt.Errorf("field %s is %T, not a string", name, raw)
	}
	return s, true, nil
}

// marshalMetadata encodes metadata as msgpack; nil or empty metadata is the
// msgpack nil, as watermill-redisstream writes it.
func marshalMetadata(md message.Metadata) ([]byte, error) {
	return appendMetadata(make([]byte, 0, metadataSize(md)), md), nil
}

const msgpackNil = 0xc0

// unmarshalMetadata decodes a msgpack map[string]string. An empty value
// means no metadata.
func unmarshalMetadata(s string) (message.Metadata, error) {
	if s == "" {
		return nil, nil
	}
	return decodeMetadata(s)
}

// unmarshalForeign delivers an entry written by another producer: its
// fields as a JSON object payload.
func unmarshalForeign(values map[string]interface{}) (*message.Message, error) {
	payload, err := json.Marshal(values)
	if err != nil {
		return nil, fmt.Errorf("cannot encode foreign entry as JSON: %w", err)
	}
	msg := message.NewMessage("", payload)
	msg.Metadata.Set(MetadataForeign, "true")
	return msg, nil
}
