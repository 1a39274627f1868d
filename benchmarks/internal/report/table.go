// Package report prints the figures of cmd/bench and cmd/brokers as
// markdown tables: rows of samples per implementation, each cell the median
// of its samples, with ratio columns between implementations.
package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Column is one column of medians: the samples recorded under Key.
type Column struct {
	Key    string // the implementation's name, as passed to Add
	Header string // e.g. "Millrace"
}

// Ratio is a column of one column's median over another's.
type Ratio struct {
	Num, Den string // column keys
	Header   string // e.g. "Millrace/peer"
	Percent  bool   // print "26%" instead of "0.26×"
}

// Table is one figure: rows of samples per column.
type Table struct {
	Title   string               // e.g. "Publish, msg/s (higher is better)"
	Format  func(float64) string // how a median is printed
	Columns []Column
	Ratios  []Ratio
	rows    []string                        // in order of first sample
	values  map[string]map[string][]float64 // row → column key → samples
}

// Add records one sample of row under column key.
func (t *Table) Add(row, key string, v float64) {
	if t.values == nil {
		t.values = map[string]map[string][]float64{}
	}
	byKey, ok := t.values[row]
	if !ok {
		byKey = map[string][]float64{}
		t.values[row] = byKey
		t.rows = append(t.rows, row)
	}
	byKey[key] = append(byKey[key], v)
}

// Median of row under key, NaN without samples.
func (t *Table) Median(row, key string) float64 { return Median(t.values[row][key]) }

// Rows are the rows with samples, in order of their first sample.
func (t *Table) Rows() []string { return slices.Clone(t.rows) }

// has reports whether some row has a sample under key.
func (t *Table) has(key string) bool {
	for _, byKey := range t.values {
		if len(byKey[key]) > 0 {
			return true
		}
	}
	return false
}

// Write prints t as a markdown table with the columns and ratios that have
// samples; a table without rows prints nothing.
func (t *Table) Write(w io.Writer) {
	if len(t.rows) == 0 {
		return
	}
	var cols []Column
	for _, c := range t.Columns {
		if t.has(c.Key) {
			cols = append(cols, c)
		}
	}
	var ratios []Ratio
	for _, r := range t.Ratios {
		if t.has(r.Num) && t.has(r.Den) {
			ratios = append(ratios, r)
		}
	}
	header := []string{t.Title}
	align := []string{"---"}
	for _, c := range cols {
		header, align = append(header, c.Header), append(align, "---:")
	}
	for _, r := range ratios {
		header, align = append(header, r.Header), append(align, "---:")
	}
	writeRow(w, header)
	writeRow(w, align)
	for _, row := range t.rows {
		cells := []string{row}
		for _, c := range cols {
			cells = append(cells, t.cell(t.Median(row, c.Key)))
		}
		for _, r := range ratios {
			cells = append(cells, FormatRatio(t.Median(row, r.Num), t.Median(row, r.Den), r.Percent))
		}
		writeRow(w, cells)
	}
	fmt.Fprintln(w)
}

func writeRow(w io.Writer, cells []string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

// cell formats a median, "–" when there is none.
func (t *Table) cell(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return t.Format(v)
}

// FormatRatio formats a/b as "1.23×" or, with percent, "26%"; "–" when
// either is missing or b is 0.
func FormatRatio(a, b float64, percent bool) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "–"
	}
	if percent {
		return fmt.Sprintf("%.0f%%", 100*a/b)
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// Median returns the median of xs, NaN for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Formats of the figures.

// Rate prints a rate in whole units with thousands grouped: "123,456".
func Rate(v float64) string { return GroupThousands(int64(math.Round(v))) }

// Micros prints microseconds with one decimal.
func Micros(v float64) string { return fmt.Sprintf("%.1f", v) }

// Millis prints milliseconds with three decimals.
func Millis(v float64) string { return fmt.Sprintf("%.3f", v) }

// MB prints megabytes with one decimal.
func MB(v float64) string { return Tenths(v) }

// Tenths prints a value with one decimal.
func Tenths(v float64) string { return fmt.Sprintf("%.1f", v) }

// PerSec prints a per-second rate with two decimals.
func PerSec(v float64) string { return fmt.Sprintf("%.2f", v) }

// Count prints a whole number.
func Count(v float64) string { return GroupThousands(int64(math.Round(v))) }

// GroupThousands prints n as "123,456".
func GroupThousands(n int64) string {
	if n < 0 {
		return "-" + GroupThousands(-n)
	}
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// SizeLabel prints a payload size: "16 B", "1 KB".
func SizeLabel(size int) string {
	if size >= 1024 && size%1024 == 0 {
		return fmt.Sprintf("%d KB", size/1024)
	}
	return fmt.Sprintf("%d B", size)
}

// Plural is "s" unless n is 1.
func Plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Percentiles are the latency rows: p50, p99, p99.9.
var Percentiles = []float64{50, 99, 99.9}

// PercentileRow names the row of a percentile: "p99.9".
func PercentileRow(p float64) string { return fmt.Sprintf("p%g", p) }
