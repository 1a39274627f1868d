package chaos

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Verdict is what Check found in a run's log.
type Verdict struct {
	Published   int // Publish calls
	Confirmed   int // ... that returned nil
	Unconfirmed map[string]int
	// UnconfirmedHandled counts unconfirmed messages handled anyway: Redis
	// had added them before the error (a cut reply, a WAIT that timed out).
	UnconfirmedHandled int

	Good        int // confirmed messages that must be handled
	Handled     int // ... handled at least once
	Redelivered int // confirmed messages of class Good delivered more than once
	// SameDelivery counts handler runs of an entry by a consumer that had
	// already run it with the same delivery count: handed out again without
	// Redis counting a delivery.
	SameDelivery int

	// StreamEntries counts the entries of the stream read after the run, 0
	// if it was not read. PublishDuplicates counts the entries beyond the
	// first of one UUID (a Publish whose XADD went out twice), over the
	// UUIDs in PublishDuplicated.
	StreamEntries     int
	PublishDuplicates int
	PublishDuplicated []string

	// DeliveryDuplicates are the successful handler runs of an entry beyond
	// its first, each with its cause if the run's faults explain it;
	// ByCause counts the explained ones, Unexplained lists the others.
	// MaxHandled is the most successful runs of one entry.
	DeliveryDuplicates []Duplicate
	ByCause            map[Cause]int
	Unexplained        []Duplicate
	MaxHandled         int
	// GoodDeadLettered lists good messages in the dead-letter stream that
	// were never handled: delivered more than MaxDeliveries times by crashes
	// and cuts alone. They are kept, not lost, but no handler had them.
	GoodDeadLettered []string

	Poison       int // confirmed poison messages
	PoisonInDLQ  int // ... found in the dead-letter stream
	DeadLetters  int // entries of the dead-letter stream
	DLQRepeats   int // dead-letter entries of a message beyond its first
	Reasons      map[string]int
	Skipped      int // log lines that did not parse
	HandlerRuns  int
	FailedRuns   int // handler runs that failed on purpose
	UnknownUUIDs int // handled but never published: only in a broken log

	// Lost lists the confirmed good messages that were neither handled nor
	// dead-lettered; PoisonMissing the confirmed poison messages not in the
	// dead-letter stream; PoisonHandled those a handler succeeded on;
	// NoReason the dead letters without a reason.
	Lost, PoisonMissing, PoisonHandled, NoReason []string
	// LostByClass counts Lost by the messages' class.
	LostByClass map[string]int
}

// Check compares what was published with what was handled and
// dead-lettered.
func Check(l Log) Verdict {
	v := Verdict{Unconfirmed: map[string]int{}, Reasons: map[string]int{}, LostByClass: map[string]int{}, ByCause: map[Cause]int{}, Skipped: l.Skipped}
	class := map[string]Class{}
	confirmed := map[string]bool{}
	for _, p := range l.Publishes {
		v.Published++
		class[p.UUID] = p.Class
		if p.Confirmed() {
			confirmed[p.UUID] = true
		} else {
			v.Unconfirmed[p.Outcome]++
		}
	}
	v.Confirmed = len(confirmed)
	successes := map[string]int{}
	deliveries := map[string]int{}
	seen := map[Handling]bool{}
	// An entry is its ID and UUID: a failover may hand a rolled-back
	// entry's ID to a new one.
	type entry struct{ id, uuid string }
	runs := map[entry][]Handling{}
	for _, h := range l.Handlings {
		v.HandlerRuns++
		key := Handling{UUID: h.UUID, Entry: h.Entry, Consumer: h.Consumer, Delivery: h.Delivery}
		if seen[key] {
			v.SameDelivery++
		}
		seen[key] = true
		deliveries[h.UUID]++
		e := entry{h.Entry, h.UUID}
		runs[e] = append(runs[e], h)
		if h.OK {
			successes[h.UUID]++
		} else {
			v.FailedRuns++
		}
	}
	a := newAttributor(l)
	for _, hs := range runs {
		n := 0
		for _, h := range hs {
			if h.OK {
				n++
			}
		}
		v.MaxHandled = max(v.MaxHandled, n)
		for _, d := range a.attribute(hs) {
			v.DeliveryDuplicates = append(v.DeliveryDuplicates, d)
			if d.Cause == "" {
				v.Unexplained = append(v.Unexplained, d)
			} else {
				v.ByCause[d.Cause]++
			}
		}
	}
	slices.SortFunc(v.Unexplained, func(x, y Duplicate) int { return x.Handling.At.Compare(y.Handling.At) })
	v.StreamEntries = len(l.Stream)
	entries := map[string]int{}
	for _, e := range l.Stream {
		entries[e.UUID]++
	}
	for u, n := range entries {
		if n > 1 {
			v.PublishDuplicates += n - 1
			v.PublishDuplicated = append(v.PublishDuplicated, u)
		}
	}
	dead := map[string]int{}
	for _, d := range l.DeadLetters {
		v.DeadLetters++
		dead[d.UUID]++
		if d.Reason == "" {
			v.NoReason = append(v.NoReason, d.UUID)
		}
		v.Reasons[reasonShape(d.Reason)]++
	}
	for _, n := range dead {
		v.DLQRepeats += n - 1
	}
	for u := range deliveries {
		if _, ok := class[u]; !ok {
			v.UnknownUUIDs++
		} else if !confirmed[u] && successes[u] > 0 {
			v.UnconfirmedHandled++
		}
	}
	for u := range confirmed {
		if class[u] == Good && deliveries[u] > 1 {
			v.Redelivered++
		}
		if class[u].Poison() {
			v.Poison++
			if dead[u] > 0 {
				v.PoisonInDLQ++
			} else {
				v.PoisonMissing = append(v.PoisonMissing, u)
			}
			if successes[u] > 0 {
				v.PoisonHandled = append(v.PoisonHandled, u)
			}
			continue
		}
		v.Good++
		n := successes[u]
		switch {
		case n > 0:
			v.Handled++
		case dead[u] > 0:
			v.GoodDeadLettered = append(v.GoodDeadLettered, u)
		default:
			v.Lost = append(v.Lost, u)
			v.LostByClass[string(class[u])]++
		}
	}
	for _, s := range [][]string{v.Lost, v.PoisonMissing, v.PoisonHandled, v.NoReason, v.GoodDeadLettered, v.PublishDuplicated} {
		sort.Strings(s)
	}
	return v
}

var deliveredN = regexp.MustCompile(`^delivered \d+ times`)

// reasonShape is a dead-letter reason with the delivery count as N, so
// that reasons group: "delivered N times, more than MaxDeliveries 5".
func reasonShape(r string) string {
	if r == "" {
		return "(none)"
	}
	return deliveredN.ReplaceAllString(r, "delivered N times")
}

// Complete reports whether every confirmed message is accounted for:
// handled, or, for poison, dead-lettered. A drain waits for it.
func (v Verdict) Complete() bool {
	return len(v.Lost) == 0 && len(v.PoisonMissing) == 0
}

// Failures lists what makes the run fail: a confirmed message lost, a
// poison message not dead-lettered or handled, a dead letter without a
// reason, a handled message nobody published. Unconfirmed messages and
// good messages dead-lettered by crashes are reported, not failures;
// duplicates fail a strict run (StrictFailures).
func (v Verdict) Failures() []string {
	var f []string
	add := func(what string, ids []string) {
		if len(ids) > 0 {
			f = append(f, fmt.Sprintf("%d %s: %s", len(ids), what, sample(ids)))
		}
	}
	add("confirmed messages lost (neither handled nor dead-lettered)", v.Lost)
	add("confirmed poison messages not in the dead-letter stream", v.PoisonMissing)
	add("poison messages handled successfully", v.PoisonHandled)
	add("dead letters without a reason", v.NoReason)
	if v.UnknownUUIDs > 0 {
		f = append(f, fmt.Sprintf("%d handled messages that were never published", v.UnknownUUIDs))
	}
	if v.Published == 0 || v.Good == 0 {
		f = append(f, "nothing was published and confirmed: the run checked nothing")
	}
	return f
}

// StrictFailures lists what fails a strict run besides Failures: an entry
// added twice for one Publish, a duplicate handling the run's faults do not
// explain, and a stream that could not be read to tell.
func (v Verdict) StrictFailures() []string {
	var f []string
	if v.StreamEntries == 0 && v.Confirmed > 0 {
		f = append(f, "the stream was not read after the run: publish-side duplicates unknown")
	}
	if v.PublishDuplicates > 0 {
		f = append(f, fmt.Sprintf("%d publish-side duplicates (entries beyond the first of a UUID): %s", v.PublishDuplicates, sample(v.PublishDuplicated)))
	}
	if len(v.Unexplained) > 0 {
		ids := make([]string, len(v.Unexplained))
		for i, d := range v.Unexplained {
			ids[i] = d.Entry
		}
		f = append(f, fmt.Sprintf("%d delivery-side duplicates without a cause (entry IDs): %s", len(ids), sample(ids)))
	}
	return f
}

// sample returns the first few of ids.
func sample(ids []string) string {
	const n = 10
	if len(ids) <= n {
		return strings.Join(ids, " ")
	}
	return strings.Join(ids[:n], " ") + " …"
}
