package millrace

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/streams"
)

// The fields DefaultMarshaler appends for the publisher are Marshal's, in
// the order XADD gets them from any other marshaler.
func TestDefaultMarshaler_AppendFlatIsMarshal(t *testing.T) {
	for _, msg := range []*message.Message{
		message.NewMessage("uuid-1", []byte("payload")),
		message.NewMessage("", nil),
		{UUID: "uuid-2", Payload: []byte{0, 1, 2}, Metadata: message.Metadata{"k": "v", "": "empty"}},
	} {
		fields, err := DefaultMarshaler{}.Marshal("t", msg)
		require.NoError(t, err)
		flat, err := DefaultMarshaler{}.appendFlat([]interface{}{"prefix"}, msg)
		require.NoError(t, err)
		want := append([]interface{}{"prefix"}, streams.Flatten(fields)...)
		require.Len(t, flat, len(want))
		for i := range want {
			if i > 0 && want[i-1] == MetadataField { // msgpack writes a map in any order
				got, err := unmarshalMetadata(string(flat[i].([]byte)))
				require.NoError(t, err)
				md, err := unmarshalMetadata(string(want[i].([]byte)))
				require.NoError(t, err)
				assert.Equal(t, md, got)
				continue
			}
			assert.Equal(t, want[i], flat[i], "field %d", i)
		}
	}
}
