package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
)

// staleAfter is how old an entry every group has acknowledged may get
// before the retention check calls its stream unbounded: well past the
// publisher's default floor of an hour.
const staleAfter = 24 * time.Hour

// retention finds streams that grow without retention: their oldest entry
// is more than staleAfter old and every group has acknowledged it (or the
// stream has no group), so nothing trims them.
func (d *doctor) retention() check {
	ch := check{Name: "retention"}
	a := admin.New(d.c, admin.Options{})
	topics, err := a.Topics(d.ctx)
	if err == nil && len(topics) > 0 {
		var stats []admin.TopicStats
		stats, err = a.Stats(d.ctx, topics...)
		if err == nil {
			return retentionCheck(stats)
		}
	}
	if err != nil {
		ch.Status, ch.Detail = statusWarn, "cannot read the streams: "+err.Error()
		return ch
	}
	ch.Status, ch.Detail = statusOK, "no streams"
	return ch
}

func retentionCheck(stats []admin.TopicStats) check {
	ch := check{Name: "retention"}
	var stale []string
	for _, s := range stats {
		if !s.Exists || s.FirstEntryID == "" || s.Time.Sub(s.FirstEntryTime) < staleAfter || !acknowledgedByAll(s, s.FirstEntryID) {
			continue
		}
		desc := fmt.Sprintf("%s (%d entries, oldest %s ago", s.Topic, s.Length, humanDuration(s.Time.Sub(s.FirstEntryTime)))
		if s.Memory > 0 {
			desc += fmt.Sprintf(", %s", humanBytes(s.Memory))
		}
		stale = append(stale, desc+")")
	}
	if len(stale) == 0 {
		ch.Status = statusOK
		ch.Detail = fmt.Sprintf("no stream keeps entries every group acknowledged more than %s ago", humanDuration(staleAfter))
		return ch
	}
	ch.Status = statusWarn
	ch.Detail = fmt.Sprintf("%d stream(s) grow without retention, keeping entries every group acknowledged more than %s ago: %s",
		len(stale), humanDuration(staleAfter), strings.Join(stale, "; "))
	ch.Advice = "publish with a Retention (the zero Retention trims what every group acknowledged an hour ago), " +
		"or trim by hand: millrace trim TOPIC --minid ID"
	return ch
}

// acknowledgedByAll reports whether every group of s has read and
// acknowledged entry id (true without groups).
func acknowledgedByAll(s admin.TopicStats, id string) bool {
	for _, g := range s.Groups {
		if g.OldestPendingID != "" && entryid.Compare(g.OldestPendingID, id) <= 0 {
			return false
		}
		if entryid.Compare(g.LastDeliveredID, id) < 0 {
			return false
		}
	}
	return true
}

// humanBytes writes n in B, KB, MB or GB (powers of 1024).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n), []string{"KB", "MB", "GB", "TB"}
	i := -1
	for v >= unit && i < len(suffix)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, suffix[i])
}

// capacity finds what threatens or already cost messages at the topics'
// ceilings (millrace Retention.Ceiling): groups nobody reads any more, which
// hold every entry of their topic up to the ceiling; groups that lost
// entries to it; topics that refused messages; groups placed past the end
// of their stream, which skip every new message.
func (d *doctor) capacity() check {
	a := admin.New(d.c, admin.Options{})
	topics, err := a.Topics(d.ctx)
	var stats []admin.TopicStats
	if err == nil && len(topics) > 0 {
		stats, err = a.Stats(d.ctx, topics...)
	}
	if err != nil {
		return check{Name: "capacity", Status: statusWarn, Detail: "cannot read the streams: " + err.Error()}
	}
	return capacityCheck(stats)
}

func capacityCheck(stats []admin.TopicStats) check {
	ch := check{Name: "capacity", Status: statusOK}
	if len(stats) == 0 {
		ch.Detail = "no streams"
		return ch
	}
	var found, advice []string
	bad := false
	for _, s := range stats {
		if s.Refused > 0 {
			found = append(found, fmt.Sprintf("%s refused %d messages at its ceiling", s.Topic, s.Refused))
		}
		for _, g := range s.Groups {
			if g.BeyondEnd {
				bad = true
				found = append(found, fmt.Sprintf("group %s of %s is past the stream's end (at %s, last entry %s): it skips every new message",
					g.Name, s.Topic, g.LastDeliveredID, s.LastGeneratedID))
				advice = append(advice, fmt.Sprintf("millrace group reset %s %s --to <id|time>", s.Topic, g.Name))
			}
			if g.Abandoned {
				found = append(found, fmt.Sprintf("group %s of %s looks abandoned: %d entries unread, the oldest waiting %s, no consumer seen for as long",
					g.Name, s.Topic, g.Lag, humanDuration(g.OldestUndeliveredAge)))
				advice = append(advice, fmt.Sprintf("millrace group delete %s %s --yes", s.Topic, g.Name))
			}
			if g.Dropped > 0 {
				found = append(found, fmt.Sprintf("group %s of %s lost %d entries it had not read to the topic's ceiling", g.Name, s.Topic, g.Dropped))
			}
		}
	}
	if len(found) == 0 {
		ch.Detail = "no group is abandoned, past its stream's end, or lost entries to a ceiling; no topic refused messages"
		return ch
	}
	ch.Status = statusWarn
	if bad {
		ch.Status = statusFail
	}
	ch.Detail = strings.Join(found, "; ")
	ch.Advice = "delete the groups nobody will read again, move those past the end, or raise Retention.Ceiling"
	if len(advice) > 0 {
		ch.Advice += ": " + strings.Join(advice, "; ")
	}
	return ch
}
