package chaos

import (
	"slices"
	"sort"
	"time"
)

// Series is a run's throughput and lag, computed from its log.
type Series struct {
	Start time.Time
	// sent holds the start times of the confirmed good Publish calls,
	// firsts the time of each such message's first successful handling,
	// handled every successful handling (duplicates too); all sorted.
	sent, firsts, handled []time.Time
}

// NewSeries computes the series of l; start is the run's start.
func NewSeries(l Log, start time.Time) *Series {
	s := &Series{Start: start}
	good := map[string]bool{}
	for _, p := range l.Publishes {
		if p.Confirmed() && !p.Class.Poison() {
			good[p.UUID] = true
			s.sent = append(s.sent, p.Start)
		}
	}
	first := map[string]time.Time{}
	for _, h := range l.Handlings {
		if !h.OK {
			continue
		}
		s.handled = append(s.handled, h.At)
		if t, ok := first[h.UUID]; good[h.UUID] && (!ok || h.At.Before(t)) {
			first[h.UUID] = h.At
		}
	}
	for _, t := range first {
		s.firsts = append(s.firsts, t)
	}
	for _, ts := range [][]time.Time{s.sent, s.firsts, s.handled} {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	}
	return s
}

// count returns how many of ts are before t.
func count(ts []time.Time, t time.Time) int {
	return sort.Search(len(ts), func(i int) bool { return !ts[i].Before(t) })
}

// through returns how many of ts are at or before t.
func through(ts []time.Time, t time.Time) int {
	return sort.Search(len(ts), func(i int) bool { return ts[i].After(t) })
}

// Handled returns the successful handlings in [from, to).
func (s *Series) Handled(from, to time.Time) int {
	return count(s.handled, to) - count(s.handled, from)
}

// Sent returns the confirmed good messages whose Publish began in [from, to).
func (s *Series) Sent(from, to time.Time) int {
	return count(s.sent, to) - count(s.sent, from)
}

// Lag returns how many confirmed good messages had been sent and not yet
// handled at t.
func (s *Series) Lag(t time.Time) int {
	return through(s.sent, t) - through(s.firsts, t)
}

// End is the time of the last event.
func (s *Series) End() time.Time {
	end := s.Start
	for _, ts := range [][]time.Time{s.sent, s.handled} {
		if len(ts) > 0 && ts[len(ts)-1].After(end) {
			end = ts[len(ts)-1]
		}
	}
	return end
}

// Recovery is how long throughput and lag took to come back after a fault.
type Recovery struct {
	Fault Fault
	// Throughput is from the fault's end until the end of the first second
	// in which handlers succeeded at least 80% of the nominal rate, 0 if the
	// second before the fault's end was such a second; negative if not
	// within the run.
	Throughput time.Duration
	// PeakLag is the highest lag from the fault's start until throughput
	// was back.
	PeakLag int
	// Overlapped counts the other faults that ran during this one or its
	// recovery.
	Overlapped int
}

// recoveryStep is the resolution of the recovery times.
const recoveryStep = 50 * time.Millisecond

// Recoveries measures the recovery after each of faults; rate is the
// nominal publish rate (messages per second).
func (s *Series) Recoveries(faults []Fault, rate int) []Recovery {
	end := s.End()
	var out []Recovery
	for _, f := range faults {
		r := Recovery{Fault: f, Throughput: -1}
		for t := f.End; !t.After(end); t = t.Add(recoveryStep) {
			if through(s.handled, t)-through(s.handled, t.Add(-time.Second)) >= rate*8/10 {
				r.Throughput = t.Sub(f.End)
				break
			}
		}
		until := f.End.Add(max(r.Throughput, 0))
		for t := f.Start; !t.After(until); t = t.Add(recoveryStep) {
			r.PeakLag = max(r.PeakLag, s.Lag(t))
		}
		for _, g := range faults {
			if g != f && g.Start.Before(until) && g.End.After(f.Start) {
				r.Overlapped++
			}
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Recovery) int { return a.Fault.Start.Compare(b.Fault.Start) })
	return out
}
