package millrace

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
)

// defaultFieldsMetadataPrefix is FieldsMarshaler.MetadataPrefix by default.
const defaultFieldsMetadataPrefix = "md:"

// ErrReservedField is returned by [FieldsMarshaler.Marshal] when a metadata
// key would be written as one of the fields the marshaler reserves for
// itself ([UUIDField], [PayloadField], [MetadataField]).
var ErrReservedField = errors.New("millrace: metadata key collides with a reserved stream field")

// FieldsMarshaler writes each metadata key as a stream field of its own,
// instead of one msgpack-encoded field, so that `redis-cli XRANGE` shows
// readable entries and programs in other languages read and write messages
// without msgpack:
//
//	XRANGE orders - +
//	1) 1) "1700000000000-0"
//	   2) 1) "_watermill_message_uuid"
//	      2) "6f1c3a5e-..."
//	      3) "md:trace_id"
//	      4) "4bf92f3577b34da6"
//	      5) "payload"
//	      6) "{\"order_id\":42}"
//
// The UUID and payload fields are those of [DefaultMarshaler], so readers
// that only know the default format (watermill-redisstream, DefaultMarshaler)
// still get the UUID and payload, without the metadata.
//
// Unmarshal reads all three formats, so subscribers can switch to it before
// publishers do:
//   - an entry with the UUID field, or with a payload field and otherwise only
//     metadata fields, is a message: its metadata is the msgpack [MetadataField]
//     if present, overlaid with the prefixed fields; other fields are ignored.
//     Without a UUID field the message gets the entry ID as its UUID, so
//     `XADD orders * payload '{"id":1}' md:trace_id abc` is a message too;
//   - any other entry (e.g. `XADD orders * user_id 1001 item "iPhone 15"`) is
//     a foreign entry, as with [DefaultMarshaler]: its fields as a JSON object
//     payload and [MetadataForeign] "true".
type FieldsMarshaler struct {
	// MetadataPrefix starts the field name of every metadata key: metadata
	// "trace_id" is field "md:trace_id". It must not be a prefix of a
	// reserved field name.
	// Default: "md:".
	MetadataPrefix string
	// NoPrefix writes metadata keys as they are, for the flattest entries.
	// Then a metadata key named like a reserved field cannot be written
	// (Marshal fails with ErrReservedField), and Unmarshal reads every field
	// other than the reserved ones as metadata.
	NoPrefix bool
}

var _ MarshalerUnmarshaler = FieldsMarshaler{}

var reservedFields = [...]string{UUIDField, PayloadField, MetadataField}

func isReservedField(name string) bool {
	for _, r := range reservedFields {
		if name == r {
			return true
		}
	}
	return false
}

// prefix is the metadata field prefix in use, or an error for a prefix that
// would make reading ambiguous.
func (m FieldsMarshaler) prefix() (string, error) {
	if m.NoPrefix {
		return "", nil
	}
	p := m.MetadataPrefix
	if p == "" {
		return defaultFieldsMetadataPrefix, nil
	}
	for _, r := range reservedFields {
		if strings.HasPrefix(r, p) {
			return "", fmt.Errorf("millrace: FieldsMarshaler.MetadataPrefix %q is a prefix of the reserved field %q", p, r)
		}
	}
	return p, nil
}

// Marshal implements [Marshaler].
func (m FieldsMarshaler) Marshal(_ string, msg *message.Message) (map[string]interface{}, error) {
	prefix, err := m.prefix()
	if err != nil {
		return nil, err
	}
	fields := make(map[string]interface{}, 2+len(msg.Metadata))
	fields[UUIDField] = msg.UUID
	fields[PayloadField] = []byte(msg.Payload)
	for k, v := range msg.Metadata {
		name := prefix + k
		if isReservedField(name) {
			return nil, fmt.Errorf("%w: message %s has metadata %q, which would be written as field %q",
				ErrReservedField, msg.UUID, k, name)
		}
		fields[name] = v
	}
	return fields, nil
}

// Unmarshal implements [Unmarshaler].
func (m FieldsMarshaler) Unmarshal(values map[string]interface{}) (*message.Message, error) {
	prefix, err := m.prefix()
	if err != nil {
		return nil, err
	}
	uuid, hasUUID, err := stringField(values, UUIDField)
	if err != nil {
		return nil, err
	}
	if !hasUUID && !isFieldsEntry(values, prefix) {
		return unmarshalForeign(values)
	}
	msg, err := decodeMessage(values, uuid)
	if err != nil {
		return nil, err
	}
	for name, raw := range values {
		key, ok := metadataKey(name, prefix)
		if !ok {
			continue
		}
		s, ok := raw.(string)
		if !ok {
			return nil, fmt.Errorf("field %s is %T, not a string", name, raw)
		}
		msg.Metadata[key] = s
	}
	return msg, nil
}

// metadataKey is the metadata key a field holds, if it holds one.
func metadataKey(name, prefix string) (string, bool) {
	if isReservedField(name) || !strings.HasPrefix(name, prefix) {
		return "", false
	}
	return name[len(prefix):], true
}

// isFieldsEntry reports whether an entry without a UUID is nevertheless a
// message in the fields format: a payload field and otherwise only reserved
// or metadata fields, so that nothing of it would be lost.
func isFieldsEntry(values map[string]interface{}, prefix string) bool {
	if _, ok := values[PayloadField]; !ok {
		return false
	}
	for name := range values {
		if _, ok := metadataKey(name, prefix); !ok && !isReservedField(name) {
			return false
		}
	}
	return true
}
