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
	problemDropped     = "dropped"      // Value: entries the ceiling trimmed unread by the group (all time); bad while growing
	problemAbandoned   = "abandoned"    // Value: lag; no consumer seen for AbandonedAfter
	problemBeyondEnd   = "beyond-end"   // the group's position is past the stream's end
	problemRefused     = "refused"      // Value: publishes refused at the ceiling (all time); bad while growing
	problemPaused      = "paused"       // Value: lag; From: paused since (Unix ms, 0 unknown)
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
	var window []round
	if len(hist) > 1 {
		if w := since(hist, hist[len(hist)-1].at.Add(-th.Window)); len(w) > 1 {
			window = w
		}
	}
	for _, g := range s.Groups {
		if g.Lag > 0 && g.OldestUndeliveredAge >= th.UnreadAge {
			out = append(out, problem{Kind: problemBehind, Level: "bad", Group: g.Name, Value: g.OldestUndeliveredAge.Milliseconds()})
		} else if from, ok := lagGrew(window, s.Topic, g.Name); ok {
			out = append(out, problem{Kind: problemLagGrowing, Level: "warn", Group: g.Name, From: from, Value: g.Lag, Span: span(window)})
		}
		if g.Pending > 0 && g.OldestPendingAge >= th.PendingAge {
			out = append(out, problem{Kind: problemOldPending, Level: "bad", Group: g.Name, Value: g.OldestPendingAge.Milliseconds()})
		}
		if g.Paused {
			p := problem{Kind: problemPaused, Level: "warn", Group: g.Name, Value: g.Lag}
			if !g.PausedSince.IsZero() {
				p.From = g.PausedSince.UnixMilli()
			}
			out = append(out, p)
		}
		if g.BeyondEnd {
			out = append(out, problem{Kind: problemBeyondEnd, Level: "bad", Group: g.Name})
		}
		if g.Abandoned {
			out = append(out, problem{Kind: problemAbandoned, Level: "bad", Group: g.Name, Value: g.Lag})
		}
		if g.Dropped > 0 {
			p := problem{Kind: problemDropped, Level: "warn", Group: g.Name, Value: g.Dropped}
			if window != nil {
				if then, ok := window[0].topics[s.Topic].groups[g.Name]; ok && g.Dropped > then.dropped {
					p.Level, p.From, p.Span = "bad", then.dropped, span(window)
				}
			}
			out = append(out, p)
		}
	}
	if s.Refused > 0 {
		p := problem{Kind: problemRefused, Level: "warn", Value: s.Refused}
		if window != nil {
			if then, ok := window[0].topics[s.Topic]; ok && s.Refused > then.refused {
				p.Level, p.From, p.Span = "bad", then.refused, span(window)
			}
		}
		out = append(out, p)
	}
	grew := false
	if window != nil {
		if then, ok := window[0].topics[s.Topic]; ok && s.DeadLetters > then.deadLetters {
			grew = true
			out = append(out, problem{Kind: problemDLQGrowing, Level: "bad", From: then.deadLetters, Value: s.DeadLetters, Span: span(window)})
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

func span(window []round) int64 { return window[len(window)-1].at.Sub(window[0].at).Milliseconds() }

// lagGrew reports whether the lag of group grew over the window: it stayed
// above its value at the start of the window for the last third of the
// window, so that one burst does not count. It returns that start value.
func lagGrew(window []round, topic, group string) (int64, bool) {
	if len(window) < 3 {
		return 0, false
	}
	first, ok := window[0].topics[topic].groups[group]
	if !ok {
		return 0, false
	}
	for _, r := range window[len(window)-max(len(window)/3, 1):] {
		g, ok := r.topics[topic].groups[group]
		if !ok || g.lag <= first.lag {
			return 0, false
		}
	}
	return first.lag, true
}
