package millrace_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/millrace/millrace"
)

func TestAuxKeys(t *testing.T) {
	t.Parallel()
	cases := []struct{ topic, dlq, delayed string }{
		{"orders", "{orders}:dlq", "{orders}:delayed"},
		{"a{b}c", "a{b}c:dlq", "a{b}c:delayed"},
		{"{orders}", "{orders}:dlq", "{orders}:delayed"},
		{"svc:orders", "{svc:orders}:dlq", "{svc:orders}:delayed"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.dlq, millrace.DeadLetterTopic(tc.topic), "DeadLetterTopic(%q)", tc.topic)
		assert.Equal(t, tc.delayed, millrace.DelayedKey(tc.topic), "DelayedKey(%q)", tc.topic)
	}
}
