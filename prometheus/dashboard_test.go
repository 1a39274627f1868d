package prometheus_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	millraceprom "github.com/millrace/millrace/prometheus"
)

// The Grafana dashboard of docs/ queries only metrics the collector serves.
func TestGrafanaDashboard_QueriesServedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../docs/grafana/millrace.json")
	require.NoError(t, err)
	var dashboard any
	require.NoError(t, json.Unmarshal(raw, &dashboard))

	// Every query: panels' "expr" and the variables' "query"/"definition".
	var queries []string
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				walk(child, k)
			}
		case []any:
			for _, child := range v {
				walk(child, key)
			}
		case string:
			if key == "expr" || key == "definition" || (key == "query" && v != "prometheus") {
				queries = append(queries, v)
			}
		}
	}
	walk(dashboard, "")
	require.GreaterOrEqual(t, len(queries), 15, "the dashboard's queries")

	served := servedMetrics(t)
	metric := regexp.MustCompile(`\bmillrace_[a-zA-Z0-9_:]+`)
	used := map[string]bool{}
	for _, q := range queries {
		names := metric.FindAllString(q, -1)
		assert.NotEmpty(t, names, "a query without a millrace metric: %s", q)
		for _, n := range names {
			assert.Contains(t, served, n, "query %q", q)
			used[n] = true
		}
	}
	// The figures the dashboard is for are all on it.
	for _, n := range []string{
		"millrace_group_lag", "millrace_group_pending", "millrace_group_oldest_pending_age_seconds",
		"millrace_dead_letters", "millrace_stream_entries_added_total", "millrace_group_entries_read_total",
	} {
		assert.True(t, used[n], "%s is on no panel", n)
	}
}

// servedMetrics are the names of every metric the collector describes.
func servedMetrics(t *testing.T) []string {
	t.Helper()
	ch := make(chan *prom.Desc, 64)
	millraceprom.NewCollector(nil, millraceprom.Config{PerConsumer: true}).Describe(ch)
	close(ch)
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		require.NotNil(t, m, d.String())
		names = append(names, m[1])
	}
	slices.Sort(names)
	return names
}
