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

// withAMQP adds the AMQP configurations to the tiny matrix: set in builds
// with -tags brokers (make bench-brokers), which have a RabbitMQ.
var withAMQP = false

// TestRunTinyMatrix runs every figure at a tiny size: Millrace on a durable
// Redis, and with -tags brokers the AMQP configurations too. It checks that
// the report and the chart have every figure and no failed run.
func TestRunTinyMatrix(t *testing.T) {
	impls := harness.Millrace
	if withAMQP {
		impls += "," + harness.AMQPDefault + "," + harness.AMQPTuned
	}
	dir := t.TempDir()
	out, svg := filepath.Join(dir, "report.md"), filepath.Join(dir, "chart.svg")
	opts, err := parseFlags([]string{
		"-impls", impls, "-n", "200", "-runs", "1", "-sizes", "16", "-pubs", "4", "-subs", "2",
		"-latency-duration", "100ms", "-backlog-n", "500", "-settle", "100ms", "-window", "200ms", "-startups", "2",
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
	want := []string{
		"| 16 B, 4 publishers | ", "| 16 B, 2 subscribers | ", "| p99.9 | ", "| broker CPU, ms/s | ",
		"| " + rowStartUp + " | ", "| " + rowRSSIdle + " | ", "| RSS holding 500 × 1 KB, MB | ", "Failed runs: 0.",
	}
	if strings.Contains(impls, harness.AMQPTuned) {
		want = append(want, "Millrace/AMQP tuned", "RabbitMQ/Redis")
	}
	for _, w := range want {
		if !strings.Contains(rep, w) {
			t.Errorf("report lacks %q:\n%s", w, rep)
		}
	}
	chart, err := os.ReadFile(svg)
	if err != nil || !strings.HasPrefix(string(chart), "<svg") || !strings.Contains(string(chart), "Publish, 16 B, 4 publishers") {
		t.Errorf("chart: %v\n%.300s", err, chart)
	}
}

func TestParseFlagsRejects(t *testing.T) {
	for _, args := range [][]string{{"-impls", "peer"}, {"-figures", "nope"}, {"-window", "0s"}, {"-startups", "0"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}
