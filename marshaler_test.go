package millrace_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/millrace/millrace"
)

// asRedisReturnsIt converts the values of a Marshal result to what go-redis
// hands back after a round trip through Redis: every value a string.
func asRedisReturnsIt(t testing.TB, fields map[string]interface{}) map[string]interface{} {
	t.Helper()
	out := make(map[string]interface{}, len(fields))
	for k, v := range fields {
		switch v := v.(type) {
		case string:
			out[k] = v
		case []byte:
			out[k] = string(v)
		default:
			t.Fatalf("field %s has type %T, which Redis would not return as is", k, v)
		}
	}
	return out
}

// sameMetadata compares metadata, treating nil and empty alike.
func sameMetadata(a, b message.Metadata) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return maps.Equal(a, b)
}

func TestDefaultMarshaler_RoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		uuid     string
		payload  []byte
		metadata message.Metadata
	}{
		{name: "text", uuid: watermill.NewUUID(), payload: []byte(`{"order":42}`), metadata: message.Metadata{"trace": "abc", "k": "v"}},
		{name: "binary payload", uuid: watermill.NewUUID(), payload: []byte{0x00, 0xff, 0xc0, '\n', 0x80, 0x00}, metadata: message.Metadata{"bin": "\x00\xff"}},
		{name: "empty payload", uuid: watermill.NewUUID(), payload: []byte{}},
		{name: "nil payload", uuid: watermill.NewUUID(), payload: nil},
		{name: "empty metadata", uuid: watermill.NewUUID(), payload: []byte("p"), metadata: message.Metadata{}},
		{name: "nil metadata", uuid: watermill.NewUUID(), payload: []byte("p"), metadata: nil},
		{name: "empty metadata value", uuid: "u", payload: []byte("p"), metadata: message.Metadata{"empty": ""}},
		{name: "unicode", uuid: "ünïcödé-✓", payload: []byte("żółć"), metadata: message.Metadata{"ключ": "значение"}},
		{name: "many metadata keys", uuid: watermill.NewUUID(), payload: []byte("p"), metadata: func() message.Metadata {
			md := message.Metadata{}
			for i := range 100 {
				md[fmt.Sprintf("key-%d", i)] = strings.Repeat("v", i)
			}
			return md
		}()},
	}
	m := millrace.DefaultMarshaler{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := message.NewMessage(tc.uuid, tc.payload)
			in.Metadata = tc.metadata
			fields, err := m.Marshal("topic", in)
			require.NoError(t, err)

			out, err := m.Unmarshal(asRedisReturnsIt(t, fields))
			require.NoError(t, err)
			assert.Equal(t, tc.uuid, out.UUID)
			assert.True(t, bytes.Equal(tc.payload, out.Payload), "payload %q != %q", out.Payload, tc.payload)
			assert.True(t, sameMetadata(tc.metadata, out.Metadata), "metadata %v != %v", out.Metadata, tc.metadata)
			assert.NotNil(t, out.Metadata, "decoded messages always have a metadata map")
			assert.Empty(t, out.Metadata.Get(millrace.MetadataForeign))
		})
	}
}

// The entry layout is watermill-redisstream's, so both adapters share streams.
func TestDefaultMarshaler_WireFormat(t *testing.T) {
	m := millrace.DefaultMarshaler{}

	t.Run("fields", func(t *testing.T) {
		msg := message.NewMessage("uuid-1", []byte("hello"))
		msg.Metadata.Set("k", "v")
		fields, err := m.Marshal("topic", msg)
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"_watermill_message_uuid", "payload", "metadata"}, slices.Collect(maps.Keys(fields)))
		assert.Equal(t, millrace.UUIDField, "_watermill_message_uuid")
		assert.Equal(t, millrace.PayloadField, "payload")
		assert.Equal(t, millrace.MetadataField, "metadata")

		assert.Equal(t, "uuid-1", fields["_watermill_message_uuid"])
		assert.Equal(t, []byte("hello"), fields["payload"])
		// msgpack fixmap of 1: fixstr "k" -> fixstr "v".
		assert.Equal(t, []byte{0x81, 0xa1, 'k', 0xa1, 'v'}, fields["metadata"])
	})

	t.Run("metadata is a msgpack map[string]string", func(t *testing.T) {
		msg := message.NewMessage("u", nil)
		msg.Metadata = message.Metadata{"a": "1", "bb": "22", "ccc": strings.Repeat("x", 300)}
		fields, err := m.Marshal("topic", msg)
		require.NoError(t, err)
		raw, ok := fields["metadata"].([]byte)
		require.True(t, ok, "metadata is %T", fields["metadata"])
		var decoded map[string]string
		require.NoError(t, msgpack.Unmarshal(raw, &decoded))
		assert.Equal(t, map[string]string(msg.Metadata), decoded)
	})

	for name, md := range map[string]message.Metadata{"nil": nil, "empty": {}} {
		t.Run(name+" metadata is msgpack nil", func(t *testing.T) {
			msg := message.NewMessage("u", []byte("p"))
			msg.Metadata = md
			fields, err := m.Marshal("topic", msg)
			require.NoError(t, err)
			assert.Equal(t, []byte{0xc0}, fields["metadata"])
		})
	}

	t.Run("reads what watermill-redisstream writes", func(t *testing.T) {
		// watermill-redisstream's DefaultMarshallerUnmarshaller: msgpack.Marshal(msg.Metadata).
		md := message.Metadata{"x-trace": "t1", "name": "n"}
		b, err := msgpack.Marshal(md)
		require.NoError(t, err)
		out, err := m.Unmarshal(map[string]interface{}{
			"_watermill_message_uuid": "legacy-uuid",
			"payload":                 "legacy payload",
			"metadata":                string(b),
		})
		require.NoError(t, err)
		assert.Equal(t, "legacy-uuid", out.UUID)
		assert.Equal(t, "legacy payload", string(out.Payload))
		assert.Equal(t, md, out.Metadata)
	})

	t.Run("uuid only", func(t *testing.T) {
		out, err := m.Unmarshal(map[string]interface{}{"_watermill_message_uuid": "only"})
		require.NoError(t, err)
		assert.Equal(t, "only", out.UUID)
		assert.Empty(t, out.Payload)
		assert.Empty(t, out.Metadata)
	})
}

func TestDefaultMarshaler_ForeignEntry(t *testing.T) {
	m := millrace.DefaultMarshaler{}
	cases := []struct {
		name   string
		values map[string]interface{}
		json   string
	}{
		{name: "redis-cli fields", values: map[string]interface{}{"user_id": "1001", "item": "iPhone 15"}, json: `{"user_id":"1001","item":"iPhone 15"}`},
		{name: "payload and metadata but no uuid", values: map[string]interface{}{"payload": "p", "metadata": "garbage"}, json: `{"payload":"p","metadata":"garbage"}`},
		{name: "no fields", values: map[string]interface{}{}, json: `{}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := m.Unmarshal(tc.values)
			require.NoError(t, err)
			assert.JSONEq(t, tc.json, string(out.Payload))
			assert.Equal(t, "true", out.Metadata.Get(millrace.MetadataForeign))
			assert.Empty(t, out.UUID, "foreign entries get the entry ID as UUID from the subscriber")
		})
	}
}

func TestDefaultMarshaler_Errors(t *testing.T) {
	m := millrace.DefaultMarshaler{}
	valid := func(overrides map[string]interface{}) map[string]interface{} {
		v := map[string]interface{}{"_watermill_message_uuid": "u", "payload": "p", "metadata": "\xc0"}
		for k, x := range overrides {
			v[k] = x
		}
		return v
	}
	cases := map[string]map[string]interface{}{
		"uuid is an int":          valid(map[string]interface{}{"_watermill_message_uuid": int64(5)}),
		"uuid is nil":             valid(map[string]interface{}{"_watermill_message_uuid": nil}),
		"payload is an int":       valid(map[string]interface{}{"payload": int64(5)}),
		"payload is a slice":      valid(map[string]interface{}{"payload": []interface{}{"a"}}),
		"metadata is an int":      valid(map[string]interface{}{"metadata": int64(5)}),
		"metadata is nil":         valid(map[string]interface{}{"metadata": nil}),
		"metadata garbage":        valid(map[string]interface{}{"metadata": "garbage"}),
		"metadata truncated map":  valid(map[string]interface{}{"metadata": "\x82\xa1k\xa1v"}),
		"metadata map header":     valid(map[string]interface{}{"metadata": "\x81"}),
		"metadata int values":     valid(map[string]interface{}{"metadata": mustMsgpack(t, map[string]int{"k": 1})}),
		"metadata is an array":    valid(map[string]interface{}{"metadata": mustMsgpack(t, []string{"a", "b"})}),
		"metadata is a string":    valid(map[string]interface{}{"metadata": mustMsgpack(t, "just a string")}),
		"metadata huge map claim": valid(map[string]interface{}{"metadata": "\xdf\xff\xff\xff\xff"}),
	}
	for name, values := range cases {
		t.Run(name, func(t *testing.T) {
			msg, err := m.Unmarshal(values)
			require.Error(t, err)
			assert.Nil(t, msg)
		})
	}
}

func mustMsgpack(t testing.TB, v any) string {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// Through a real Redis: what Publish writes, go-redis reads back as strings
// that the marshaler decodes to the same message.
func TestDefaultMarshaler_ThroughRedis(t *testing.T) {
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	in := message.NewMessage(watermill.NewUUID(), []byte{0, 1, 2, 0xff, 0xc0})
	in.Metadata.Set("k", "v")
	empty := message.NewMessage(watermill.NewUUID(), nil)
	require.NoError(t, pub.Publish(topic, in, empty))

	got := entries(t, e.client, topic)
	require.Len(t, got, 2)
	for _, entry := range got {
		for field, v := range entry.Values {
			assert.IsType(t, "", v, "field %s", field)
		}
	}
	out := decode(t, got[0].Values)
	assert.Equal(t, in.UUID, out.UUID)
	assert.Equal(t, []byte(in.Payload), []byte(out.Payload))
	assert.Equal(t, in.Metadata, out.Metadata)
	assert.Equal(t, "\xc0", got[1].Values["metadata"])
	out = decode(t, got[1].Values)
	assert.Equal(t, empty.UUID, out.UUID)
	assert.Empty(t, out.Payload)
	assert.Empty(t, out.Metadata)

	// The same bytes with a raw XADD, as watermill-redisstream writes them.
	require.NoError(t, e.client.XAdd(context.Background(), &redis.XAddArgs{Stream: topic, Values: map[string]interface{}{
		"_watermill_message_uuid": "raw", "payload": "raw payload", "metadata": mustMsgpack(t, map[string]string{"a": "b"}),
	}}).Err())
	got = entries(t, e.client, topic)
	out = decode(t, got[2].Values)
	assert.Equal(t, "raw", out.UUID)
	assert.Equal(t, message.Metadata{"a": "b"}, out.Metadata)
}

func benchMessage() *message.Message {
	msg := message.NewMessage(watermill.NewUUID(), bytes.Repeat([]byte("x"), 1024))
	msg.Metadata.Set("trace_id", watermill.NewUUID())
	msg.Metadata.Set("name", "order_created")
	msg.Metadata.Set("correlation_id", watermill.NewShortUUID())
	return msg
}

func BenchmarkDefaultMarshaler_Marshal(b *testing.B) {
	m := millrace.DefaultMarshaler{}
	msg := benchMessage()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg.Payload)))
	for b.Loop() {
		if _, err := m.Marshal("topic", msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDefaultMarshaler_Unmarshal(b *testing.B) {
	m := millrace.DefaultMarshaler{}
	fields, err := m.Marshal("topic", benchMessage())
	if err != nil {
		b.Fatal(err)
	}
	values := asRedisReturnsIt(b, fields)
	b.ReportAllocs()
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := m.Unmarshal(values); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDefaultMarshalerUnmarshal feeds arbitrary entries to Unmarshal, which
// must never panic, and checks that whatever it accepts survives a
// Marshal/Unmarshal round trip unchanged.
func FuzzDefaultMarshalerUnmarshal(f *testing.F) {
	seed := func(uuid, payload, metadata string, present uint8) { f.Add(uuid, payload, metadata, present) }
	const all = 0b111
	seed("u", "payload", "\xc0", all)
	seed("u", "", "", all)
	seed("u", "p", "\x81\xa1k\xa1v", all)
	seed("u", "p", "\x80", all)
	seed("u", "p", "garbage", all)
	seed("u", "p", "\x81", all)
	seed("u", "p", "\xdf\xff\xff\xff\xff", all)
	seed("u", "p", "\xdb\xff\xff\xff\xff", all)
	seed("u", "p", "\x81\xa1k\xdb\x7f\xff\xff\xff", all)
	seed("u", "p", "\x91\xa1a", all)
	seed("", "\x00\xff", "\x81\xa1k\xc0", all)
	seed("u", "p", "", 0b001)             // uuid only
	seed("", "p", "\xc0", 0b110)          // no uuid: foreign
	seed("", "", "", 0)                   // no fields at all
	seed("x", "\xff\xfe", "\xa1k", 0b101) // no payload, bad metadata
	m := millrace.DefaultMarshaler{}
	f.Fuzz(func(t *testing.T, uuid, payload, metadata string, present uint8) {
		values := map[string]interface{}{}
		if present&0b001 != 0 {
			values[millrace.UUIDField] = uuid
		}
		if present&0b010 != 0 {
			values[millrace.PayloadField] = payload
		}
		if present&0b100 != 0 {
			values[millrace.MetadataField] = metadata
		}
		msg, err := m.Unmarshal(values)
		if err != nil {
			if msg != nil {
				t.Fatalf("error %v with a non-nil message", err)
			}
			return
		}
		if msg == nil {
			t.Fatal("nil message without an error")
		}
		if present&0b001 == 0 {
			if msg.Metadata.Get(millrace.MetadataForeign) != "true" {
				t.Fatalf("entry without a UUID field not marked foreign: %v", msg.Metadata)
			}
		} else if msg.UUID != uuid {
			t.Fatalf("UUID %q, want %q", msg.UUID, uuid)
		}
		fields, err := m.Marshal("topic", msg)
		if err != nil {
			t.Fatalf("cannot marshal a message Unmarshal accepted: %v", err)
		}
		again, err := m.Unmarshal(asRedisReturnsIt(t, fields))
		if err != nil {
			t.Fatalf("cannot unmarshal what Marshal wrote: %v", err)
		}
		if again.UUID != msg.UUID || !bytes.Equal(again.Payload, msg.Payload) || !sameMetadata(again.Metadata, msg.Metadata) {
			t.Fatalf("round trip changed the message: %q %q %v -> %q %q %v",
				msg.UUID, msg.Payload, msg.Metadata, again.UUID, again.Payload, again.Metadata)
		}
	})
}
