package prometheus_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docs/operating.md's metrics table lists exactly the metrics the collector
// serves: none missing, none that does not exist.
func TestClaims_OperatingDocListsEveryMetric(t *testing.T) {
	doc, err := os.ReadFile("../docs/operating.md")
	require.NoError(t, err)
	_, table, ok := strings.Cut(string(doc), "| metric | meaning |")
	require.True(t, ok, "docs/operating.md has no metrics table")
	name := regexp.MustCompile("`(millrace_[a-z_]+)`")
	var documented []string
	for _, line := range strings.Split(table, "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			documented = append(documented, m[1])
		}
	}
	slices.Sort(documented)
	served := servedMetrics(t)
	for _, n := range served {
		assert.Contains(t, documented, n, "served but not in docs/operating.md's table")
	}
	for _, n := range documented {
		assert.Contains(t, served, n, "in docs/operating.md's table but not served")
	}
}
