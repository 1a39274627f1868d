package benchmarks

import (
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/benchmarks/internal/harness"
)

// marshaler is what both adapters' default marshalers implement.
type marshaler interface {
	Marshal(topic string, msg *message.Message) (map[string]any, error)
	Unmarshal(values map[string]any) (*message.Message, error)
}

var marshalers = []struct {
	name string
	m    marshaler
}{
	{harness.Millrace, millrace.DefaultMarshaler{}},
	{harness.Peer, redisstream.DefaultMarshallerUnmarshaller{}},
}

// benchMessage is a message with a ULID, a payload and two metadata entries.
func benchMessage(size int) *message.Message {
	msg := message.NewMessage("01JDQ4Z8K6Y3V9X2N5R7T0W1AB", harness.Payload(size))
	msg.Metadata.Set("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
	msg.Metadata.Set("name", "order_placed")
	return msg
}

// asRead turns Marshal's fields into what go-redis returns from a read:
// every value a string.
func asRead(values map[string]any) map[string]any {
	out := make(map[string]any, len(values))
	for k, v := range values {
		switch v := v.(type) {
		case []byte:
			out[k] = string(v)
		case string:
			out[k] = v
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// BenchmarkMarshal encodes one message into stream entry fields.
func BenchmarkMarshal(b *testing.B) {
	for _, m := range marshalers {
		for _, size := range []int{16, 1024} {
			b.Run(fmt.Sprintf("%s/%dB", m.name, size), func(b *testing.B) {
				msg := benchMessage(size)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.m.Marshal("topic", msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkUnmarshal decodes the fields of one entry as go-redis returns them.
func BenchmarkUnmarshal(b *testing.B) {
	for _, m := range marshalers {
		for _, size := range []int{16, 1024} {
			b.Run(fmt.Sprintf("%s/%dB", m.name, size), func(b *testing.B) {
				values, err := m.m.Marshal("topic", benchMessage(size))
				if err != nil {
					b.Fatal(err)
				}
				read := asRead(values)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.m.Unmarshal(read); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
