package chaos

import (
	"slices"
	"strings"
	"time"
)

// Cause is why an entry was handled successfully more than once.
type Cause string

// The causes of delivery-side duplicates that Check recognises; see
// attributor for the timing each one needs.
const (
	// CauseKilled: the consumer process that handled an earlier delivery
	// was SIGKILLed before its Ack could have reached Redis, and the entry
	// was claimed again after the kill.
	CauseKilled Cause = "killed"
	// CauseFailover: a failover rolled back the earlier delivery or its
	// XACK: the old master had it too shortly before it stopped to have
	// passed it on to the replica that took over.
	CauseFailover Cause = "failover"
	// CauseUnreachable: the consumer holding the entry could not reach the
	// master while the entry went idle for ClaimMinIdle, and another
	// consumer claimed it.
	CauseUnreachable Cause = "unreachable"
)

// causes lists the causes in the order they are tried: a duplicate that
// more than one explains is counted under the first.
var causes = []Cause{CauseKilled, CauseFailover, CauseUnreachable}

// Duplicate is one successful handling of an entry beyond its first.
type Duplicate struct {
	Entry, UUID string
	// Handling is the extra success; Earlier the success before it that the
	// cause pairs it with (for CauseUnreachable, either of them may be the
	// cut-off consumer's), or, when unexplained, the latest earlier one that
	// no cause pairs it with.
	Handling, Earlier Handling
	// Cause is "" when nothing in the run explains the duplicate.
	Cause Cause
	// Fault is what explains it: the kill, the failover, or, for
	// CauseUnreachable, the span in which clients could not reach the
	// master (kind outage; the target lists the faults in it).
	Fault Fault
	// Handlings are every handler run on the entry, failed ones too, by
	// start time.
	Handlings []Handling
}

// Outage is the Kind of the spans CauseUnreachable names.
const Outage = "outage"

// Timing allowances of the attribution. Each is a bound on something that
// happens in milliseconds on an idle machine; none is tuned to a run.
const (
	// slack is how late such a step may come on a loaded 2-core machine
	// under -race: an Ack reaching Redis after its handler finished, a
	// delivered entry reaching its handler, a write reaching the replica.
	slack = time.Second
	// ackRetryInitial and ackRetryMax are the root package's retry pacing
	// (backoff.go: retryInitial, retryMax), which its acker follows while
	// XACKs fail.
	ackRetryInitial = 50 * time.Millisecond
	ackRetryMax     = 5 * time.Second
)

// masterPath reports whether faults of kind keep clients from the master:
// while one runs, XACKs, lease renewals and claims fail or wait.
func masterPath(kind string) bool {
	switch kind {
	case CutConnections, Blackhole, FreezeMaster, KillMaster, Failover:
		return true
	}
	return false
}

// rollsBack reports whether f is a failover: writes the old master took
// shortly before it stopped may be missing on the new one.
func rollsBack(f Fault) bool {
	return f.Kind == Failover || (f.Kind == KillMaster && !strings.HasSuffix(f.Target, noFailover))
}

// span is a stretch of time.
type span struct{ from, to time.Time }

func (s span) overlaps(o span) bool { return !s.to.Before(o.from) && !o.to.Before(s.from) }

// episode is a stretch of master-path faults, chained while one begins
// before the retries of the ones before it are due. clear bounds when
// every retry loop that failed in it (the acker's XACKs above all) has
// tried again: after the last fault's end, one backoff delay, which
// doubles from ackRetryInitial with every failure since the episode began
// (so it is at most twice the episode plus ackRetryInitial), capped at
// ackRetryMax, and slack for the attempt.
type episode struct {
	span
	clear time.Time
}

func newEpisode(from, to time.Time) episode {
	backoff := min(ackRetryMax, 2*to.Sub(from)+ackRetryInitial)
	return episode{span: span{from, to}, clear: to.Add(backoff + slack)}
}

// attributor finds the causes of a run's delivery-side duplicates from its
// faults. Times come from one clock: every process of a run is on one
// machine.
type attributor struct {
	claimMinIdle time.Duration
	kills        []Fault
	failovers    []Fault
	episodes     []episode
	// outages are the master-path faults, merged where fewer than two lease
	// renewals (ClaimMinIdle/3) apart: between them a holder may not have
	// renewed its leases.
	outages []Fault
}

func newAttributor(l Log) *attributor {
	a := &attributor{claimMinIdle: l.ClaimMinIdle}
	var path []Fault
	for _, f := range l.Faults {
		switch {
		case f.Kind == KillConsumer:
			a.kills = append(a.kills, f)
		case rollsBack(f):
			a.failovers = append(a.failovers, f)
		}
		if masterPath(f.Kind) {
			path = append(path, f)
		}
	}
	slices.SortFunc(path, func(x, y Fault) int { return x.Start.Compare(y.Start) })
	for _, f := range path {
		if n := len(a.episodes); n > 0 && f.Start.Before(a.episodes[n-1].clear) {
			e := a.episodes[n-1]
			a.episodes[n-1] = newEpisode(e.from, later(e.to, f.End))
		} else {
			a.episodes = append(a.episodes, newEpisode(f.Start, f.End))
		}
		if n := len(a.outages); n > 0 && !f.Start.After(a.outages[n-1].End.Add(a.claimMinIdle/3)) {
			o := &a.outages[n-1]
			o.End = later(o.End, f.End)
			o.Target += "+" + f.Kind
		} else {
			a.outages = append(a.outages, Fault{Kind: Outage, Target: f.Kind, Start: f.Start, End: f.End})
		}
	}
	return a
}

// ackBy bounds when the Ack of a handler run that finished at t reached
// Redis, if it ever did: slack after t, or, if an episode caught it, when
// that episode's retries were due.
func (a *attributor) ackBy(t time.Time) time.Time {
	by := t.Add(slack)
	for _, e := range a.episodes {
		if !e.from.After(by) && !t.After(e.clear) {
			by = later(by, e.clear)
		}
	}
	return by
}

// heldFrom bounds when the entry of a handler run that began at t was
// delivered: slack before t, or before the outage t falls in or follows
// within slack (workers waiting on Redis kept entries from their handlers
// until it ended).
func (a *attributor) heldFrom(t time.Time) time.Time {
	from := t.Add(-slack)
	for _, o := range a.outages {
		if !t.Before(o.Start) && !t.After(o.End.Add(slack)) {
			from = earlier(from, o.Start.Add(-slack))
		}
	}
	return from
}

// held bounds when the consumer of h held its entry: from its delivery
// until h's Ack reached Redis. A redelivery after a Nack is a new delivery
// (an XCLAIM, which renews the lease), so earlier failed runs do not count.
func (a *attributor) held(h Handling) span {
	return span{a.heldFrom(h.Start), a.ackBy(h.At)}
}

// killed finds the SIGKILL of the process that ran x: it came after x began
// and before x's Ack could have reached Redis, and y, a delivery Redis
// counted after x's, ran after it.
func (a *attributor) killed(x, y Handling) (Fault, bool) {
	for _, f := range a.kills {
		if f.Target == x.Consumer && (f.Pid == 0 || x.Pid == 0 || f.Pid == x.Pid) &&
			!f.Start.Before(x.Start) && !f.Start.After(a.ackBy(x.At)) &&
			y.At.After(f.Start) && y.Delivery > x.Delivery {
			return f, true
		}
	}
	return Fault{}, false
}

// failedOver finds a failover that may have lost the delivery or the Ack
// of a run whose consumer held its entry over heldX: the old master took writes until a kill, or,
// frozen, until the failover was complete (when thawed, it takes writes
// until it is made a replica), and the last slack of them may not have
// reached the replica. y ran after the failover began.
func (a *attributor) failedOver(heldX span, y Handling) (Fault, bool) {
	for _, f := range a.failovers {
		lost := span{f.Start.Add(-slack), f.Start}
		if f.Kind == Failover {
			lost.to = f.End
		}
		if heldX.overlaps(lost) && y.At.After(f.Start) {
			return f, true
		}
	}
	return Fault{}, false
}

// unreachable finds an outage during which the consumer of x held its entry
// and could not renew its lease, such that another consumer could claim the
// entry (a delivery Redis counted, run as y). The leaser renews a lease
// once it is ClaimMinIdle/6 old, so the last renewal came at the earliest
// two renewals (ClaimMinIdle/3) before the outage, or at the delivery. The
// claim needs the entry idle for ClaimMinIdle since, and must come before
// the holder renews again: at the latest ClaimMinIdle/3 after the outage
// (a renewal that timed out, then the next tick). So the outage lasted at
// least ClaimMinIdle/3, and y ran in that claim window, or within slack
// after it. Without a ClaimMinIdle in the log nothing is attributed to this
// cause.
func (a *attributor) unreachable(x Handling, heldX span, y Handling) (Fault, bool) {
	if a.claimMinIdle <= 0 || y.Consumer == x.Consumer || y.Delivery <= x.Delivery {
		return Fault{}, false
	}
	renewals := a.claimMinIdle / 3
	for _, o := range a.outages {
		if !heldX.overlaps(span{o.Start, o.End}) {
			continue
		}
		claimFrom := later(heldX.from, o.Start.Add(-renewals)).Add(a.claimMinIdle)
		claimTo := o.End.Add(renewals)
		if !claimFrom.After(claimTo) && !y.At.Before(claimFrom) && !y.At.After(claimTo.Add(slack)) {
			return o, true
		}
	}
	return Fault{}, false
}

// attribute returns the duplicates among hs, every handler run on one
// entry. Successful runs are taken by the time they finished. Each after the
// first is explained only if every earlier success pairs with it under a
// cause: any Ack that landed would have removed the entry from the PEL
// before it could be delivered again. The duplicate is given the cause of
// the latest earlier success; for each pair the causes are tried in order.
// CauseUnreachable is tried both ways round: the cut-off consumer may
// finish its run after the one that claimed the entry from it.
func (a *attributor) attribute(hs []Handling) []Duplicate {
	hs = slices.Clone(hs)
	slices.SortStableFunc(hs, func(x, y Handling) int { return x.Start.Compare(y.Start) })
	var ok []Handling // the successes, by finish time
	for _, h := range hs {
		if h.OK {
			ok = append(ok, h)
		}
	}
	if len(ok) < 2 {
		return nil
	}
	slices.SortStableFunc(ok, func(x, y Handling) int { return x.At.Compare(y.At) })
	var out []Duplicate
	for k := 1; k < len(ok); k++ {
		y := ok[k]
		d := Duplicate{Entry: y.Entry, UUID: y.UUID, Handling: y, Earlier: ok[k-1], Handlings: hs}
		for j := k - 1; j >= 0; j-- {
			c, f := a.pair(ok[j], y)
			if c == "" {
				d.Earlier, d.Cause, d.Fault = ok[j], "", Fault{}
				break
			}
			if j == k-1 {
				d.Cause, d.Fault = c, f
			}
		}
		out = append(out, d)
	}
	return out
}

// pair returns the first cause, and its fault, that explains y succeeding
// after x had; "" if none does.
func (a *attributor) pair(x, y Handling) (Cause, Fault) {
	for _, c := range causes {
		var f Fault
		found := false
		switch c {
		case CauseKilled:
			f, found = a.killed(x, y)
		case CauseFailover:
			f, found = a.failedOver(a.held(x), y)
		case CauseUnreachable:
			if f, found = a.unreachable(x, a.held(x), y); !found {
				f, found = a.unreachable(y, a.held(y), x)
			}
		}
		if found {
			return c, f
		}
	}
	return "", Fault{}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
