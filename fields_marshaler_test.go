package millrace_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// redisCLI runs redis-cli against srv and returns its output, one reply
// element per line (redis-cli prints raw replies when not on a terminal).
func redisCLI(t *testing.T, srv *redistest.Server, args ...string) string {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	require.NoError(t, err, "redis-cli not found: apt-get install redis-tools")
	out, err := exec.Command(cli, append([]string{"-u", srv.URL()}, args...)...).CombinedOutput()
	require.NoError(t, err, "redis-cli %v: %s", args, out)
	return string(out)
}

// asStored turns marshaled fields into what XRANGE returns: strings.
func asStored(t *testing.T, fields map[string]interface{}) map[string]interface{} {
	t.Helper()
	out := make(map[string]interface{}, len(fields))
	for k, v := range fields {
		switch v := v.(type) {
		case string:
			out[k] = v
		case []byte:
			out[k] = string(v)
		default:
			t.Fatalf("field %s is %T", k, v)
		}
	}
	return out
}

func TestFieldsMarshaler_RoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []millrace.FieldsMarshaler{{}, {MetadataPrefix: "meta."}, {NoPrefix: true}} {
		msg := message.NewMessage(watermill.NewUUID(), []byte("\x00binary\npayload:3:"))
		msg.Metadata.Set("trace_id", "4bf92f3577b34da6")
		msg.Metadata.Set("", "empty key")
		msg.Metadata.Set("unicode", "ünïcödé")
		fields, err := m.Marshal("topic", msg)
		require.NoError(t, err)
		got, err := m.Unmarshal(asStored(t, fields))
		require.NoError(t, err)
		assert.Equal(t, msg.UUID, got.UUID)
		assert.Equal(t, msg.Payload, got.Payload)
		assert.Equal(t, msg.Metadata, got.Metadata)
	}
}

func TestFieldsMarshaler_WireFormat(t *testing.T) {
	t.Parallel()
	msg := message.NewMessage("uuid-1", []byte(`{"order_id":42}`))
	msg.Metadata.Set("trace_id", "abc")
	fields, err := millrace.FieldsMarshaler{}.Marshal("orders", msg)
	require.NoError(t, err)
	assert.Equal(t, map[string]interface{}{
		"_watermill_message_uuid": "uuid-1",
		"payload":                 `{"order_id":42}`,
		"md:trace_id":             "abc",
	}, asStored(t, fields))

	// Readers of the default format get the UUID and the payload.
	got, err := millrace.DefaultMarshaler{}.Unmarshal(asStored(t, fields))
	require.NoError(t, err)
	assert.Equal(t, "uuid-1", got.UUID)
	assert.Equal(t, `{"order_id":42}`, string(got.Payload))
}

func TestFieldsMarshaler_ReservedKeys(t *testing.T) {
	t.Parallel()
	collide := func(m millrace.FieldsMarshaler, key string) error {
		msg := message.NewMessage(watermill.NewUUID(), nil)
		msg.Metadata.Set(key, "x")
		_, err := m.Marshal("t", msg)
		return err
	}
	for _, key := range []string{"payload", "metadata", "_watermill_message_uuid"} {
		err := collide(millrace.FieldsMarshaler{NoPrefix: true}, key)
		require.ErrorIs(t, err, millrace.ErrReservedField, key)
		assert.Contains(t, err.Error(), key)
	}
	// With a prefix no key collides.
	for _, key := range []string{"payload", "metadata", "_watermill_message_uuid"} {
		require.NoError(t, collide(millrace.FieldsMarshaler{MetadataPrefix: "x-"}, key))
	}
	for _, key := range []string{"payload", "metadata", "_watermill_message_uuid"} {
		require.NoError(t, collide(millrace.FieldsMarshaler{}, key))
	}
	// A prefix of a reserved name would make reading ambiguous.
	for _, prefix := range []string{"pay", "_watermill_", "meta"} {
		err := collide(millrace.FieldsMarshaler{MetadataPrefix: prefix}, "k")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "MetadataPrefix")
	}
	_, err := millrace.FieldsMarshaler{MetadataPrefix: "_"}.Unmarshal(map[string]interface{}{"payload": "x"})
	require.Error(t, err)
}

func TestFieldsMarshaler_ReadsEveryFormat(t *testing.T) {
	t.Parallel()
	m := millrace.FieldsMarshaler{}

	// The default format, msgpack metadata included.
	msg := message.NewMessage("u1", []byte("p"))
	msg.Metadata.Set("k", "v")
	fields, err := millrace.DefaultMarshaler{}.Marshal("t", msg)
	require.NoError(t, err)
	got, err := m.Unmarshal(asStored(t, fields))
	require.NoError(t, err)
	assert.Equal(t, "u1", got.UUID)
	assert.Equal(t, message.Metadata{"k": "v"}, got.Metadata)

	// Prefixed fields win over the msgpack field; unknown fields are ignored.
	stored := asStored(t, fields)
	stored["md:k"] = "override"
	stored["other"] = "ignored"
	got, err = m.Unmarshal(stored)
	require.NoError(t, err)
	assert.Equal(t, message.Metadata{"k": "override"}, got.Metadata)

	// A payload and metadata fields without a UUID: a message with no UUID
	// (delivery gives it the entry ID).
	got, err = m.Unmarshal(map[string]interface{}{"payload": `{"id":1}`, "md:trace_id": "abc"})
	require.NoError(t, err)
	assert.Empty(t, got.UUID)
	assert.Equal(t, `{"id":1}`, string(got.Payload))
	assert.Equal(t, message.Metadata{"trace_id": "abc"}, got.Metadata)

	// Anything else is foreign: a JSON object of the fields.
	got, err = m.Unmarshal(map[string]interface{}{"payload": "x", "user_id": "1001"})
	require.NoError(t, err)
	assert.Equal(t, "true", got.Metadata.Get(millrace.MetadataForeign))
	assert.JSONEq(t, `{"payload":"x","user_id":"1001"}`, string(got.Payload))

	_, err = m.Unmarshal(map[string]interface{}{"_watermill_message_uuid": 1})
	require.Error(t, err)
	_, err = m.Unmarshal(map[string]interface{}{"_watermill_message_uuid": "u", "md:k": 1})
	require.Error(t, err)
	_, err = m.Unmarshal(map[string]interface{}{"_watermill_message_uuid": "u", "metadata": "\x81garbage"})
	require.Error(t, err)
}

// The example: an entry added with redis-cli is delivered as a JSON
// object of its fields, with either marshaler.
func TestRedisCLI_ForeignEntryDeliveredAsJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, um := range []millrace.Unmarshaler{millrace.DefaultMarshaler{}, millrace.FieldsMarshaler{}} {
		topic := newTopic()
		cfg := groupConfig("g")
		cfg.Unmarshaler = um
		ch := subscribe(t, e.subscriber(t, cfg), topic)

		id := strings.TrimSpace(redisCLI(t, e.srv, "XADD", topic, "*", "user_id", "1001", "item", "iPhone 15"))
		got := receive(t, ch)
		var payload map[string]string
		require.NoError(t, json.Unmarshal(got.Payload, &payload))
		assert.Equal(t, map[string]string{"user_id": "1001", "item": "iPhone 15"}, payload)
		assert.Equal(t, "true", got.Metadata.Get(millrace.MetadataForeign))
		assert.Equal(t, id, got.UUID, "a foreign entry's UUID is its entry ID")
		assert.Equal(t, id, got.Metadata.Get(millrace.MetadataEntryID))
		got.Ack()
	}
}

// Entries written with the FieldsMarshaler are readable in redis-cli, and
// entries a program in another language writes in that format are messages.
func TestRedisCLI_FieldsMarshaler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{Marshaler: millrace.FieldsMarshaler{}})
	cfg := groupConfig("g")
	cfg.Unmarshaler = millrace.FieldsMarshaler{}
	ch := subscribe(t, e.subscriber(t, cfg), topic)

	msg := message.NewMessage(watermill.NewUUID(), []byte(`{"order_id":42}`))
	msg.Metadata.Set("trace_id", "4bf92f3577b34da6")
	require.NoError(t, pub.Publish(topic, msg))

	out := redisCLI(t, e.srv, "XRANGE", topic, "-", "+")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 7, out) // ID, then three field-value pairs in key order
	assert.Equal(t, []string{
		"_watermill_message_uuid", msg.UUID,
		"md:trace_id", "4bf92f3577b34da6",
		"payload", `{"order_id":42}`,
	}, lines[1:])

	got := receive(t, ch)
	assert.Equal(t, msg.UUID, got.UUID)
	assert.Equal(t, msg.Payload, got.Payload)
	assert.Equal(t, "4bf92f3577b34da6", got.Metadata.Get("trace_id"))
	got.Ack()

	// Another language writes the same format, without msgpack or a UUID.
	id := strings.TrimSpace(redisCLI(t, e.srv, "XADD", topic, "*", "payload", `{"order_id":43}`, "md:trace_id", "abc"))
	got = receive(t, ch)
	assert.Equal(t, id, got.UUID)
	assert.Equal(t, `{"order_id":43}`, string(got.Payload))
	assert.Equal(t, "abc", got.Metadata.Get("trace_id"))
	assert.Empty(t, got.Metadata.Get(millrace.MetadataForeign))
	got.Ack()
}

// A delayed message keeps the Publisher's marshaler's format, binary payload
// included, through the delayed set.
func TestDelay_FieldsMarshalerAndBinaryPayload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{Marshaler: millrace.FieldsMarshaler{}})
	cfg := groupConfig("g")
	cfg.Unmarshaler = millrace.FieldsMarshaler{}
	ch := subscribe(t, e.subscriber(t, cfg), topic)

	payload := []byte("\x00\n12:colons:\n\xff\xfe binary")
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set("trace_id", "t-1")
	msg.Metadata.Set("multi\nline", "a:b\nc")
	delay.Message(msg, delay.For(300*time.Millisecond))
	require.NoError(t, pub.Publish(topic, msg))

	got := receive(t, ch)
	assert.Equal(t, msg.UUID, got.UUID)
	assert.Equal(t, payload, []byte(got.Payload))
	assert.Equal(t, "t-1", got.Metadata.Get("trace_id"))
	assert.Equal(t, "a:b\nc", got.Metadata.Get("multi\nline"))
	got.Ack()

	out := redisCLI(t, e.srv, "XRANGE", topic, "-", "+")
	assert.Contains(t, out, "md:trace_id\nt-1\n")
}
