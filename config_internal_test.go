package millrace

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every field of the configs documents its default on a "Default: <value>"
// line, and that value is what setDefaults gives a zero config. Values are
// durations, numbers, booleans, zero composite literals (Retention{}) or
// the names below; the few defaults that are computed are checked by hand.
func TestDefaults_MatchDocumentation(t *testing.T) {
	docs := fieldDocs(t, "config.go")
	var pub PublisherConfig
	pub.setDefaults()
	var sub SubscriberConfig
	sub.setDefaults()
	named := map[string]any{"StartOldest": StartOldest}
	computed := map[string]func(t *testing.T){
		"SubscriberConfig.Consumer": func(t *testing.T) {
			s, err := NewSubscriber(nil, SubscriberConfig{ConsumerGroup: "g"}, nil)
			require.ErrorIs(t, err, ErrNilClient, "sanity: a client is needed")
			assert.Nil(t, s)
			assert.Regexp(t, `^.+-\d+-\w+$`, generatedConsumerName())
			assert.NotEqual(t, generatedConsumerName(), generatedConsumerName())
		},
		"SubscriberConfig.ClaimInterval": func(t *testing.T) {
			assert.Equal(t, 5*time.Second, sub.ClaimInterval, "ClaimMinIdle/2 = 15s, at most 5s")
			short := SubscriberConfig{ClaimMinIdle: 2 * time.Second}
			short.setDefaults()
			assert.Equal(t, time.Second, short.ClaimInterval)
		},
		"PublisherConfig.Retention": func(t *testing.T) {
			assert.Equal(t, Retention{KeepUnacked: true, MaxAge: time.Hour}, pub.Retention)
			assert.Equal(t, pub.Retention, PublisherConfig{TopicRetention: map[string]Retention{"t": {}}}.retention("t"))
		},
		"SubscriberConfig.DeadLetterTopic": func(t *testing.T) {
			assert.Equal(t, "{orders}:dlq", sub.DeadLetterTopic("orders"))
		},
	}
	for _, cfg := range []any{pub, sub} {
		v := reflect.ValueOf(cfg)
		for i := range v.NumField() {
			name := v.Type().Name() + "." + v.Type().Field(i).Name
			doc, ok := docs[name]
			require.True(t, ok, "%s has no doc comment", name)
			_, value, ok := strings.Cut(doc, "Default: ")
			require.True(t, ok, "%s: doc comment has no \"Default: \" line: %q", name, doc)
			if check, ok := computed[name]; ok {
				t.Run(name, check)
				continue
			}
			assertDocumented(t, name, literal(value), v.Field(i), named)
		}
	}
}

// literal is the documented value up to its first comma or final period.
func literal(value string) string {
	value, _, _ = strings.Cut(value, "\n")
	value, _, _ = strings.Cut(value, ",")
	return strings.TrimSuffix(strings.TrimSpace(value), ".")
}

func assertDocumented(t *testing.T, name, doc string, got reflect.Value, named map[string]any) {
	t.Helper()
	if v, ok := named[doc]; ok {
		assert.Equal(t, v, got.Interface(), "%s: documented %s", name, doc)
		return
	}
	if doc == "nil" {
		assert.True(t, got.IsNil(), "%s: documented nil, got %v", name, got)
		return
	}
	if typ, ok := strings.CutSuffix(doc, "{}"); ok {
		if got.Kind() == reflect.Interface {
			got = got.Elem()
		}
		require.True(t, got.IsValid(), "%s: documented %s, got nil", name, doc)
		assert.Equal(t, typ, got.Type().Name(), "%s: type", name)
		assert.True(t, got.IsZero(), "%s: documented %s, got %v", name, doc, got)
		return
	}
	switch got.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(doc)
		require.NoError(t, err, "%s: documented %q", name, doc)
		assert.Equal(t, d, got.Interface(), "%s: documented %s", name, doc)
	case int:
		n, err := strconv.Atoi(doc)
		require.NoError(t, err, "%s: documented %q", name, doc)
		assert.Equal(t, n, got.Interface(), "%s: documented %s", name, doc)
	case string:
		str, err := strconv.Unquote(doc)
		require.NoError(t, err, "%s: documented %q", name, doc)
		assert.Equal(t, str, got.Interface(), "%s: documented %s", name, doc)
	case bool:
		b, err := strconv.ParseBool(doc)
		require.NoError(t, err, "%s: documented %q", name, doc)
		assert.Equal(t, b, got.Interface(), "%s: documented %s", name, doc)
	default:
		t.Errorf("%s: cannot check documented default %q against %T", name, doc, got.Interface())
	}
}

// fieldDocs reads the doc comment of every field of every struct type in
// file, by "Type.Field".
func fieldDocs(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	require.NoError(t, err)
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, field := range st.Fields.List {
			for _, id := range field.Names {
				docs[ts.Name.Name+"."+id.Name] = field.Doc.Text()
			}
		}
		return false
	})
	return docs
}
