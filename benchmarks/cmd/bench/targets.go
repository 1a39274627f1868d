package main

import (
	"fmt"
	"io"
	"math"
	"time"

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

// Goals of the other targets.
const (
	publishVsPeerMin   = 5    // default ≥ 5× the peer in retrySafeRow
	publishVsRawMin    = 0.5  // default ≥ 50% of raw in retrySafeRow
	publishCPUMax      = 3.5  // client CPU, µs/msg, default in retrySafeRow
	serverVsRawMax     = 1.25 // redis-server CPU per message, any row, against raw's
	latencyPercentile  = 99   // Millrace's latency ≤ the peer's at this percentile
	delayLateMax       = 250 * time.Millisecond
	delayPercentile    = 99
	rssMaxMB           = 32
	idleCommandsPer100 = 3  // commands/s, one Subscriber on 100 topics
	idleCommandsPer1k  = 10 // and on 1,000
)

// targets checks the goals against the medians of the run. A goal whose
// figure was not measured is listed as such.
func (r *figures) targets() []target {
	ts := []target{publishTarget(r.publish)}
	ts = append(ts,
		compare("publish, 64 publishers, 16 B", fmt.Sprintf("default ≥ %d× the peer", publishVsPeerMin),
			r.publish, retrySafeRow, harness.Millrace, harness.Peer, publishVsPeerMin, false),
		compare("publish, 64 publishers, 16 B", fmt.Sprintf("default ≥ %.0f%% of raw", 100*publishVsRawMin),
			r.publish, retrySafeRow, harness.Millrace, harness.Raw, publishVsRawMin, true),
		atMost("publish, 64 publishers, 16 B", fmt.Sprintf("default ≤ %.1f µs of client CPU per message", publishCPUMax),
			r.cpu, "publish "+retrySafeRow, harness.Millrace, publishCPUMax, "%.1f µs"),
	)
	for _, row := range r.serverCPU.Rows() {
		for _, impl := range []string{harness.Millrace, harness.MillraceIdempotent} {
			if math.IsNaN(r.serverCPU.Median(row, impl)) {
				continue
			}
			name := "default"
			if impl == harness.MillraceIdempotent {
				name = "Idempotency"
			}
			ts = append(ts, compareMax("server CPU, "+row, fmt.Sprintf("%s ≤ %.2f× raw's µs/msg", name, serverVsRawMax),
				r.serverCPU, row, impl, harness.Raw, serverVsRawMax))
		}
	}
	ts = append(ts,
		compare("consume, 16 B, 1 subscriber", "Millrace ≥ GoChannel through the same Router",
			r.consume, fmt.Sprintf("%s, 1 subscriber", report.SizeLabel(16)), harness.Millrace, harness.GoChannel, 1, true),
		compareMax(fmt.Sprintf("latency p%d", latencyPercentile), "Millrace ≤ the peer",
			r.latency, report.PercentileRow(latencyPercentile), harness.Millrace, harness.Peer, 1),
	)
	delays := r.delay.Rows()
	if len(delays) == 0 {
		ts = append(ts, target{Figure: "delayed messages", Goal: fmt.Sprintf("≤ %s late at p%d", delayLateMax, delayPercentile),
			Measured: "not measured (needs -figures delay)"})
	}
	for _, row := range delays {
		late := r.delay.P(row, delayPercentile)
		ts = append(ts, target{Figure: row, Goal: fmt.Sprintf("≤ %s late at p%d", delayLateMax, delayPercentile),
			Measured: fmt.Sprintf("p%d %s ms", delayPercentile, report.Millis(float64(late)/float64(time.Millisecond))), Met: late <= delayLateMax, Measurable: true})
	}
	// Looks slower than the window are not counted: the notes below the
	// report say which, and what they cost.
	idle := fmt.Sprintf("%%.2f/s over %s, without the looks slower than that (see the notes)", r.idleWindow)
	ts = append(ts,
		atMost("peak RSS draining the backlog", fmt.Sprintf("Millrace ≤ %d MB", rssMaxMB), r.rss, "peak RSS (VmHWM)", harness.Millrace, rssMaxMB, "%.1f MB"),
		atMost("idle, 100 topics, one Subscriber", fmt.Sprintf("≤ %d Redis commands/s", idleCommandsPer100),
			r.idleCommands, "100 topics, one Subscriber", harness.Millrace, idleCommandsPer100, idle),
		atMost("idle, 1000 topics, one Subscriber", fmt.Sprintf("≤ %d Redis commands/s", idleCommandsPer1k),
			r.idleCommands, "1000 topics, one Subscriber", harness.Millrace, idleCommandsPer1k, idle),
	)
	return ts
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

// compare checks that num's median is at least min × den's in row of t.
func compare(figure, goal string, t *report.Table, row, num, den string, min float64, percent bool) target {
	tg := target{Figure: figure, Goal: goal}
	a, b := t.Median(row, num), t.Median(row, den)
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		tg.Measured = fmt.Sprintf("not measured (row %q of %s and %s)", row, num, den)
		return tg
	}
	tg.Measurable, tg.Met = true, a >= min*b
	tg.Measured = fmt.Sprintf("%s (%s vs %s)", report.FormatRatio(a, b, percent), t.Format(a), t.Format(b))
	return tg
}

// compareMax checks that num's median is at most max × den's in row of t.
func compareMax(figure, goal string, t *report.Table, row, num, den string, max float64) target {
	tg := compare(figure, goal, t, row, num, den, 0, false)
	if tg.Measurable {
		tg.Met = t.Median(row, num) <= max*t.Median(row, den)
	}
	return tg
}

// atMost checks that impl's median in row of t is at most max.
func atMost(figure, goal string, t *report.Table, row, impl string, max float64, format string) target {
	tg := target{Figure: figure, Goal: goal}
	v := t.Median(row, impl)
	if math.IsNaN(v) {
		tg.Measured = fmt.Sprintf("not measured (row %q of %s)", row, impl)
		return tg
	}
	tg.Measurable, tg.Met, tg.Measured = true, v <= max, fmt.Sprintf(format, v)
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
