package report

import (
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTableWrite(t *testing.T) {
	tab := &Table{
		Title: "Rate", Format: Rate,
		Columns: []Column{{"a", "A"}, {"b", "B"}, {"c", "C"}},
		Ratios:  []Ratio{{Num: "a", Den: "b", Header: "A/B"}, {Num: "a", Den: "c", Header: "A/C"}, {Num: "b", Den: "a", Header: "B, % of A", Percent: true}},
	}
	for _, v := range []float64{1000, 3000, 2000} {
		tab.Add("row 1", "a", v)
	}
	tab.Add("row 1", "b", 4000)
	tab.Add("row 2", "b", 1234567)
	var out strings.Builder
	tab.Write(&out)
	want := "| Rate | A | B | A/B | B, % of A |\n" +
		"| --- | ---: | ---: | ---: | ---: |\n" +
		"| row 1 | 2,000 | 4,000 | 0.50× | 200% |\n" +
		"| row 2 | – | 1,234,567 | – | – |\n\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	var empty strings.Builder
	(&Table{Title: "none"}).Write(&empty)
	if empty.Len() != 0 {
		t.Errorf("a table without samples printed %q", empty.String())
	}
}

func TestMedianAndPercentile(t *testing.T) {
	if m := Median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Errorf("Median = %v, want 2.5", m)
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
	s := []time.Duration{-2, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	for p, want := range map[float64]time.Duration{0: -2, 50: 4, 99: 9, 100: 9} {
		if got := Percentile(s, p); got != want {
			t.Errorf("Percentile(%v) = %v, want %v", p, got, want)
		}
	}
	if GroupThousands(-1234) != "-1,234" || FormatRatio(1, 0, false) != "–" {
		t.Error("GroupThousands or FormatRatio")
	}
}

func TestDistributionsWrite(t *testing.T) {
	var d Distributions
	d.Title = "Lateness, ms"
	d.Add("x", -time.Millisecond, 2*time.Millisecond)
	d.Add("x", 3*time.Millisecond)
	var out strings.Builder
	d.Write(&out)
	if !strings.Contains(out.String(), "| x | 3 | -1.000 | 2.000 | 3.000 | 3.000 |") {
		t.Errorf("got %q", out.String())
	}
}
