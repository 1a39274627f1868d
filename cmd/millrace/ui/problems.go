package ui

import (
	"time"

	"github.com/millrace/millrace/admin"
)

// Thresholds say when a figure is a problem the pages point out.
type Thresholds struct {
	// UnreadAge: a group whose oldest unread entry has waited longer is
	// falling behind. Default: 1m.
	UnreadAge time.Duration
	// PendingAge: a group whose oldest pending entry is older holds a stuck
	// message. Default: 5m.
	PendingAge time.Duration
	// UntrimmedLength: a stream at least this long from which no entry was
	// ever removed (Redis 7.0+ counts entries added) has no retention.
	// Default: 10000.
	UntrimmedLength int64
	// Window is how far back growth (lag, dead letters) is measured.
	// Default: 5m, or the whole history when shorter.
	Window time.Duration
}

func (t *Thresholds) setDefaults() {
	if t.UnreadAge <= 0 {
		t.UnreadAge = time.Minute
	}
	if t.PendingAge <= 0 {
		t.PendingAge = 5 * time.Minute
	}
	if t.UntrimmedLength <= 0 {
		t.UntrimmedLength = 10000
	}
	if t.Window <= 0 {
		t.Window = 5 * time.Minute
	}
}

// Problem kinds; the pages phrase them.
const (
	problemBehind      = "behind"       // Value: oldest unread age (ms)
	problemLagGrowing  = "lag-growing"  // From → Value over Span
	problemOldPending  = "old-pending"  // Value: oldest pending age (ms)
	problemDLQGrowing  = "dlq-growing"  // From → Value over Span
	problemDeadLetters = "dead-letters" // Value: dead letters, not growing
	problemNoRetention = "no-retention" // Value: length, nothing ever removed
)

// problem is one thing on a topic that needs a look. Level "bad" needs
// action, "warn" attention.
type problem struct {
	Kind  string `json:"kind"`
	Level string `json:"level"`
	Group string `json:"group,omitempty"`
	Value int64  `json:"value"`
	From  int64  `json:"from"`
	Span  int64  `json:"spanMs,omitempty"`
}

func problems(s admin.TopicStats, hist []round, th Thresholds) []problem {
	out := []problem{}
	var base *round
	if len(hist) > 1 {
		newest := hist[len(hist)-1].at
		if w := since(hist, newest.Add(-th.Window)); len(w) > 1 {
			base = &w[0]
		}
	}
	span := func() int64 { return hist[len(hist)-1].at.Sub(base.at).Milliseconds() }
	for _, g := range s.Groups {
		if g.Lag > 0 && g.OldestUndeliveredAge >= th.UnreadAge {
			out = append(out, problem{Kind: problemBehind, Level: "bad", Group: g.Name, Value: g.OldestUndeliveredAge.Milliseconds()})
		} else if base != nil {
			if then, ok := base.topics[s.Topic].groups[g.Name]; ok && g.Lag > then.lag {
				out = append(out, problem{Kind: problemLagGrowing, Level: "warn", Group: g.Name, From: then.lag, Value: g.Lag, Span: span()})
			}
		}
		if g.Pending > 0 && g.OldestPendingAge >= th.PendingAge {
			out = append(out, problem{Kind: problemOldPending, Level: "bad", Group: g.Name, Value: g.OldestPendingAge.Milliseconds()})
		}
	}
	grew := false
	if base != nil {
		if then, ok := base.topics[s.Topic]; ok && s.DeadLetters > then.deadLetters {
			grew = true
			out = append(out, problem{Kind: problemDLQGrowing, Level: "bad", From: then.deadLetters, Value: s.DeadLetters, Span: span()})
		}
	}
	if !grew && s.DeadLetters > 0 {
		out = append(out, problem{Kind: problemDeadLetters, Level: "warn", Value: s.DeadLetters})
	}
	if retention(s) == "never-trimmed" && s.Length >= th.UntrimmedLength {
		out = append(out, problem{Kind: problemNoRetention, Level: "warn", Value: s.Length})
	}
	return out
}
