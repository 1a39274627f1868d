package matrix

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/millrace/millrace/benchmarks/internal/harness"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun checks the order of the measurements, the cells' own runs and
// implementations, and the count of failures.
func TestRun(t *testing.T) {
	var impls []harness.Impl
	for _, name := range harness.Names {
		impl, err := harness.NewImpl(name, 1)
		if err != nil {
			t.Fatal(err)
		}
		impls = append(impls, impl)
	}
	var got []string
	record := func(label string, fail bool) func(context.Context, harness.Impl) (string, error) {
		return func(_ context.Context, impl harness.Impl) (string, error) {
			got = append(got, label+":"+impl.Name())
			if fail {
				return "", errors.New("boom")
			}
			return "", nil
		}
	}
	cells := []Cell{
		{Label: "a", Measure: record("a", false)},
		{Label: "b", Impls: []string{harness.Raw}, Runs: 1, Measure: record("b", true)},
	}
	var log strings.Builder
	failures := Run(t.Context(), cells, impls, 2, &log)
	want := "a:millrace a:peer a:raw a:millrace a:peer a:raw b:raw"
	if strings.Join(got, " ") != want || failures != 1 {
		t.Errorf("measured %q with %d failures, want %q with 1", strings.Join(got, " "), failures, want)
	}
	if !strings.Contains(log.String(), "[7/7] b · raw · run 1/1: FAILED: boom") {
		t.Errorf("log:\n%s", log.String())
	}
}

// TestCommon checks the shared flags and the throughput cells they select.
func TestCommon(t *testing.T) {
	var c Common
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Register(fs, Defaults{N: 10, Pubs: "1,2", Impls: []string{"x", "y"}, Figures: []string{"publish", "consume"}})
	if err := fs.Parse([]string{"-sizes", "16", "-subs", "3", "-figures", "consume,publish"}); err != nil {
		t.Fatal(err)
	}
	if errs := c.Check(map[string]int{"extra": 1}); len(errs) != 0 {
		t.Fatal(errs)
	}
	var labels []string
	cell := func(kind string) func(int, int) Cell {
		return func(size, n int) Cell {
			labels = append(labels, kind)
			return Cell{Label: kind}
		}
	}
	if cs := c.ThroughputCells(cell("p"), cell("c")); len(cs) != 3 || strings.Join(labels, "") != "ppc" {
		t.Errorf("cells %v", labels)
	}
	if errs := c.Check(map[string]int{"extra": 0}); len(errs) != 1 {
		t.Errorf("-extra 0 gave %v", errs)
	}
	if err := fs.Parse([]string{"-impls", "z", "-sizes", "x"}); err != nil {
		t.Fatal(err)
	}
	if errs := c.Check(nil); len(errs) != 2 {
		t.Errorf("-impls z -sizes x gave %v", errs)
	}
}
