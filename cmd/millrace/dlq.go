package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/admin"
)

func (a *app) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, replay or purge a topic's dead letters",
		Long: `Work with a topic's dead letters: the messages a consumer group gave up on after
MaxDeliveries deliveries, kept in the stream "{topic}:dlq" with the reason, the
group and consumer, the original entry ID and the delivery count.`,
	}
	cmd.AddCommand(a.dlqListCommand(), a.dlqShowCommand(), a.dlqReplayCommand(), a.dlqPurgeCommand())
	return cmd
}

type deadLetterJSON struct {
	ID         string            `json:"id"`
	Time       *string           `json:"time"`
	UUID       string            `json:"uuid"`
	Topic      string            `json:"topic"`
	Reason     string            `json:"reason"`
	LastError  string            `json:"last_error,omitempty"`
	Group      string            `json:"group"`
	Consumer   string            `json:"consumer"`
	OriginalID string            `json:"original_id"`
	Deliveries int64             `json:"deliveries"`
	Metadata   map[string]string `json:"metadata"`
	Payload    *string           `json:"payload,omitempty"`
	Base64     *string           `json:"payload_base64,omitempty"`
	Error      string            `json:"error,omitempty"`
}

func toDeadLetterJSON(d admin.DeadLetter) deadLetterJSON {
	j := deadLetterJSON{
		ID: d.ID, Time: jsonTime(d.Time), UUID: d.UUID, Topic: d.Topic, Reason: d.Reason, LastError: d.LastError,
		Group: d.Group, Consumer: d.Consumer, OriginalID: d.OriginalID, Deliveries: d.Deliveries,
		Metadata: d.Metadata, Error: d.DecodeError,
	}
	if j.Metadata == nil {
		j.Metadata = map[string]string{}
	}
	s, ok := payloadText(d.Payload)
	if ok {
		j.Payload = &s
	} else {
		j.Base64 = &s
	}
	return j
}

func (a *app) dlqListCommand() *cobra.Command {
	var (
		count  int64
		after  string
		filter dlqFilter
	)
	cmd := &cobra.Command{
		Use:   "list <topic>",
		Short: "List a topic's dead letters, oldest first",
		Example: `  millrace dlq list orders
  millrace dlq list orders --count 500 --json | jq -r '.[].reason' | sort | uniq -c`,
		Args: args(1, "<topic>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			letters, next, err := a.listDeadLetters(ctx, adm, argv[0], after, count, filter)
			if err != nil {
				return err
			}
			if a.json {
				out := []deadLetterJSON{}
				for _, d := range letters {
					out = append(out, toDeadLetterJSON(d))
				}
				a.nextPage(next)
				return a.printJSON(out)
			}
			if len(letters) == 0 {
				a.printf("No dead letters for topic %s.\n", argv[0])
				return nil
			}
			now := a.now()
			var rows [][]string
			for _, d := range letters {
				reason := d.Reason
				if d.DecodeError != "" {
					reason = "(cannot decode: " + d.DecodeError + ")"
				}
				rows = append(rows, []string{d.ID, a.dur(now.Sub(d.Time)), d.UUID, dash(d.Group), dash(d.OriginalID), itoa(d.Deliveries), dash(reason)})
			}
			err = a.table([]string{"ID", "AGE", "UUID", "GROUP", "ORIGINAL ID", "DELIVERIES", "REASON"}, rows)
			a.nextPage(next)
			return err
		},
	}
	cmd.Flags().Int64VarP(&count, "count", "n", 100, "list at most this many")
	cmd.Flags().StringVar(&after, "after", "", "list the dead letters after this ID (paging)")
	filter.register(cmd)
	return cmd
}

func (a *app) dlqShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "show <topic> <id>",
		Short:   "Show one dead letter: why it failed (and the handler's last error), its metadata and payload",
		Example: `  millrace dlq show orders 1714557600000-0`,
		Args:    args(2, "<topic>", "<id>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			d, err := adm.DeadLetter(ctx, argv[0], argv[1])
			if err != nil {
				return err
			}
			j := toDeadLetterJSON(d)
			if a.json {
				return a.printJSON(j)
			}
			dlqTime := "-"
			if !d.Time.IsZero() {
				dlqTime = a.ago(d.Time, a.now())
			}
			pairs := [][2]string{
				{"ID", d.ID}, {"Dead-lettered", dlqTime}, {"UUID", d.UUID}, {"Topic", dash(d.Topic)},
				{"Reason", dash(d.Reason)}, {"Last error", lastErrorText(d.LastError)},
				{"Group", dash(d.Group)}, {"Consumer", dash(d.Consumer)},
				{"Original ID", dash(d.OriginalID)}, {"Deliveries", itoa(d.Deliveries)},
			}
			if d.DecodeError != "" {
				pairs = append(pairs, [2]string{"Decode error", d.DecodeError})
			}
			if err := a.fields(pairs); err != nil {
				return err
			}
			a.printf("\nMetadata:\n")
			for _, k := range slices.Sorted(maps.Keys(d.Metadata)) {
				a.printf("  %s: %s\n", k, d.Metadata[k])
			}
			a.printf("\nPayload:\n")
			if j.Payload != nil {
				a.printf("%s\n", *j.Payload)
			} else {
				a.printf("(base64) %s\n", *j.Base64)
			}
			return nil
		},
	}
}

// lastErrorText is a handler's last error for a field of its own, or what
// to do to have one.
func lastErrorText(text string) string {
	if text == "" {
		return "- (none recorded: add millrace.RecordErrors to the Router)"
	}
	return text
}

func (a *app) dlqReplayCommand() *cobra.Command {
	var (
		ids      []string
		limit    int
		dryRun   bool
		to       string
		group    string
		progress string
		verbose  bool
	)
	cmd := &cobra.Command{
		Use:   "replay <topic>",
		Short: "Move dead letters back to their topic (all, some IDs, or the oldest N)",
		Long: `Move dead letters back to the topic they came from (their topic_poisoned
metadata, or --to), without the dead-letter metadata, as new entries at the end
of the stream. Each message moves atomically: it is added to the topic and
deleted from the dead-letter stream in one Lua script, so none is lost or
duplicated if the replay is interrupted or runs twice at once.

Every consumer group of the topic receives a replayed message, not only the
group that gave up on it, unless --group names the one that does: the others'
subscribers then acknowledge the message without handing it to their handlers
(subscribers older than this release deliver it anyway). The output names the
groups that will see the messages; --dry-run shows them first. Dead letters
added while the replay runs are left for the next one. Fix the cause first: a
message that fails again is dead-lettered again after MaxDeliveries.`,
		Example: `  millrace dlq replay orders --dry-run
  millrace dlq replay orders --group billing
  millrace dlq replay orders
  millrace dlq replay orders --id 1714557600000-0 --id 1714557600000-1
  millrace dlq replay orders --limit 10`,
		Args: args(1, "<topic>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if limit < 0 {
				return usageError{fmt.Errorf("--limit must not be negative")}
			}
			if progress != "auto" && progress != "always" && progress != "never" {
				return usageError{fmt.Errorf("--progress: want auto, always or never, got %q", progress)}
			}
			ctx := cmd.Context()
			c, err := a.redis(ctx)
			if err != nil {
				return err
			}
			var bar *progressbar.ProgressBar
			showBar := progress == "always" || (progress == "auto" && a.terminal(a.stderr))
			opts := admin.ReplayOptions{IDs: ids, Limit: limit, DryRun: dryRun, To: to, Group: group}
			opts.Progress = func(done, total int) {
				if !showBar || (progress == "auto" && total < 100) {
					return
				}
				if bar == nil {
					bar = progressbar.NewOptions(total,
						progressbar.OptionSetWriter(a.stderr),
						progressbar.OptionSetDescription("Replaying"),
						progressbar.OptionShowCount(),
						progressbar.OptionSetWidth(30),
						progressbar.OptionThrottle(100*time.Millisecond),
						progressbar.OptionClearOnFinish(),
					)
				}
				bar.ChangeMax(total)
				_ = bar.Set(done)
			}
			res, err := admin.New(c, admin.Options{}).ReplayDeadLetters(ctx, argv[0], opts)
			if bar != nil {
				_ = bar.Finish()
			}
			if a.json {
				type moved struct {
					DeadLetterID string `json:"dead_letter_id"`
					UUID         string `json:"uuid"`
					Topic        string `json:"topic"`
					NewID        string `json:"new_id,omitempty"`
				}
				type skipped struct {
					ID     string `json:"id"`
					Reason string `json:"reason"`
				}
				out := struct {
					DryRun   bool      `json:"dry_run"`
					Groups   []string  `json:"groups"`
					Replayed []moved   `json:"replayed"`
					Missing  []string  `json:"missing"`
					Skipped  []skipped `json:"skipped"`
					Error    string    `json:"error,omitempty"`
				}{DryRun: dryRun, Groups: []string{}, Replayed: []moved{}, Missing: []string{}, Skipped: []skipped{}}
				out.Groups = append(out.Groups, res.Groups...)
				for _, r := range res.Replayed {
					out.Replayed = append(out.Replayed, moved(r))
				}
				out.Missing = append(out.Missing, res.Missing...)
				for _, s := range res.Skipped {
					out.Skipped = append(out.Skipped, skipped(s))
				}
				if err != nil {
					out.Error = err.Error()
				}
				if perr := a.printJSON(out); perr != nil {
					return perr
				}
				return err
			}
			if dryRun || verbose {
				var rows [][]string
				for _, r := range res.Replayed {
					rows = append(rows, []string{r.DeadLetterID, r.UUID, r.Topic, dash(r.NewID)})
				}
				if len(rows) > 0 {
					if terr := a.table([]string{"DEAD LETTER", "UUID", "TO TOPIC", "NEW ID"}, rows); terr != nil {
						return terr
					}
				}
			}
			verb := "Replayed"
			if dryRun {
				verb = "Would replay"
			}
			a.printf("%s %d dead letter(s) of topic %s.\n", verb, len(res.Replayed), argv[0])
			if err == nil || res.Groups != nil {
				a.printf("%s\n", replayAudience(group, res.Groups))
			}
			if len(res.Missing) > 0 {
				a.printf("Not found (already replayed or purged?): %s\n", strings.Join(res.Missing, ", "))
			}
			for _, s := range res.Skipped {
				a.printf("Skipped %s: %s\n", s.ID, s.Reason)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&ids, "id", nil, "replay only this dead letter (repeatable)")
	f.IntVar(&limit, "limit", 0, "replay at most this many, oldest first (0 = all)")
	f.BoolVar(&dryRun, "dry-run", false, "show what would be replayed, change nothing")
	f.StringVar(&to, "to", "", "send the messages to this topic instead of their own")
	f.StringVar(&group, "group", "", "re-deliver to this consumer group only (default: every group of the topic)")
	f.StringVar(&progress, "progress", "auto", "progress bar on stderr: auto (a terminal and 100+ messages), always, never")
	f.BoolVarP(&verbose, "verbose", "v", false, "list every message replayed")
	return cmd
}

func (a *app) dlqPurgeCommand() *cobra.Command {
	var (
		ids []string
		yes bool
	)
	cmd := &cobra.Command{
		Use:   "purge <topic>",
		Short: "Delete dead letters for good (all with --yes, or some IDs)",
		Example: `  millrace dlq purge orders --id 1714557600000-0
  millrace dlq purge orders --yes`,
		Args: args(1, "<topic>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if len(ids) == 0 && !yes {
				return usageError{fmt.Errorf("purging every dead letter of topic %s deletes them for good: pass --yes, or select some with --id", argv[0])}
			}
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			n, err := adm.PurgeDeadLetters(ctx, argv[0], admin.PurgeOptions{IDs: ids})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]int64{"purged": n})
			}
			a.printf("Purged %d dead letter(s) of topic %s.\n", n, argv[0])
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&ids, "id", nil, "delete only this dead letter (repeatable)")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm deleting every dead letter")
	return cmd
}

// replayAudience says which groups a replay reaches.
func replayAudience(group string, groups []string) string {
	switch {
	case group != "":
		return "Groups that see them: " + group + " only (the other groups' subscribers acknowledge them unhandled)."
	case len(groups) == 0:
		return "Groups that see them: none yet (the topic has no consumer group)."
	default:
		return "Groups that see them: " + strings.Join(groups, ", ") + " (every group of the topic)."
	}
}
