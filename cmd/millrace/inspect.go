package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
)

// JSON views of the inspector's figures: durations in milliseconds, times
// in RFC 3339, unknowns as null.

type topicJSON struct {
	Topic           string      `json:"topic"`
	Exists          bool        `json:"exists"`
	Length          int64       `json:"length"`
	FirstEntryID    string      `json:"first_entry_id,omitempty"`
	FirstEntryTime  *string     `json:"first_entry_time"`
	LastEntryID     string      `json:"last_entry_id,omitempty"`
	LastEntryTime   *string     `json:"last_entry_time"`
	LastGeneratedID string      `json:"last_generated_id,omitempty"`
	EntriesAdded    *int64      `json:"entries_added"`
	DeadLetterTopic string      `json:"dead_letter_topic"`
	DeadLetters     int64       `json:"dead_letters"`
	Time            *string     `json:"time"`
	Groups          []groupJSON `json:"groups"`
}

type groupJSON struct {
	Name                   string         `json:"name"`
	LastDeliveredID        string         `json:"last_delivered_id"`
	EntriesRead            *int64         `json:"entries_read"`
	Lag                    int64          `json:"lag"`
	LagSource              string         `json:"lag_source"`
	Pending                int64          `json:"pending"`
	OldestPendingID        string         `json:"oldest_pending_id,omitempty"`
	OldestPendingAgeMS     *int64         `json:"oldest_pending_age_ms"`
	NextUndeliveredID      string         `json:"next_undelivered_id,omitempty"`
	OldestUndeliveredAgeMS *int64         `json:"oldest_undelivered_age_ms"`
	Dropped                int64          `json:"dropped"`
	Abandoned              bool           `json:"abandoned"`
	BeyondEnd              bool           `json:"beyond_end"`
	Paused                 bool           `json:"paused"`
	PausedSince            *string        `json:"paused_since"`
	Consumers              []consumerJSON `json:"consumers"`
}

type consumerJSON struct {
	Name       string `json:"name"`
	Pending    int64  `json:"pending"`
	IdleMS     int64  `json:"idle_ms"`
	InactiveMS *int64 `json:"inactive_ms"`
}

func optional(n int64, ok bool) *int64 {
	if !ok {
		return nil
	}
	return &n
}

func toTopicJSON(s admin.TopicStats) topicJSON {
	out := topicJSON{
		Topic: s.Topic, Exists: s.Exists, Length: s.Length,
		FirstEntryID: s.FirstEntryID, FirstEntryTime: jsonTime(s.FirstEntryTime),
		LastEntryID: s.LastEntryID, LastEntryTime: jsonTime(s.LastEntryTime),
		LastGeneratedID: s.LastGeneratedID, EntriesAdded: optional(s.EntriesAdded, s.EntriesAdded >= 0),
		DeadLetterTopic: s.DeadLetterTopic, DeadLetters: s.DeadLetters, Time: jsonTime(s.Time),
		Groups: []groupJSON{},
	}
	for _, g := range s.Groups {
		out.Groups = append(out.Groups, toGroupJSON(g))
	}
	return out
}

func toGroupJSON(g admin.GroupStats) groupJSON {
	gj := groupJSON{
		Name: g.Name, LastDeliveredID: g.LastDeliveredID, EntriesRead: optional(g.EntriesRead, g.EntriesRead >= 0),
		Lag: g.Lag, LagSource: string(g.LagSource), Pending: g.Pending,
		OldestPendingID: g.OldestPendingID, OldestPendingAgeMS: optional(ms(g.OldestPendingAge), g.OldestPendingID != ""),
		NextUndeliveredID: g.NextUndeliveredID, OldestUndeliveredAgeMS: optional(ms(g.OldestUndeliveredAge), g.NextUndeliveredID != ""),
		Dropped: g.Dropped, Abandoned: g.Abandoned, BeyondEnd: g.BeyondEnd, Paused: g.Paused, PausedSince: jsonTime(g.PausedSince),
		Consumers: []consumerJSON{},
	}
	for _, c := range g.Consumers {
		gj.Consumers = append(gj.Consumers, toConsumerJSON(c))
	}
	return gj
}

func toConsumerJSON(c admin.ConsumerStats) consumerJSON {
	return consumerJSON{Name: c.Name, Pending: c.Pending, IdleMS: ms(c.Idle), InactiveMS: optional(ms(c.Inactive), c.Inactive >= 0)}
}

// lagText is a group's lag for people: ">=1000" for a lower bound.
func lagText(g admin.GroupStats) string {
	if g.LagSource == admin.LagLowerBound {
		return ">=" + itoa(g.Lag)
	}
	return itoa(g.Lag)
}

func (a *app) topicsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "topics",
		Short: "List topics with their length, lag, pending entries and dead letters",
		Long: `List every topic of the database: each stream, and the topic of each dead-letter
stream, with its length, consumer groups, the largest lag of its groups, the
entries pending in all its groups and its dead letters.

Topics are found with SCAN ... TYPE stream, which walks the whole keyspace: on a
very large database prefer 'millrace stat <topic>'.`,
		Example: `  millrace topics
  millrace topics --json`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			topics, err := adm.Topics(ctx)
			if err != nil {
				return err
			}
			stats, err := adm.Stats(ctx, topics...)
			if err != nil {
				return err
			}
			type row struct {
				Topic         string  `json:"topic"`
				Exists        bool    `json:"exists"`
				Length        int64   `json:"length"`
				Groups        int     `json:"groups"`
				MaxLag        int64   `json:"max_lag"`
				Pending       int64   `json:"pending"`
				DeadLetters   int64   `json:"dead_letters"`
				LastEntryTime *string `json:"last_entry_time"`
			}
			rows := []row{}
			var table [][]string
			for _, s := range stats {
				r := row{Topic: s.Topic, Exists: s.Exists, Length: s.Length, Groups: len(s.Groups), DeadLetters: s.DeadLetters, LastEntryTime: jsonTime(s.LastEntryTime)}
				lag := "-"
				for _, g := range s.Groups {
					r.Pending += g.Pending
					if g.Lag >= r.MaxLag {
						r.MaxLag = g.Lag
						lag = lagText(g)
					}
				}
				rows = append(rows, r)
				length := itoa(s.Length)
				if !s.Exists {
					length = "(no stream)"
				}
				table = append(table, []string{s.Topic, length, itoa(int64(r.Groups)), lag, itoa(r.Pending), itoa(s.DeadLetters), a.ago(s.LastEntryTime, s.Time)})
			}
			if a.json {
				return a.printJSON(rows)
			}
			if len(rows) == 0 {
				a.printf("No topics (no stream in this database).\n")
				return nil
			}
			return a.table([]string{"TOPIC", "LENGTH", "GROUPS", "MAX LAG", "PENDING", "DEAD LETTERS", "NEWEST ENTRY"}, table)
		},
	}
}

func (a *app) statCommand() *cobra.Command {
	var partitions int
	cmd := &cobra.Command{
		Use:   "stat <topic>",
		Short: "Show a topic: length, groups with lag and pending entries, consumers, dead letters",
		Long: `Show one topic: its stream's length and oldest and newest entries, and for each
consumer group:

  LAG                 entries not read yet (Redis 7's figure; computed when Redis
                      has none, ">=1000" when the count stopped at its cap)
  PENDING             entries delivered but not acknowledged
  OLDEST PENDING      age of the oldest of those: a stuck message shows here
  OLDEST UNDELIVERED  age of the oldest entry not read yet: the queue latency
  CONSUMERS           with the entries each holds and its idle time

A partitioned topic (package partition: streams {topic#0}, {topic#1}, ...)
shows each group's lag and pending entries per partition, the member that owns
each partition and the group's live members. It is found when the topic's own
stream does not exist, or named with --partitions.

Only cheap commands are used (XINFO STREAM/GROUPS/CONSUMERS, XPENDING summary,
XRANGE COUNT 1), in one round trip (three for a partitioned topic): safe to
run in a loop.`,
		Example: `  millrace stat orders
  watch -n 2 millrace stat orders
  millrace stat orders --json | jq '.groups[] | {name, lag, pending}'
  millrace stat orders --partitions 12 --json | jq '.groups[].members'`,
		Args: args(1, "<topic>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			s, err := adm.Topic(ctx, argv[0])
			if err != nil {
				return err
			}
			if !s.Exists || partitions > 0 {
				if shown, err := a.statPartitioned(ctx, adm, s.Topic, partitions); shown || err != nil {
					return err
				}
			}
			if !s.Exists && s.DeadLetters == 0 {
				if err := topicMustExist(ctx, adm, s.Topic); err != nil {
					return err
				}
			}
			if a.json {
				return a.printJSON(toTopicJSON(s))
			}
			return a.printStat(s)
		},
	}
	cmd.Flags().IntVar(&partitions, "partitions", 0, "the topic's number of partitions (default: the partition streams found)")
	return cmd
}

func (a *app) printStat(s admin.TopicStats) error {
	stream := fmt.Sprintf("%d entries", s.Length)
	if s.Length == 1 {
		stream = "1 entry"
	}
	if !s.Exists {
		stream = "none (the topic's stream does not exist)"
	}
	pairs := [][2]string{{"Topic", s.Topic}, {"Stream", stream}}
	if s.Exists && s.Length > 0 {
		pairs = append(pairs,
			[2]string{"Oldest entry", s.FirstEntryID + "  " + a.ago(s.FirstEntryTime, s.Time)},
			[2]string{"Newest entry", s.LastEntryID + "  " + a.ago(s.LastEntryTime, s.Time)},
		)
	}
	pairs = append(pairs, [2]string{"Dead letters", fmt.Sprintf("%d in %s", s.DeadLetters, s.DeadLetterTopic)})
	if err := a.fields(pairs); err != nil {
		return err
	}
	if !s.Exists {
		return nil
	}
	a.printf("\n")
	if len(s.Groups) == 0 {
		a.printf("No consumer groups.\n")
		return nil
	}
	var rows, consumers [][]string
	for _, g := range s.Groups {
		oldestPending, oldestUndelivered := "-", "-"
		if g.OldestPendingID != "" {
			oldestPending = a.dur(g.OldestPendingAge)
		}
		if g.NextUndeliveredID != "" {
			oldestUndelivered = a.dur(g.OldestUndeliveredAge)
		}
		rows = append(rows, []string{g.Name, lagText(g), itoa(g.Pending), oldestPending, oldestUndelivered, itoa(int64(len(g.Consumers))), g.LastDeliveredID})
		for _, c := range g.Consumers {
			consumers = append(consumers, []string{g.Name, c.Name, itoa(c.Pending), a.dur(c.Idle)})
		}
	}
	if err := a.table([]string{"GROUP", "LAG", "PENDING", "OLDEST PENDING", "OLDEST UNDELIVERED", "CONSUMERS", "LAST DELIVERED"}, rows); err != nil {
		return err
	}
	a.printGroupStates(s)
	if len(consumers) > 0 {
		a.printf("\n")
		return a.table([]string{"GROUP", "CONSUMER", "PENDING", "IDLE"}, consumers)
	}
	return nil
}

// printGroupStates says which groups are paused, past the stream's end,
// abandoned, or lost entries to the topic's ceiling, with what to do.
func (a *app) printGroupStates(s admin.TopicStats) {
	for _, g := range s.Groups {
		if g.Paused {
			a.printf("! Group %s is paused since %s: its subscribers take no new entries ('millrace group resume %s %s').\n",
				g.Name, a.ago(g.PausedSince, s.Time), s.Topic, g.Name)
		}
		// A position after the last entry but before Redis's clock skips
		// nothing: new entries get later IDs.
		if g.BeyondEnd {
			a.printf("! Group %s is past the stream's end (at %s, last entry %s): it skips every message published until then ('millrace group reset %s %s --to newest').\n",
				g.Name, g.LastDeliveredID, dash(s.LastGeneratedID), s.Topic, g.Name)
		}
		if g.Abandoned {
			a.printf("! Group %s looks abandoned: %s entries wait and no consumer of it was seen for %s ('millrace group delete %s %s --yes' unless it is coming back).\n",
				g.Name, lagText(g), humanDuration(admin.DefaultAbandonedAfter), s.Topic, g.Name)
		}
		if g.Dropped > 0 {
			a.printf("! Group %s lost %d entries it had not read to the topic's ceiling.\n", g.Name, g.Dropped)
		}
	}
}

func (a *app) pendingCommand() *cobra.Command {
	var count int64
	cmd := &cobra.Command{
		Use:   "pending <topic> <group>",
		Short: "List a group's pending entries: owner, idle time, delivery count",
		Long: `List the entries a consumer group has received and not acknowledged, oldest
first, with the consumer that holds each, how long since it was delivered (IDLE),
how often Redis delivered it, and its age. Entries at a dead consumer are
reclaimed by live ones after their ClaimMinIdle; entries delivered more than
MaxDeliveries times go to the dead-letter stream. LAST ERROR is the error the
handler returned at the entry's last failed delivery (recorded when the Router
has millrace.RecordErrors).`,
		Example: `  millrace pending orders billing
  millrace pending orders billing --count 1000 --json`,
		Args: args(2, "<topic>", "<group>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			entries, err := adm.Pending(ctx, argv[0], argv[1], count)
			if err != nil {
				return blameTopic(ctx, adm, argv[0], err)
			}
			now := a.now()
			if a.json {
				type row struct {
					ID         string  `json:"id"`
					Consumer   string  `json:"consumer"`
					IdleMS     int64   `json:"idle_ms"`
					Deliveries int64   `json:"deliveries"`
					Time       *string `json:"time"`
					LastError  string  `json:"last_error,omitempty"`
				}
				rows := []row{}
				for _, e := range entries {
					t, _ := entryid.Time(e.ID)
					rows = append(rows, row{ID: e.ID, Consumer: e.Consumer, IdleMS: ms(e.Idle), Deliveries: e.Deliveries, Time: jsonTime(t), LastError: e.LastError})
				}
				return a.printJSON(rows)
			}
			if len(entries) == 0 {
				a.printf("No pending entries in group %s of topic %s.\n", argv[1], argv[0])
				return nil
			}
			var rows [][]string
			for _, e := range entries {
				t, _ := entryid.Time(e.ID)
				rows = append(rows, []string{e.ID, e.Consumer, a.dur(e.Idle), itoa(e.Deliveries), a.dur(now.Sub(t)), dash(cut(e.LastError, 60))})
			}
			return a.table([]string{"ID", "CONSUMER", "IDLE", "DELIVERIES", "AGE", "LAST ERROR"}, rows)
		},
	}
	cmd.Flags().Int64VarP(&count, "count", "n", 100, "list at most this many entries")
	return cmd
}

// cut shortens s to n runes, on one line, marking a cut with "…".
func cut(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// topicMustExist returns an error that names topic unless something of it
// exists (admin.TopicExists): a mistyped topic is not an empty one.
func topicMustExist(ctx context.Context, adm *admin.Admin, topic string) error {
	ok, err := adm.TopicExists(ctx, topic)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s (no stream, dead letters or delayed messages; 'millrace topics' lists the topics)", admin.ErrNoSuchTopic, topic)
	}
	return nil
}

// blameTopic turns a missing group's error into a missing topic's when
// nothing of the topic exists: Redis says "no such key or group" alike.
func blameTopic(ctx context.Context, adm *admin.Admin, topic string, err error) error {
	if !errors.Is(err, admin.ErrNoSuchGroup) || errors.Is(err, admin.ErrNoSuchTopic) {
		return err
	}
	if terr := topicMustExist(ctx, adm, topic); terr != nil {
		return terr
	}
	return err
}
