package ui

import (
	"time"

	"github.com/millrace/millrace/admin"
)

// The JSON the pages read. Times are Unix milliseconds, durations
// milliseconds, rates entries per second (null when unknown).

type overviewJSON struct {
	Seq      uint64      `json:"seq"`
	At       int64       `json:"at"`
	Interval int64       `json:"intervalMs"`
	Error    string      `json:"error,omitempty"`
	Topics   []topicJSON `json:"topics"`
}

type topicJSON struct {
	Name            string      `json:"name"`
	Exists          bool        `json:"exists"`
	Length          int64       `json:"length"`
	FirstEntryID    string      `json:"firstEntryId"`
	FirstEntryAge   *int64      `json:"firstEntryAgeMs"`
	LastEntryID     string      `json:"lastEntryId"`
	LastEntryAge    *int64      `json:"lastEntryAgeMs"`
	LastGeneratedID string      `json:"lastGeneratedId"`
	Refused         int64       `json:"refused"`
	EntriesAdded    int64       `json:"entriesAdded"`
	DeadLetterTopic string      `json:"deadLetterTopic"`
	DeadLetters     int64       `json:"deadLetters"`
	Retention       string      `json:"retention"` // "trimmed", "never-trimmed" or "unknown"
	In              *float64    `json:"in"`
	Out             *float64    `json:"out"`
	Groups          []groupJSON `json:"groups"`
	Problems        []problem   `json:"problems"`
	Series          seriesJSON  `json:"series"`
}

type groupJSON struct {
	Name             string         `json:"name"`
	LastDeliveredID  string         `json:"lastDeliveredId"`
	EntriesRead      int64          `json:"entriesRead"`
	Lag              int64          `json:"lag"`
	LagSource        string         `json:"lagSource"`
	Pending          int64          `json:"pending"`
	OldestPendingID  string         `json:"oldestPendingId"`
	OldestPendingAge int64          `json:"oldestPendingAgeMs"`
	NextUnreadID     string         `json:"nextUnreadId"`
	OldestUnreadAge  int64          `json:"oldestUnreadAgeMs"`
	Out              *float64       `json:"out"`
	Dropped          int64          `json:"dropped"`
	Abandoned        bool           `json:"abandoned"`
	BeyondEnd        bool           `json:"beyondEnd"`
	Paused           bool           `json:"paused"`
	PausedSince      *int64         `json:"pausedSince"` // Unix ms of the last pause or resume, null when never
	Consumers        []consumerJSON `json:"consumers"`
}

type consumerJSON struct {
	Name     string `json:"name"`
	Pending  int64  `json:"pending"`
	Idle     int64  `json:"idleMs"`
	Inactive int64  `json:"inactiveMs"` // -1 when unknown
}

// seriesJSON are a topic's figures over time, one value per round.
type seriesJSON struct {
	T           []int64                    `json:"t"`
	In          []*float64                 `json:"in"`
	Out         []*float64                 `json:"out"`
	Length      []int64                    `json:"length"`
	DeadLetters []int64                    `json:"deadLetters"`
	Groups      map[string]groupSeriesJSON `json:"groups,omitempty"`
}

type groupSeriesJSON struct {
	Lag     []*int64   `json:"lag"`
	Pending []*int64   `json:"pending"`
	Out     []*float64 `json:"out"`
}

// rateWindow is how far back the current rates of the tables look.
const rateWindow = 30 * time.Second

func overview(snap snapshot, interval time.Duration, th Thresholds, span time.Duration) overviewJSON {
	out := overviewJSON{Seq: snap.seq, At: snap.at.UnixMilli(), Interval: interval.Milliseconds(), Topics: []topicJSON{}}
	if snap.err != nil {
		out.Error = snap.err.Error()
	}
	hist := since(snap.history, snap.at.Add(-span))
	for _, s := range snap.stats {
		out.Topics = append(out.Topics, topicView(s, snap, hist, th, false))
	}
	return out
}

// since returns the rounds at or after t.
func since(hist []round, t time.Time) []round {
	for k, r := range hist {
		if !r.at.Before(t) {
			return hist[k:]
		}
	}
	return nil
}

func topicView(s admin.TopicStats, snap snapshot, hist []round, th Thresholds, withGroups bool) topicJSON {
	t := topicJSON{
		Name: s.Topic, Exists: s.Exists, Length: s.Length,
		FirstEntryID: s.FirstEntryID, LastEntryID: s.LastEntryID, LastGeneratedID: s.LastGeneratedID,
		EntriesAdded: s.EntriesAdded, Refused: s.Refused,
		DeadLetterTopic: s.DeadLetterTopic, DeadLetters: s.DeadLetters,
		Retention: retention(s), Groups: []groupJSON{},
	}
	if s.FirstEntryID != "" {
		t.FirstEntryAge = ptr(max(s.Time.Sub(s.FirstEntryTime), 0).Milliseconds())
		t.LastEntryAge = ptr(max(s.Time.Sub(s.LastEntryTime), 0).Milliseconds())
	}
	recent := since(snap.history, snap.at.Add(-rateWindow))
	if len(recent) < 2 && len(snap.history) >= 2 {
		recent = snap.history[len(snap.history)-2:]
	}
	var outSum float64
	outKnown := false
	for _, g := range s.Groups {
		gj := groupJSON{
			Name: g.Name, LastDeliveredID: g.LastDeliveredID, EntriesRead: g.EntriesRead,
			Lag: g.Lag, LagSource: string(g.LagSource), Pending: g.Pending,
			OldestPendingID: g.OldestPendingID, OldestPendingAge: g.OldestPendingAge.Milliseconds(),
			NextUnreadID: g.NextUndeliveredID, OldestUnreadAge: g.OldestUndeliveredAge.Milliseconds(),
			Out: groupRate(recent, s.Topic, g.Name), Consumers: []consumerJSON{},
			Dropped: g.Dropped, Abandoned: g.Abandoned, BeyondEnd: g.BeyondEnd, Paused: g.Paused,
		}
		if !g.PausedSince.IsZero() {
			gj.PausedSince = ptr(g.PausedSince.UnixMilli())
		}
		if gj.Out != nil {
			outSum += *gj.Out
			outKnown = true
		}
		for _, c := range g.Consumers {
			gj.Consumers = append(gj.Consumers, consumerJSON{Name: c.Name, Pending: c.Pending, Idle: c.Idle.Milliseconds(), Inactive: durMS(c.Inactive)})
		}
		t.Groups = append(t.Groups, gj)
	}
	t.In = topicRate(recent, s.Topic)
	if outKnown {
		t.Out = &outSum
	}
	t.Problems = problems(s, snap.history, th)
	t.Series = series(hist, s.Topic, withGroups)
	return t
}

// retention says whether entries were ever removed from the stream:
// entries added (Redis 7.0+) above the length means trimming or deleting.
func retention(s admin.TopicStats) string {
	switch {
	case !s.Exists || s.EntriesAdded < 0:
		return "unknown"
	case s.EntriesAdded > s.Length:
		return "trimmed"
	}
	return "never-trimmed"
}

func durMS(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return d.Milliseconds()
}

func ptr[T any](v T) *T { return &v }

// rate is (b - a) per second between two rounds, nil when a counter is
// unknown (-1) or went down (a group moved with XGROUP SETID).
func rate(a, b int64, from, to time.Time) *float64 {
	dt := to.Sub(from).Seconds()
	if a < 0 || b < a || dt <= 0 {
		return nil
	}
	return ptr(float64(b-a) / dt)
}

// topicRate is the publish rate of topic between the first and last
// rounds of hist.
func topicRate(hist []round, topic string) *float64 {
	if len(hist) < 2 {
		return nil
	}
	a, okA := hist[0].topics[topic]
	b, okB := hist[len(hist)-1].topics[topic]
	if !okA || !okB {
		return nil
	}
	return rate(a.added, b.added, hist[0].at, hist[len(hist)-1].at)
}

// groupRate is the read rate of group between the first and last rounds
// of hist.
func groupRate(hist []round, topic, group string) *float64 {
	if len(hist) < 2 {
		return nil
	}
	a, okA := hist[0].topics[topic].groups[group]
	b, okB := hist[len(hist)-1].topics[topic].groups[group]
	if !okA || !okB {
		return nil
	}
	return rate(a.read, b.read, hist[0].at, hist[len(hist)-1].at)
}

// series are topic's figures in each round of hist; rates are between a
// round and the one before it.
func series(hist []round, topic string, withGroups bool) seriesJSON {
	s := seriesJSON{T: []int64{}, In: []*float64{}, Out: []*float64{}, Length: []int64{}, DeadLetters: []int64{}}
	if withGroups {
		s.Groups = map[string]groupSeriesJSON{}
		for _, r := range hist {
			for g := range r.topics[topic].groups {
				s.Groups[g] = groupSeriesJSON{}
			}
		}
	}
	for k, r := range hist {
		p, ok := r.topics[topic]
		if !ok {
			continue
		}
		s.T = append(s.T, r.at.UnixMilli())
		s.Length = append(s.Length, p.length)
		s.DeadLetters = append(s.DeadLetters, p.deadLetters)
		var in, out *float64
		if k > 0 {
			pair := hist[k-1 : k+1]
			in = topicRate(pair, topic)
			var sum float64
			for g := range p.groups {
				if r := groupRate(pair, topic, g); r != nil {
					sum += *r
					out = &sum
				}
			}
		}
		s.In = append(s.In, in)
		s.Out = append(s.Out, out)
		for name, gs := range s.Groups {
			var lag, pending *int64
			var gout *float64
			if g, ok := p.groups[name]; ok {
				lag, pending = ptr(g.lag), ptr(g.pending)
				if k > 0 {
					gout = groupRate(hist[k-1:k+1], topic, name)
				}
			}
			gs.Lag = append(gs.Lag, lag)
			gs.Pending = append(gs.Pending, pending)
			gs.Out = append(gs.Out, gout)
			s.Groups[name] = gs
		}
	}
	return s
}
