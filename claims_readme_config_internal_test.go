package millrace

import (
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's SubscriberConfig and PublisherConfig tables state each
// field's default: every field is in its table, and every default stated
// there is the one setDefaults gives.
func TestClaims_READMEConfigDefaults(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	var sub SubscriberConfig
	sub.setDefaults()
	var pub PublisherConfig
	pub.setDefaults()

	// Cells that are not a plain value, checked one by one.
	special := map[string]func(t *testing.T, cell string){
		"SubscriberConfig.Consumer": func(t *testing.T, cell string) {
			assert.Contains(t, cell, "host-pid-uuid")
			assert.Regexp(t, `^.+-\d+-\w+$`, generatedConsumerName())
		},
		"SubscriberConfig.ClaimInterval": func(t *testing.T, cell string) {
			assert.Equal(t, "min(ClaimMinIdle/2, 5s)", cell)
			assert.Equal(t, min(sub.ClaimMinIdle/2, 5*time.Second), sub.ClaimInterval)
		},
		"SubscriberConfig.DeadLetterTopic": func(t *testing.T, cell string) {
			assert.Contains(t, cell, "`{topic}:dlq`")
			assert.Equal(t, "{topic}:dlq", sub.DeadLetterTopic("topic"))
		},
		"PublisherConfig.Retention": func(t *testing.T, cell string) {
			assert.Equal(t, "`{KeepUnacked: true, MaxAge: 1h, Ceiling: 1,000,000, Overflow: DropOldest}`", cell)
			assert.Equal(t, Retention{KeepUnacked: true, MaxAge: time.Hour}, pub.Retention)
			assert.EqualValues(t, 1_000_000, pub.Retention.ceiling())
			assert.Equal(t, DropOldest, pub.Retention.Overflow)
		},
	}

	for _, table := range []struct {
		heading string
		config  reflect.Value
	}{
		{"### SubscriberConfig", reflect.ValueOf(sub)},
		{"### PublisherConfig", reflect.ValueOf(pub)},
	} {
		rows := tableRows(t, string(readme), table.heading)
		typ := table.config.Type()
		seen := map[string]bool{}
		for _, row := range rows {
			names := backticked(row[0])
			defaults := strings.Split(row[1], ", ")
			if len(names) == 1 || len(defaults) == 1 { // one default for all the row's fields
				defaults = slices.Repeat([]string{row[1]}, len(names))
			}
			require.Len(t, defaults, len(names), "%s: one default per field in %q", table.heading, row[1])
			for i, name := range names {
				key := typ.Name() + "." + name
				field := table.config.FieldByName(name)
				require.True(t, field.IsValid(), "the README names %s, which does not exist", key)
				seen[name] = true
				t.Run(key, func(t *testing.T) {
					if check, ok := special[key]; ok {
						check(t, defaults[i])
						return
					}
					assertREADMEDefault(t, defaults[i], field)
				})
			}
		}
		for i := range typ.NumField() {
			assert.True(t, seen[typ.Field(i).Name], "%s.%s is not in the README's table", typ.Name(), typ.Field(i).Name)
		}
	}
}

// assertREADMEDefault compares a plain default cell with the field's value.
func assertREADMEDefault(t *testing.T, cell string, got reflect.Value) {
	t.Helper()
	value, _, _ := strings.Cut(cell, " (")
	value = strings.Trim(value, "`")
	switch value {
	case `""`, "none", "off", "false":
		assert.True(t, got.IsZero(), "documented %q, got %v", cell, got)
		return
	case `"0"`:
		assert.Equal(t, "0", got.String())
		return
	case "DefaultMarshaler{}":
		assert.Equal(t, reflect.TypeOf(DefaultMarshaler{}), got.Elem().Type(), "documented %q", cell)
		return
	}
	if got.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(value)
		require.NoError(t, err, "cell %q", cell)
		assert.Equal(t, d, time.Duration(got.Int()), "documented %q", cell)
		return
	}
	n, err := strconv.ParseInt(value, 10, 64)
	require.NoError(t, err, "cell %q is neither a duration nor a number", cell)
	assert.Equal(t, n, got.Int(), "documented %q", cell)
}

// tableRows returns the cells of the table under heading, header excluded.
func tableRows(t *testing.T, doc, heading string) [][]string {
	t.Helper()
	_, after, ok := strings.Cut(doc, "\n"+heading+"\n")
	require.True(t, ok, "no %q in the README", heading)
	var rows [][]string
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	require.Greater(t, len(rows), 2, "table under %q", heading)
	return rows[2:] // header and separator
}

// backticked returns the `names` in a cell.
func backticked(cell string) []string {
	var names []string
	for {
		_, rest, ok := strings.Cut(cell, "`")
		if !ok {
			return names
		}
		name, after, ok := strings.Cut(rest, "`")
		if !ok {
			return names
		}
		names = append(names, name)
		cell = after
	}
}
