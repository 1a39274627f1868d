package soak

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/millrace/millrace/chaos/internal/svgplot"
)

// Failures lists what makes the run fail: a series that grew beyond its
// tolerance, Redis clients left over once everything was closed, keys other
// than the topics' streams, or too few samples to judge.
func (r Result) Failures() []string {
	var f []string
	if len(r.Trends) == 0 {
		f = append(f, fmt.Sprintf("%d samples: too few to fit a trend (need %d)", len(r.Samples), 2*minHalf))
	}
	for _, t := range r.Trends {
		if !t.OK() {
			f = append(f, "grows: "+t.String())
		}
	}
	for _, c := range r.LeftOpen {
		f = append(f, "connection left open: "+c)
	}
	for _, k := range r.KeysAfter {
		if !slices.Contains(topics, k) {
			f = append(f, "key left behind: "+k)
		}
	}
	return f
}

// Report writes the run's figures and the trend of every series.
func (r Result) Report(w io.Writer) error {
	c := r.Config
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("run\t%s: a subscription closed and opened every %s, a Router restarted every %s, redis-server restarted every %s, %d msg/s, a sample every %s",
		c.Duration, c.ChurnEvery, c.RouterEvery, c.RedisEvery, c.Rate, c.SampleEvery)
	p("churn\t%d subscriptions and %d Routers closed and opened again, %d Redis restarts", r.Churned, r.RouterRestarts, len(r.Restarts))
	p("published\t%d messages, %d Publish calls failed (Redis restarting)", r.Published, r.PublishErrors)
	if n := len(r.Samples); n > 0 {
		p("handled\t%d messages", r.Samples[n-1].Handled)
	}
	p("after closing\t%d connections of the workload left open, keys %s", len(r.LeftOpen), strings.Join(r.KeysAfter, " "))
	if f := r.Failures(); len(f) > 0 {
		p("SOAK FAILED\t%s", strings.Join(f, "; "))
	} else {
		p("soak\tpassed: nothing grew beyond its tolerance, nothing was left behind")
	}
	p("")
	if err := tw.Flush(); err != nil {
		return err
	}
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "series\tunit\tsecond half: first\tmedian\tlast\tfitted growth\ttolerance\tverdict\t")
	for _, t := range r.Trends {
		verdict := "bounded"
		switch {
		case t.Unjudged:
			verdict = "not judged (-race)"
		case !t.OK():
			verdict = "GROWS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t%+.1f\t%.1f\t%s\t\n", t.Metric, t.Unit, t.First, t.Median, t.Last, t.Growth, t.Tolerance, verdict)
	}
	return tw.Flush()
}

// Plot writes the sampled series as SVG, Redis restarts marked.
func (r Result) Plot(w io.Writer) error {
	series := func(name, color string, get func(Sample) float64) svgplot.Series {
		s := svgplot.Series{Name: name, Color: color}
		for _, x := range r.Samples {
			s.Points = append(s.Points, svgplot.Point{X: x.At.Minutes(), Y: get(x)})
		}
		return s
	}
	var spans []svgplot.Span
	for _, t := range r.Restarts {
		spans = append(spans, svgplot.Span{From: t.Minutes(), To: (t + time.Second).Minutes(), Kind: "redis-server restarted"})
	}
	fig := svgplot.Figure{
		Title:  fmt.Sprintf("Soak: %s of churn, a sample every %s", r.Config.Duration, r.Config.SampleEvery),
		XLabel: "minutes since the start",
		Panels: []svgplot.Panel{
			{Title: "Memory (MB)", Series: []svgplot.Series{
				series("process RSS", "#1f77b4", func(s Sample) float64 { return float64(s.RSS) / mb }),
				series("Go heap in use", "#2ca02c", func(s Sample) float64 { return float64(s.HeapInuse) / mb }),
				series("Redis used_memory", "#d62728", func(s Sample) float64 { return float64(s.UsedMemory) / mb }),
			}},
			{Title: "Goroutines", Series: []svgplot.Series{
				series("goroutines", "#9467bd", func(s Sample) float64 { return float64(s.Goroutines) }),
			}},
			{Title: "Connections, keys, consumers", Series: []svgplot.Series{
				series("pool connections", "#1f77b4", func(s Sample) float64 { return float64(s.PoolConns) }),
				series("Redis clients", "#ff7f0e", func(s Sample) float64 { return float64(s.RedisClients) }),
				series("keys", "#2ca02c", func(s Sample) float64 { return float64(s.Keys) }),
				series("consumers", "#8c564b", func(s Sample) float64 { return float64(s.Consumers) }),
			}},
		},
		Spans:      spans,
		SpanColors: map[string]string{"redis-server restarted": "#d62728"},
	}
	return fig.Write(w)
}
