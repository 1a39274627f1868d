package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/millrace/millrace/admin"
)

// JSON view of a partitioned topic.

type partitionedJSON struct {
	Topic      string                 `json:"topic"`
	Partitions []topicJSON            `json:"partitions"`
	Groups     []partitionedGroupJSON `json:"groups"`
}

type partitionedGroupJSON struct {
	Name       string               `json:"name"`
	Lag        int64                `json:"lag"`
	LagSource  string               `json:"lag_source"`
	Pending    int64                `json:"pending"`
	Members    []memberJSON         `json:"members"`
	Partitions []partitionGroupJSON `json:"partitions"`
}

type partitionGroupJSON struct {
	Partition int        `json:"partition"`
	Owner     *string    `json:"owner"`
	Group     *groupJSON `json:"group"` // null where the group does not exist
}

type memberJSON struct {
	Name        string `json:"name"`
	Partitions  []int  `json:"partitions"`
	Of          int    `json:"of"`
	Leaving     bool   `json:"leaving"`
	ExpiresInMS int64  `json:"expires_in_ms"`
}

func toPartitionedJSON(p admin.PartitionedTopic) partitionedJSON {
	out := partitionedJSON{Topic: p.Topic, Partitions: []topicJSON{}, Groups: []partitionedGroupJSON{}}
	for _, s := range p.Partitions {
		out.Partitions = append(out.Partitions, toTopicJSON(s))
	}
	for _, g := range p.Groups {
		gj := partitionedGroupJSON{Name: g.Name, Lag: g.Lag, LagSource: string(g.LagSource), Pending: g.Pending,
			Members: []memberJSON{}, Partitions: []partitionGroupJSON{}}
		for _, m := range g.Members {
			gj.Members = append(gj.Members, memberJSON{Name: m.Name, Partitions: append([]int{}, m.Partitions...),
				Of: m.Of, Leaving: m.Leaving, ExpiresInMS: ms(m.ExpiresIn)})
		}
		for _, pg := range g.Partitions {
			pj := partitionGroupJSON{Partition: pg.Partition}
			if pg.Owner != "" {
				pj.Owner = &pg.Owner
			}
			if pg.Exists {
				stats := toGroupJSON(pg.Stats)
				pj.Group = &stats
			}
			gj.Partitions = append(gj.Partitions, pj)
		}
		out.Groups = append(out.Groups, gj)
	}
	return out
}

// statPartitioned shows topic as a partitioned topic of n partitions (0:
// counted) and reports true, or reports false when it has none.
func (a *app) statPartitioned(ctx context.Context, adm *admin.Admin, topic string, n int) (bool, error) {
	p, err := adm.Partitions(ctx, topic, n)
	if errors.Is(err, admin.ErrNotPartitioned) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	if a.json {
		return true, a.printJSON(toPartitionedJSON(p))
	}
	return true, a.printPartitioned(p)
}

func (a *app) printPartitioned(p admin.PartitionedTopic) error {
	var entries, deadLetters int64
	for _, s := range p.Partitions {
		entries += s.Length
		deadLetters += s.DeadLetters
	}
	last := len(p.Partitions) - 1
	if err := a.fields([][2]string{
		{"Topic", p.Topic},
		{"Partitions", fmt.Sprintf("%d (%s to %s)", len(p.Partitions), p.Partitions[0].Topic, p.Partitions[last].Topic)},
		{"Entries", fmt.Sprintf("%d in all partitions", entries)},
		{"Dead letters", fmt.Sprintf("%d in the partitions' dead-letter topics", deadLetters)},
	}); err != nil {
		return err
	}
	a.printf("\n")
	if len(p.Groups) == 0 {
		a.printf("No consumer groups.\n")
		return nil
	}
	var groups, parts, members [][]string
	for _, g := range p.Groups {
		unowned := 0
		for _, pg := range g.Partitions {
			if !pg.Exists {
				continue
			}
			if pg.Owner == "" {
				unowned++
			}
			s := pg.Stats
			oldestPending, oldestUndelivered := "-", "-"
			if s.OldestPendingID != "" {
				oldestPending = a.dur(s.OldestPendingAge)
			}
			if s.NextUndeliveredID != "" {
				oldestUndelivered = a.dur(s.OldestUndeliveredAge)
			}
			parts = append(parts, []string{g.Name, strconv.Itoa(pg.Partition), dash(pg.Owner), lagText(s), itoa(s.Pending), oldestPending, oldestUndelivered})
		}
		unownedText := strconv.Itoa(unowned)
		if len(g.Members) == 0 {
			unownedText = "-" // assigned by hand, if at all
		}
		lag := admin.GroupStats{Lag: g.Lag, LagSource: g.LagSource}
		groups = append(groups, []string{g.Name, lagText(lag), itoa(g.Pending), strconv.Itoa(len(g.Members)), unownedText})
		for _, m := range g.Members {
			owned := make([]string, len(m.Partitions))
			for i, n := range m.Partitions {
				owned[i] = strconv.Itoa(n)
			}
			state := "member"
			if m.Leaving {
				state = "leaving"
			}
			members = append(members, []string{g.Name, m.Name, dash(strings.Join(owned, ",")), state, a.dur(m.ExpiresIn)})
		}
	}
	if err := a.table([]string{"GROUP", "LAG", "PENDING", "MEMBERS", "UNOWNED"}, groups); err != nil {
		return err
	}
	a.printf("\n")
	if err := a.table([]string{"GROUP", "PARTITION", "OWNER", "LAG", "PENDING", "OLDEST PENDING", "OLDEST UNDELIVERED"}, parts); err != nil {
		return err
	}
	if len(members) > 0 {
		a.printf("\n")
		return a.table([]string{"GROUP", "MEMBER", "PARTITIONS", "STATE", "EXPIRES IN"}, members)
	}
	return nil
}
