package main

import (
	"fmt"
	"io"
	"math"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/report"
)

// target is one goal the report checks against its medians.
type target struct {
	Figure     string // the cell, e.g. "publish, 64 publishers, 16 B"
	Goal       string // e.g. "default ≥ 85% of PlainXAdd"
	Measured   string // what the run gave, or why it gave nothing
	Met        bool
	Measurable bool // the run measured what the goal needs
}

// retrySafeRow is the publish row of the retry-safe goal: 64 goroutines,
// 16 B, one message per Publish call.
var retrySafeRow = fmt.Sprintf("%s, 64 publishers", report.SizeLabel(16))

// retrySafeMin is the goal of retry-safe publishing by default: it may
// cost at most 15% of PlainXAdd's throughput.
const retrySafeMin = 0.85

// targets checks the goals against the medians of the run.
func (r *figures) targets() []target {
	return []target{publishTarget(r.publish)}
}

// publishTarget checks that default (retry-safe) publishing keeps at least
// retrySafeMin of PlainXAdd's throughput in retrySafeRow.
func publishTarget(t *report.Table) target {
	tg := target{
		Figure: "publish, 64 publishers, 16 B, one message per call",
		Goal:   fmt.Sprintf("default (retry-safe) ≥ %.0f%% of PlainXAdd", 100*retrySafeMin),
	}
	def, plain := t.Median(retrySafeRow, harness.Millrace), t.Median(retrySafeRow, harness.MillracePlain)
	if math.IsNaN(def) || math.IsNaN(plain) || plain == 0 {
		tg.Measured = fmt.Sprintf("not measured (needs -sizes 16, -pubs 64 and -impls with %s and %s)", harness.Millrace, harness.MillracePlain)
		return tg
	}
	tg.Measurable = true
	tg.Met = def >= retrySafeMin*plain
	tg.Measured = fmt.Sprintf("%s (%s vs %s msg/s)", report.FormatRatio(def, plain, true), report.Rate(def), report.Rate(plain))
	return tg
}

// writeTargets prints the goals as a markdown table, each met or missed.
func writeTargets(w io.Writer, ts []target) {
	fmt.Fprintln(w, "| Target | Goal | Measured | |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, t := range ts {
		verdict := "–"
		switch {
		case t.Measurable && t.Met:
			verdict = "met"
		case t.Measurable:
			verdict = "missed"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.Figure, t.Goal, t.Measured, verdict)
	}
	fmt.Fprintln(w)
}
