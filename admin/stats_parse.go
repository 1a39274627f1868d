package admin

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/pause"
	"github.com/millrace/millrace/internal/reply"
)

func (a *Admin) parseTopics(topics []string, raws []rawTopic) ([]TopicStats, error) {
	out := make([]TopicStats, len(topics))
	for k, t := range topics {
		s, err := parseTopic(t, a.deadLetterTopic(t), raws[k], a.opts.AbandonedAfter)
		if err != nil {
			return nil, fmt.Errorf("cannot read topic %s: %w", t, err)
		}
		out[k] = s
	}
	return out, nil
}

func parseTopic(topic, deadLetterTopic string, raw rawTopic, abandonedAfter time.Duration) (TopicStats, error) {
	s := TopicStats{
		Topic:           topic,
		DeadLetterTopic: deadLetterTopic,
		DeadLetters:     raw.dlq,
		EntriesAdded:    -1,
		Time:            reply.Time(raw.now),
	}
	s.Refused, _ = strconv.ParseInt(raw.overflow[keys.OverflowRefused], 10, 64)
	if raw.info == nil {
		return s, nil
	}
	info := reply.Map(raw.info)
	s.Exists = true
	s.Memory = raw.memory
	s.Length, _ = reply.Int(info["length"])
	s.LastGeneratedID = reply.String(info["last-generated-id"])
	if n, ok := reply.Int(info["entries-added"]); ok {
		s.EntriesAdded = n
	}
	s.FirstEntryID = reply.String(info["first-entry"])
	s.LastEntryID = reply.String(info["last-entry"])
	s.FirstEntryTime, _ = entryid.Time(s.FirstEntryID)
	s.LastEntryTime, _ = entryid.Time(s.LastEntryID)
	for _, g := range raw.groups {
		parts, _ := g.([]interface{})
		if len(parts) != 5 && len(parts) != 6 {
			return s, fmt.Errorf("unexpected group reply %v", g)
		}
		g := parseGroup(s, parts, raw.countCap)
		if len(parts) == 6 {
			if st, ok := pause.FromReply(parts[5]); ok {
				g.Paused, g.PausedSince = st.Paused, st.Since
			}
		}
		g.Dropped, _ = strconv.ParseInt(raw.overflow[keys.OverflowDropped+g.Name], 10, 64)
		g.Abandoned = abandoned(g, abandonedAfter)
		g.BeyondEnd = PositionBeyondEnd(g.LastDeliveredID, s.LastGeneratedID, s.Time)
		s.Groups = append(s.Groups, g)
	}
	slices.SortFunc(s.Groups, func(a, b GroupStats) int { return strings.Compare(a.Name, b.Name) })
	return s, nil
}

func parseGroup(s TopicStats, parts []interface{}, countCap int64) GroupStats {
	info := reply.Map(parts[0])
	g := GroupStats{
		Name:              reply.String(info["name"]),
		LastDeliveredID:   reply.String(info["last-delivered-id"]),
		EntriesRead:       -1,
		NextUndeliveredID: reply.String(parts[3]),
	}
	if n, ok := reply.Int(info["entries-read"]); ok {
		g.EntriesRead = n
	}
	g.Pending, _ = reply.Int(info["pending"])

	counted, hasCount := reply.Int(parts[4])
	lag, hasLag := reply.Int(info["lag"])
	switch {
	case hasLag:
		g.Lag, g.LagSource = lag, LagReported
	case g.NextUndeliveredID == "":
		g.Lag, g.LagSource = 0, LagComputed
	case s.FirstEntryID != "" && entryid.Compare(g.LastDeliveredID, s.FirstEntryID) < 0:
		g.Lag, g.LagSource = s.Length, LagComputed
	case hasCount && counted < countCap:
		g.Lag, g.LagSource = counted, LagComputed
	default:
		g.Lag, g.LagSource = counted, LagLowerBound
	}

	if summary, ok := parts[1].([]interface{}); ok && len(summary) >= 2 {
		if id := reply.String(summary[1]); id != "" {
			g.OldestPendingID = id
			g.OldestPendingAge = ageAt(s.Time, id)
		}
	}
	if g.NextUndeliveredID != "" {
		g.OldestUndeliveredAge = ageAt(s.Time, g.NextUndeliveredID)
	}
	consumers, _ := parts[2].([]interface{})
	for _, c := range consumers {
		m := reply.Map(c)
		cs := ConsumerStats{Name: reply.String(m["name"]), Inactive: -1}
		cs.Pending, _ = reply.Int(m["pending"])
		if ms, ok := reply.Int(m["idle"]); ok {
			cs.Idle = time.Duration(ms) * time.Millisecond
		}
		if ms, ok := reply.Int(m["inactive"]); ok && ms >= 0 {
			cs.Inactive = time.Duration(ms) * time.Millisecond
		}
		g.Consumers = append(g.Consumers, cs)
	}
	slices.SortFunc(g.Consumers, func(a, b ConsumerStats) int { return strings.Compare(a.Name, b.Name) })
	return g
}

// abandoned reports whether g has entries that waited at least after while
// none of its consumers was seen for as long. A paused group is not: its
// backlog is meant.
func abandoned(g GroupStats, after time.Duration) bool {
	if g.Paused || g.Lag <= 0 || g.OldestUndeliveredAge < after {
		return false
	}
	for _, c := range g.Consumers {
		if c.Idle < after { // from Redis 7.2 on, any read counts, an empty one too
			return false
		}
	}
	return true
}

// ageAt is how old the entry id was at now, never negative.
func ageAt(now time.Time, id string) time.Duration {
	t, ok := entryid.Time(id)
	if !ok || now.IsZero() {
		return 0
	}
	return max(now.Sub(t), 0)
}
