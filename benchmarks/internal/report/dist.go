package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Distributions is a figure of durations pooled over runs: one row per
// setting, printed as n, min, p50, p99 and max in milliseconds.
type Distributions struct {
	Title   string // e.g. "Lateness of delayed messages, ms"
	rows    []string
	samples map[string][]time.Duration
}

// Add records samples of row.
func (d *Distributions) Add(row string, samples ...time.Duration) {
	if d.samples == nil {
		d.samples = map[string][]time.Duration{}
	}
	if _, ok := d.samples[row]; !ok {
		d.rows = append(d.rows, row)
	}
	d.samples[row] = append(d.samples[row], samples...)
}

// Rows are the rows added, in order.
func (d *Distributions) Rows() []string { return slices.Clone(d.rows) }

// P is the p-th percentile of row's samples, 0 for none.
func (d *Distributions) P(row string, p float64) time.Duration {
	return Percentile(slices.Sorted(slices.Values(d.samples[row])), p)
}

// Write prints d as a markdown table; without rows it prints nothing.
func (d *Distributions) Write(w io.Writer) {
	if len(d.rows) == 0 {
		return
	}
	fmt.Fprintf(w, "| %s | n | min | p50 | p99 | max |\n", d.Title)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, row := range d.rows {
		s := slices.Sorted(slices.Values(d.samples[row]))
		ms := func(p float64) string { return Millis(float64(Percentile(s, p)) / float64(time.Millisecond)) }
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s |\n", row, len(s), ms(0), ms(50), ms(99), ms(100))
	}
	fmt.Fprintln(w)
}

// Percentile returns the p-th percentile (0 ≤ p ≤ 100; 0 is the minimum) of
// sorted by the nearest-rank method, 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
