package soak

import (
	"fmt"
	"slices"
)

// Trend is the verdict on one series.
type Trend struct {
	Metric string
	Unit   string
	// First and Last are the first sample of the second half and the last
	// sample; Median is the median of the second half.
	First, Last, Median float64
	// Growth is the fitted line's rise over the second half; Tolerance what
	// it may be.
	Growth, Tolerance float64
	// Unjudged is set for a series that cannot be judged in this build.
	Unjudged bool
}

// OK reports whether the series stayed within its tolerance.
func (t Trend) OK() bool { return t.Unjudged || t.Growth <= t.Tolerance }

func (t Trend) String() string {
	return fmt.Sprintf("%s: %.1f → %.1f %s, fitted growth over the second half %+.1f (tolerance %.1f)",
		t.Metric, t.First, t.Last, t.Unit, t.Growth, t.Tolerance)
}

// minHalf is how many samples the second half needs for a fit.
const minHalf = 4

// Analyze fits a least-squares line through each series over the second
// half of samples; the first half is warm-up (pools filling, the first
// Redis restart, the garbage collector finding its pace). In a -race build
// the process's RSS is reported but not judged. It returns nothing
// with fewer than 2*minHalf samples.
func Analyze(samples []Sample) []Trend {
	if len(samples) < 2*minHalf {
		return nil
	}
	half := samples[len(samples)/2:]
	var out []Trend
	for _, m := range metrics {
		xs := make([]float64, len(half))
		ys := make([]float64, len(half))
		for i, s := range half {
			xs[i] = s.At.Seconds()
			ys[i] = m.Get(s)
		}
		slope := fitSlope(xs, ys)
		sorted := slices.Clone(ys)
		slices.Sort(sorted)
		med := sorted[len(sorted)/2]
		out = append(out, Trend{
			Metric: m.Name, Unit: m.Unit,
			First: ys[0], Last: ys[len(ys)-1], Median: med,
			Growth:    slope * (xs[len(xs)-1] - xs[0]),
			Tolerance: max(m.Abs, m.Rel*med),
			Unjudged:  m.NotUnderRace && raceEnabled,
		})
	}
	return out
}

// fitSlope is the slope of the least-squares line through (xs, ys).
func fitSlope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
