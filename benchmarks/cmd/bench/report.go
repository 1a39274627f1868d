package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
)

// table is one figure of the report: rows of samples per implementation,
// printed as medians with the ratios Millrace/peer and Millrace/raw.
type table struct {
	title  string                          // e.g. "Publish, msg/s (higher is better)"
	format func(float64) string            // how a median is printed
	rows   []string                        // in order of first sample
	values map[string]map[string][]float64 // row → implementation → samples
}

func newTable(title string, format func(float64) string) *table {
	return &table{title: title, format: format, values: map[string]map[string][]float64{}}
}

// add records one sample of row for impl.
func (t *table) add(row, impl string, v float64) {
	byImpl, ok := t.values[row]
	if !ok {
		byImpl = map[string][]float64{}
		t.values[row] = byImpl
		t.rows = append(t.rows, row)
	}
	byImpl[impl] = append(byImpl[impl], v)
}

// median of row for impl, NaN without samples.
func (t *table) median(row, impl string) float64 { return harness.Median(t.values[row][impl]) }

// write prints t as a markdown table; a table without rows prints nothing.
func (t *table) write(w io.Writer) {
	if len(t.rows) == 0 {
		return
	}
	fmt.Fprintf(w, "| %s | Millrace | peer | raw | Millrace/peer | Millrace/raw |\n", t.title)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, row := range t.rows {
		m, p, r := t.median(row, harness.Millrace), t.median(row, harness.Peer), t.median(row, harness.Raw)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n",
			row, t.cell(m), t.cell(p), t.cell(r), ratio(m, p), ratio(m, r))
	}
	fmt.Fprintln(w)
}

// cell formats a median, "–" when there is none.
func (t *table) cell(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return t.format(v)
}

// ratio formats a/b as "1.23×", "–" when either is missing or b is 0.
func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// Formats of the figures.
func fmtRate(v float64) string   { return groupThousands(int64(math.Round(v))) }
func fmtMicros(v float64) string { return fmt.Sprintf("%.1f", v) }
func fmtMillis(v float64) string { return fmt.Sprintf("%.3f", v) }
func fmtMB(v float64) string     { return fmt.Sprintf("%.1f", v) }
func fmtPerSec(v float64) string { return fmt.Sprintf("%.2f", v) }

// groupThousands prints n as "123,456".
func groupThousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + groupThousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// report is every figure of a run.
type report struct {
	publish, consume, cpu, latency, rss, idle *table
}

func newReport(o options) *report {
	return &report{
		publish: newTable("Publish, msg/s (higher is better)", fmtRate),
		consume: newTable("Consume through a Router, msg/s (higher is better)", fmtRate),
		cpu:     newTable("Client CPU, µs/msg (lower is better)", fmtMicros),
		latency: newTable(fmt.Sprintf("End-to-end latency at %d msg/s, ms (lower is better)", o.rate), fmtMillis),
		rss:     newTable(fmt.Sprintf("Peak RSS draining a %d × %s backlog, MB (lower is better)", o.rssN, sizeLabel(o.rssSize)), fmtMB),
		idle:    newTable("Idle subscription, Redis commands/s (lower is better)", fmtPerSec),
	}
}

// write prints the header, every table with samples, and the method notes.
func (r *report) write(w io.Writer, m machine, o options, h header) {
	fmt.Fprintf(w, "## Millrace vs watermill-redisstream vs raw go-redis\n\n")
	m.write(w, h.started, h.args)
	for _, t := range []*table{r.publish, r.consume, r.cpu, r.latency, r.rss, r.idle} {
		t.write(w)
	}
	fmt.Fprintf(w, "Each cell is the median of %d run%s; implementations alternate run by run (Millrace, peer, raw, Millrace, ...). ", o.runs, plural(o.runs))
	fmt.Fprintf(w, "Messages: %d per throughput run, one random payload reused, ULID IDs, a fresh topic per run. ", o.n)
	fmt.Fprintf(w, "Publish: one shared publisher used by P goroutines, one message per Publish call (raw: pipelines of %d XADDs). ", o.rawBatch)
	fmt.Fprintf(w, "Consume: a pre-filled stream drained by S subscribers of one group through a Router whose handler acks, timed from Router start to the last message handled (raw: XREADGROUP COUNT 100 + one XACK per batch). ")
	fmt.Fprintf(w, "CPU: getrusage user+sys of the benchmark process over the same span, per message. ")
	fmt.Fprintf(w, "Latency: 16 B messages at a fixed rate for %s, publish time in metadata, measured in the handler. ", o.latencyDuration)
	fmt.Fprintf(w, "Peak RSS: a child process draining the backlog with one subscriber. ")
	fmt.Fprintf(w, "Idle: INFO commandstats over %s for one subscription that has handled one message, nothing else on the server (raw: BLOCK 1s).\n", o.idleDuration)
	fmt.Fprintf(w, "Failed runs: %d.\n", h.failures)
}

// header is what the report says about the run itself.
type header struct {
	started  time.Time
	args     string
	failures int
}
