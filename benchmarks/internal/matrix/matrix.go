package matrix

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
)

// Cell is one row of a matrix, measured Runs times per implementation it
// applies to. Measure records its samples and returns a one-line summary
// for the progress log.
type Cell struct {
	Label   string
	Impls   []string // the implementations it measures; nil means all
	Runs    int      // runs per implementation; 0 means the matrix's
	Measure func(ctx context.Context, impl harness.Impl) (string, error)
}

// Applies reports whether c measures the implementation called name.
func (c Cell) Applies(name string) bool { return c.Impls == nil || slices.Contains(c.Impls, name) }

// Run runs every cell its runs times (runs unless the cell says otherwise)
// for each implementation it applies to, alternating the implementations
// within each run, logs progress to log and returns how many measurements
// failed. It stops early when ctx is done.
func Run(ctx context.Context, cells []Cell, impls []harness.Impl, runs int, log io.Writer) (failures int) {
	runsOf := func(c Cell) int {
		if c.Runs > 0 {
			return c.Runs
		}
		return runs
	}
	total, i := 0, 0
	for _, c := range cells {
		for _, impl := range impls {
			if c.Applies(impl.Name()) {
				total += runsOf(c)
			}
		}
	}
	for _, c := range cells {
		for run := 1; run <= runsOf(c); run++ {
			for _, impl := range impls {
				if !c.Applies(impl.Name()) {
					continue
				}
				if ctx.Err() != nil {
					return failures
				}
				i++
				t0 := time.Now()
				summary, err := c.Measure(ctx, impl)
				if err != nil {
					failures++
					summary = "FAILED: " + err.Error()
				}
				fmt.Fprintf(log, "[%d/%d] %s · %s · run %d/%d: %s [%s]\n",
					i, total, c.Label, impl.Name(), run, runsOf(c), summary, time.Since(t0).Round(100*time.Millisecond))
			}
		}
	}
	return failures
}
