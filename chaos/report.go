package chaos

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/millrace/millrace/chaos/internal/svgplot"
)

// Report writes the figures of a run as text tables.
func (r Result) Report(w io.Writer) error {
	v := r.Verdict
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("run\t%s, seed %d, %d msg/s, %d consumer processes, mean gap between faults %s", r.Config.Duration, r.Config.Seed, r.Config.Rate, r.Config.Consumers, r.Config.MeanGap)
	p("drain\t%s after the faults and publishing stopped", r.Drain.Round(10*time.Millisecond))
	p("published\t%d Publish calls: %d confirmed, unconfirmed %s; %d not attempted (every publisher blocked)", v.Published, v.Confirmed, counts(v.Unconfirmed), r.Dropped)
	p("unconfirmed handled anyway\t%d (Redis had added them before the error)", v.UnconfirmedHandled)
	lost := ""
	if len(v.Lost) > 0 {
		lost = " (" + counts(v.LostByClass) + ")"
	}
	p("good messages\t%d confirmed, %d handled, %d lost%s; %d delivered more than once", v.Good, v.Handled, len(v.Lost), lost, v.Redelivered)
	if v.StreamEntries == 0 {
		p("publish-side duplicates\tnot counted: the stream was not read after the run")
	} else {
		p("publish-side duplicates\t%d entries beyond the first of a UUID (%d UUIDs), of %d entries in the stream", v.PublishDuplicates, len(v.PublishDuplicated), v.StreamEntries)
	}
	var byCause []string
	for _, c := range causes {
		byCause = append(byCause, fmt.Sprintf("%d %s", v.ByCause[c], c))
	}
	p("delivery-side duplicates\t%d successful handlings of an entry beyond its first (at most %d of one entry): %s, %d unexplained",
		len(v.DeliveryDuplicates), v.MaxHandled, strings.Join(byCause, ", "), len(v.Unexplained))
	p("good messages dead-lettered\t%d (delivered more than MaxDeliveries times by crashes and cuts)", len(v.GoodDeadLettered))
	p("poison messages\t%d confirmed, %d in the dead-letter stream, %d missing", v.Poison, v.PoisonInDLQ, len(v.PoisonMissing))
	p("dead-letter stream\t%d entries (%d repeats of a message), reasons: %s", v.DeadLetters, v.DLQRepeats, counts(v.Reasons))
	p("handler runs\t%d (%d failed or panicked on purpose); %d repeated a consumer's run with the same delivery count", v.HandlerRuns, v.FailedRuns, v.SameDelivery)
	p("consumer exits not caused by a fault\t%d %s", len(r.Unexpected), strings.Join(r.Unexpected, " "))
	p("unparsable log lines\t%d", v.Skipped)
	f, strict := v.Failures(), v.StrictFailures()
	if !r.Config.Lenient {
		f = append(f, strict...)
	} else if len(strict) > 0 {
		p("not failing (lenient)\t%s", strings.Join(strict, "; "))
	}
	switch {
	case len(f) > 0:
		p("CHECK FAILED\t%s", strings.Join(f, "; "))
	case len(strict) > 0:
		p("check\tpassed (lenient): every confirmed message was handled or, poison, dead-lettered")
	default:
		p("check\tpassed: every confirmed message was handled or, poison, dead-lettered; no publish-side duplicate; every delivery-side duplicate has a cause")
	}
	p("")
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.reportFaults(w); err != nil {
		return err
	}
	return r.reportUnexplained(w)
}

// unexplainedShown caps the duplicates reportUnexplained details.
const unexplainedShown = 50

// faultsBefore is how long before an unexplained duplicate's first handler
// run its report lists faults.
const faultsBefore = 5 * time.Second

// reportUnexplained details each delivery-side duplicate without a cause:
// every handler run on its entry and the faults around them.
func (r Result) reportUnexplained(w io.Writer) error {
	ds := r.Verdict.Unexplained
	if len(ds) == 0 {
		return nil
	}
	at := func(t time.Time) string { return fmt.Sprintf("%.3fs", t.Sub(r.Start).Seconds()) }
	fmt.Fprintf(w, "\nDelivery-side duplicates without a cause (%d; times from the run's start; faults from %s before the entry's first handler run to its last):\n", len(ds), faultsBefore)
	for i, d := range ds {
		if i == unexplainedShown {
			fmt.Fprintf(w, "… %d more\n", len(ds)-i)
			break
		}
		fmt.Fprintf(w, "\nentry %s (%s): the run finished at %s by %s/%d is extra\n", d.Entry, d.UUID, at(d.Handling.At), d.Handling.Consumer, d.Handling.Pid)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  \thandler ran\tconsumer/pid\tdelivery\toutcome\t")
		from, to := d.Handlings[0].Start, d.Handlings[0].At
		for _, h := range d.Handlings {
			outcome := "fail"
			if h.OK {
				outcome = "ok"
			}
			fmt.Fprintf(tw, "  \t%s–%s\t%s/%d\t%d\t%s\t\n", at(h.Start), at(h.At), h.Consumer, h.Pid, h.Delivery, outcome)
			to = later(to, h.At)
		}
		for _, f := range r.Log.Faults {
			if f.End.After(from.Add(-faultsBefore)) && f.Start.Before(to) {
				target := f.Target
				if f.Pid != 0 {
					target = fmt.Sprintf("%s/%d", f.Target, f.Pid)
				}
				fmt.Fprintf(tw, "  \tfault %s–%s\t%s %s\t\t\t\n", at(f.Start), at(f.End), f.Kind, target)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func (r Result) reportFaults(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fault\tcount\tlasted (median, max)\tthroughput back after (median, max)\tpeak lag (median, max)\toverlapping\t")
	byKind := map[string][]Recovery{}
	for _, rc := range r.Recoveries {
		byKind[rc.Fault.Kind] = append(byKind[rc.Fault.Kind], rc)
	}
	names := make([]string, 0, len(byKind))
	for k := range byKind {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		rs := byKind[k]
		var lasted, tput []time.Duration
		var lags []int
		overlapping := 0
		for _, rc := range rs {
			lasted = append(lasted, rc.Fault.End.Sub(rc.Fault.Start))
			tput = append(tput, rc.Throughput)
			lags = append(lags, rc.PeakLag)
			if rc.Overlapped > 0 {
				overlapping++
			}
		}
		slices.Sort(lags)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d, %d\t%d\t\n", k, len(rs), medMax(lasted), medMax(tput), lags[len(lags)/2], lags[len(lags)-1], overlapping)
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t")
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "Every fault, in order (times from the run's start; throughput back from the fault's end, - = not within the run; peak lag in messages):")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "start\tfault\ttarget\tlasted\tthroughput back\tpeak lag\toverlapping\t")
	for _, rc := range r.Recoveries {
		f := rc.Fault
		fmt.Fprintf(tw, "%.1fs\t%s\t%s\t%s\t%s\t%d\t%d\t\n", f.Start.Sub(r.Start).Seconds(), f.Kind, f.Target,
			dur(f.End.Sub(f.Start)), dur(rc.Throughput), rc.PeakLag, rc.Overlapped)
	}
	return tw.Flush()
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// medMax formats the median and maximum of ds; negative values (not within
// the run) are left out and counted.
func medMax(ds []time.Duration) string {
	var ok []time.Duration
	for _, d := range ds {
		if d >= 0 {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return "-"
	}
	slices.Sort(ok)
	s := dur(ok[len(ok)/2]) + ", " + dur(ok[len(ok)-1])
	if n := len(ds) - len(ok); n > 0 {
		s += fmt.Sprintf(" (%d -)", n)
	}
	return s
}

func dur(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

// faultColors are the colors of the faults in the plot.
var faultColors = map[string]string{
	KillConsumer:   "#9467bd",
	CutConnections: "#ff7f0e",
	Blackhole:      "#8c564b",
	FreezeReplica:  "#17becf",
	FreezeMaster:   "#1f77b4",
	KillMaster:     "#d62728",
	Failover:       "#e377c2",
}

// Plot writes throughput and lag over the run as SVG, one point per
// 500 ms (the lag's highest value in it), with the faults marked.
func (r Result) Plot(w io.Writer) error {
	const step = 500 * time.Millisecond
	s := r.Series
	var published, handled, lag []svgplot.Point
	for t := s.Start; !t.After(s.End()); t = t.Add(step) {
		x := t.Sub(s.Start).Seconds()
		perSec := float64(time.Second / step)
		published = append(published, svgplot.Point{X: x, Y: float64(s.Sent(t, t.Add(step))) * perSec})
		handled = append(handled, svgplot.Point{X: x, Y: float64(s.Handled(t, t.Add(step))) * perSec})
		peak := 0
		for u := t; u.Before(t.Add(step)); u = u.Add(recoveryStep) {
			peak = max(peak, s.Lag(u))
		}
		lag = append(lag, svgplot.Point{X: x, Y: float64(peak)})
	}
	var spans []svgplot.Span
	for _, f := range r.Log.Faults {
		spans = append(spans, svgplot.Span{From: f.Start.Sub(s.Start).Seconds(), To: f.End.Sub(s.Start).Seconds(), Kind: f.Kind})
	}
	fig := svgplot.Figure{
		Title:  fmt.Sprintf("Chaos run: %s, seed %d, %d msg/s, %d consumer processes, Sentinel failovers included", r.Config.Duration, r.Config.Seed, r.Config.Rate, r.Config.Consumers),
		XLabel: "seconds since the start",
		Panels: []svgplot.Panel{
			{Title: "Throughput (msg/s)", Series: []svgplot.Series{
				{Name: "published, confirmed", Color: "#2ca02c", Points: published},
				{Name: "handled", Color: "#1f77b4", Points: handled},
			}},
			{Title: "Lag (confirmed messages not yet handled, highest in each 500 ms)", Series: []svgplot.Series{
				{Name: "lag", Color: "#d62728", Points: lag},
			}},
		},
		Spans:      spans,
		SpanColors: faultColors,
	}
	return fig.Write(w)
}
