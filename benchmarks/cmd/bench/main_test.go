package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/millrace/millrace/benchmarks/internal/harness"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunTinyMatrix runs every figure but peak RSS (whose child re-executes
// this binary) at a tiny size against a redis-server of its own, and checks
// that the report has every table and no failed run.
func TestRunTinyMatrix(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report.md")
	svg := filepath.Join(t.TempDir(), "chart.svg")
	opts, err := parseFlags([]string{
		"-n", "300", "-runs", "1", "-sizes", "16", "-pubs", "4", "-subs", "1,2",
		"-figures", "publish,consume,busy,latency,idle,delay",
		"-latency-duration", "100ms", "-topics", "1,3", "-idle-duration", "500ms", "-idle-settle", "100ms",
		"-busy-topics", "3", "-delays", "100ms", "-delay-topics", "2", "-delay-idle", "100ms", "-delay-spread", "100ms",
		"-out", out, "-svg", svg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rep := string(b)
	for _, want := range []string{
		"| 16 B, 4 publishers |", "| 16 B, 1 subscriber |", "GoChannel (Router ceiling)", "Millrace, no Router",
		"| 16 B, 3 busy topics, 1 subscriber |", "| p99.9 |", "| 3 topics, a Subscriber and group per topic |",
		"Idle: Redis connections held", "| delay 100ms, idle topics | 2 |", "Failed runs: 0.",
		"Millrace PlainXAdd", "Millrace default (retry-safe)", "Millrace Idempotency 10m", "default, % of plain",
		"Idempotency, % of plain", "Server CPU (redis-server), µs/msg", "| publish 16 B, 4 publishers |",
		"default (retry-safe) ≥ 85% of PlainXAdd | not measured",
		// Every goal has its row, measured or not.
		"| server CPU, consume 16 B, 1 subscriber | default ≤ 1.25× raw's µs/msg |",
		"| consume, 16 B, 1 subscriber | Millrace ≥ GoChannel through the same Router |",
		"| latency p99 | Millrace ≤ the peer |", "| delay 100ms, idle topics | ≤ 250ms late at p99 |",
		"| peak RSS draining the backlog | Millrace ≤ 32 MB | not measured", "| idle, 1000 topics, one Subscriber | ≤ 10 Redis commands/s | not measured",
		"| default ≥ 5× the peer | not measured",
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
	chart, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "redis-server CPU", "Publish, 16 B, 4 publishers", "Consume, 16 B, 1 subscriber", "p99.9", "3 topics, one Subscriber", "GoChannel (Router ceiling)"} {
		if !strings.Contains(string(chart), want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if strings.Contains(string(chart), "· ") {
		t.Error("chart has the per-command idle rows")
	}
}

func TestParseFlagsRejects(t *testing.T) {
	for _, args := range [][]string{
		{"-impls", "nope"}, {"-figures", "nope"}, {"-delays", "-1s"}, {"-topics", "0"}, {"-idle-runs", "0"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

// TestPublishTarget checks the retry-safe goal against medians: met at
// 85% of PlainXAdd, missed below, unmeasured without the row.
func TestPublishTarget(t *testing.T) {
	for _, c := range []struct {
		def, plain float64
		want       string
	}{
		{85_000, 100_000, "| 85% (85,000 vs 100,000 msg/s) | met |"},
		{84_000, 100_000, "| 84% (84,000 vs 100,000 msg/s) | missed |"},
		{0, 0, "| not measured"},
	} {
		tab := newFigures(options{}).publish
		if c.plain > 0 {
			tab.Add(retrySafeRow, harness.Millrace, c.def)
			tab.Add(retrySafeRow, harness.MillracePlain, c.plain)
		}
		var out strings.Builder
		writeTargets(&out, []target{publishTarget(tab)})
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("default %v, plain %v: got\n%s\nwant %q", c.def, c.plain, out.String(), c.want)
		}
	}
}
