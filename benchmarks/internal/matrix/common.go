package matrix

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Common are the flags every benchmark program has.
type Common struct {
	N, Runs           int
	Sizes, Pubs, Subs []int
	Impls             []string
	Figures           map[string]bool
	Rate              int
	LatencyDuration   time.Duration
	Timeout, Deadline time.Duration
	Out, SVG          string

	d                                 Defaults
	sizes, pubs, subs, impls, figures *string // as given
}

// Defaults are a program's defaults of the [Common] flags.
type Defaults struct {
	N                 int
	Pubs              string
	Impls             []string // every implementation, in the order they alternate
	ImplsHelp         string   // what -impls says beyond the list
	Figures           []string // every figure, in report order
	Timeout, Deadline time.Duration
}

// Register defines the flags on fs.
func (c *Common) Register(fs *flag.FlagSet, d Defaults) {
	c.d = d
	fs.IntVar(&c.N, "n", d.N, "messages per publish and consume run")
	fs.IntVar(&c.Runs, "runs", 3, "runs per cell and implementation; each cell is their median")
	c.sizes = fs.String("sizes", "16,1024", "payload sizes in bytes")
	c.pubs = fs.String("pubs", d.Pubs, "publisher goroutine counts")
	c.subs = fs.String("subs", "1,4", "subscriber counts (one consumer group)")
	c.impls = fs.String("impls", strings.Join(d.Impls, ","), "implementations, in the order they alternate"+d.ImplsHelp)
	c.figures = fs.String("figures", strings.Join(d.Figures, ","), "figures to measure")
	fs.IntVar(&c.Rate, "rate", 1000, "latency figure: messages per second")
	fs.DurationVar(&c.LatencyDuration, "latency-duration", 5*time.Second, "latency figure: how long to publish at -rate")
	fs.DurationVar(&c.Timeout, "timeout", d.Timeout, "bound on every wait of one run (a run past it fails)")
	fs.DurationVar(&c.Deadline, "deadline", d.Deadline, "bound on the whole program; the report then has what was measured")
	fs.StringVar(&c.Out, "out", "", "also write the report to this file")
	fs.StringVar(&c.SVG, "svg", "", "write a chart of the main figures to this SVG file")
}

// Check converts the lists given after fs.Parse and checks every flag,
// with positive naming more integer flags that must be at least 1.
func (c *Common) Check(positive map[string]int) []error {
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	c.Sizes, err = ParseInts("sizes", *c.sizes)
	collect(err)
	c.Pubs, err = ParseInts("pubs", *c.pubs)
	collect(err)
	c.Subs, err = ParseInts("subs", *c.subs)
	collect(err)
	c.Impls = SplitList(*c.impls)
	for _, name := range c.Impls {
		if !slices.Contains(c.d.Impls, name) {
			collect(fmt.Errorf("-impls: unknown %q (want some of %v)", name, c.d.Impls))
		}
	}
	c.Figures = map[string]bool{}
	for _, f := range SplitList(*c.figures) {
		if !slices.Contains(c.d.Figures, f) {
			collect(fmt.Errorf("-figures: unknown %q (want some of %v)", f, c.d.Figures))
		}
		c.Figures[f] = true
	}
	ints := map[string]int{"n": c.N, "runs": c.Runs, "rate": c.Rate}
	for name, v := range positive {
		ints[name] = v
	}
	for name, v := range ints {
		if v < 1 {
			collect(fmt.Errorf("-%s must be at least 1, got %d", name, v))
		}
	}
	return errs
}

// ThroughputCells are the publish cells, every size with every publisher
// count, then the consume cells, every size with every subscriber count,
// as far as -figures selects them.
func (c *Common) ThroughputCells(publish, consume func(size, n int) Cell) []Cell {
	var cs []Cell
	for _, f := range []struct {
		figure string
		counts []int
		cell   func(size, n int) Cell
	}{{"publish", c.Pubs, publish}, {"consume", c.Subs, consume}} {
		if !c.Figures[f.figure] {
			continue
		}
		for _, size := range c.Sizes {
			for _, n := range f.counts {
				cs = append(cs, f.cell(size, n))
			}
		}
	}
	return cs
}

// Emit prints a report on stdout and, with -out, writes it to that file;
// with -svg, chart draws the chart into that file.
func (c *Common) Emit(write func(io.Writer), chart func(path string) error) error {
	var out bytes.Buffer
	write(&out)
	os.Stdout.Write(out.Bytes())
	if c.Out != "" {
		if err := os.WriteFile(c.Out, out.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if c.SVG == "" {
		return nil
	}
	return chart(c.SVG)
}
