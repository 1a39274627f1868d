package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/streams"
)

func (a *app) publishCommand() *cobra.Command {
	var (
		file     string
		metadata []string
		uuid     string
	)
	cmd := &cobra.Command{
		Use:   "publish <topic> [payload]",
		Short: "Publish one message to a topic",
		Long: `Publish one message to a topic, in Millrace's wire format (the default
marshaler: UUID, payload, msgpack metadata), and print its entry ID. The payload
is the second argument, the contents of --file, or standard input with "-".`,
		Example: `  millrace publish orders '{"id": 42}'
  millrace publish orders -m trace_id=abc -m source=ops '{"id": 42}'
  millrace publish orders --file order.json
  echo hello | millrace publish orders -`,
		Args: func(cmd *cobra.Command, argv []string) error {
			if len(argv) < 1 || len(argv) > 2 || argv[0] == "" {
				return usageError{fmt.Errorf("want <topic> [payload]")}
			}
			if (len(argv) == 2) == (file != "") {
				return usageError{fmt.Errorf("give the payload as an argument or with --file, not both or neither")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			var payload []byte
			var err error
			switch {
			case file != "":
				payload, err = os.ReadFile(file)
			case argv[1] == "-":
				payload, err = io.ReadAll(a.stdin)
			default:
				payload = []byte(argv[1])
			}
			if err != nil {
				return fmt.Errorf("cannot read the payload: %w", err)
			}
			if uuid == "" {
				uuid = watermill.NewUUID()
			}
			msg := message.NewMessage(uuid, payload)
			for _, kv := range metadata {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--metadata %q: want key=value", kv)}
				}
				msg.Metadata.Set(k, v)
			}
			fields, err := millrace.DefaultMarshaler{}.Marshal(argv[0], msg)
			if err != nil {
				return err
			}
			ctx, c, cancel, err := a.call(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: argv[0], Values: streams.Flatten(fields)}).Result()
			if err != nil {
				return fmt.Errorf("cannot publish to topic %s: %w", argv[0], err)
			}
			if a.json {
				return a.printJSON(map[string]string{"topic": argv[0], "id": id, "uuid": uuid})
			}
			a.printf("Published message %s to topic %s as entry %s.\n", uuid, argv[0], id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "F", "", "read the payload from this file")
	f.StringArrayVarP(&metadata, "metadata", "m", nil, "metadata key=value (repeatable)")
	f.StringVar(&uuid, "uuid", "", "message UUID (default: a new UUID)")
	return cmd
}

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
		ID: d.ID, Time: jsonTime(d.Time), UUID: d.UUID, Topic: d.Topic, Reason: d.Reason,
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
		count int64
		after string
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
			letters, err := adm.DeadLetters(ctx, argv[0], admin.DeadLetterQuery{After: after, Count: count})
			if err != nil {
				return err
			}
			if a.json {
				out := []deadLetterJSON{}
				for _, d := range letters {
					out = append(out, toDeadLetterJSON(d))
				}
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
			return a.table([]string{"ID", "AGE", "UUID", "GROUP", "ORIGINAL ID", "DELIVERIES", "REASON"}, rows)
		},
	}
	cmd.Flags().Int64VarP(&count, "count", "n", 100, "list at most this many")
	cmd.Flags().StringVar(&after, "after", "", "list the dead letters after this ID (paging)")
	return cmd
}

func (a *app) dlqShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "show <topic> <id>",
		Short:   "Show one dead letter: why it failed, its metadata and payload",
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
				{"Reason", dash(d.Reason)}, {"Group", dash(d.Group)}, {"Consumer", dash(d.Consumer)},
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

func (a *app) dlqReplayCommand() *cobra.Command {
	var (
		ids      []string
		limit    int
		dryRun   bool
		to       string
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
group that gave up on it. Dead letters added while the replay runs are left for
the next one. Fix the cause first: a message that fails again is dead-lettered
again after MaxDeliveries.`,
		Example: `  millrace dlq replay orders --dry-run
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
			opts := admin.ReplayOptions{IDs: ids, Limit: limit, DryRun: dryRun, To: to}
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
					Replayed []moved   `json:"replayed"`
					Missing  []string  `json:"missing"`
					Skipped  []skipped `json:"skipped"`
					Error    string    `json:"error,omitempty"`
				}{DryRun: dryRun, Replayed: []moved{}, Missing: []string{}, Skipped: []skipped{}}
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

func (a *app) groupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Create, reset or delete a consumer group",
	}
	var start string
	create := &cobra.Command{
		Use:   "create <topic> <group>",
		Short: "Create a consumer group (and the stream if missing)",
		Long: `Create a consumer group on a topic, starting at --start, so that messages
published from now on are kept for it even before its consumers run. The
stream is created if missing.

--start is ` + positionHelp + `.
A time starts the group at the first entry added at or after it.`,
		Example: `  millrace group create orders billing
  millrace group create orders audit --start newest`,
		Args: args(2, "<topic>", "<group>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			pos, err := parsePosition(start, a.now(), true)
			if err != nil {
				return usageError{fmt.Errorf("--start: %w", err)}
			}
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			id := pos.id
			if id == "" {
				id = entryid.Before(pos.t)
			}
			if err := adm.CreateGroup(ctx, argv[0], argv[1], id); err != nil {
				return err
			}
			return a.done(map[string]string{"topic": argv[0], "group": argv[1], "start": pos.String()},
				"Created group %s on topic %s at %s.\n", argv[1], argv[0], pos)
		},
	}
	create.Flags().StringVar(&start, "start", "oldest", "where the group starts")

	var to string
	reset := &cobra.Command{
		Use:   "reset <topic> <group> --to <id|time>",
		Short: "Move a group back (replay) or forward (skip) to an entry ID or a time",
		Long: `Move a consumer group so that its next read returns the entries after --to
(XGROUP SETID): back to process messages again, forward to skip a backlog.
Entries already pending stay pending. Consumers running meanwhile pick up the
new position on their next read.

--to is ` + positionHelp + `.
A time makes the group read the entries added at or after it.`,
		Example: `  millrace group reset orders billing --to 2024-05-01T12:00:00Z
  millrace group reset orders billing --to 2h
  millrace group reset orders billing --to newest`,
		Args: args(2, "<topic>", "<group>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if to == "" {
				return usageError{fmt.Errorf("--to is required")}
			}
			pos, err := parsePosition(to, a.now(), true)
			if err != nil {
				return usageError{fmt.Errorf("--to: %w", err)}
			}
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			if pos.id != "" {
				err = adm.ResetGroup(ctx, argv[0], argv[1], pos.id)
			} else {
				err = adm.ResetGroupToTime(ctx, argv[0], argv[1], pos.t)
			}
			if err != nil {
				return err
			}
			return a.done(map[string]string{"topic": argv[0], "group": argv[1], "to": pos.String()},
				"Reset group %s of topic %s to %s.\n", argv[1], argv[0], pos)
		},
	}
	reset.Flags().StringVar(&to, "to", "", "the new position (required)")

	var yes bool
	del := &cobra.Command{
		Use:   "delete <topic> <group> --yes",
		Short: "Delete a consumer group and its pending entries list",
		Long: `Delete a consumer group (XGROUP DESTROY). Its pending entries list goes with it:
messages it had not acknowledged are no longer tracked for it. Running
subscribers of the group recreate it at their NewGroupStartID.`,
		Example: `  millrace group delete orders old-billing --yes`,
		Args:    args(2, "<topic>", "<group>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if !yes {
				return usageError{fmt.Errorf("deleting group %s drops its position and pending entries: pass --yes", argv[1])}
			}
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			if err := adm.DeleteGroup(ctx, argv[0], argv[1]); err != nil {
				return err
			}
			return a.done(map[string]string{"topic": argv[0], "group": argv[1], "deleted": "true"},
				"Deleted group %s of topic %s.\n", argv[1], argv[0])
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "confirm the deletion")
	cmd.AddCommand(create, reset, del)
	return cmd
}

// done prints a confirmation: v as JSON, or the formatted line.
func (a *app) done(v any, format string, args ...any) error {
	if a.json {
		return a.printJSON(v)
	}
	a.printf(format, args...)
	return nil
}

func (a *app) consumersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consumers",
		Short: "List a group's consumers or prune the dead ones",
	}
	list := &cobra.Command{
		Use:     "list <topic> <group>",
		Short:   "List a group's consumers with their pending entries and idle time",
		Example: `  millrace consumers list orders billing`,
		Args:    args(2, "<topic>", "<group>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			consumers, err := adm.Consumers(ctx, argv[0], argv[1])
			if err != nil {
				return err
			}
			if a.json {
				out := []consumerJSON{}
				for _, c := range consumers {
					out = append(out, toConsumerJSON(c))
				}
				return a.printJSON(out)
			}
			if len(consumers) == 0 {
				a.printf("Group %s of topic %s has no consumers.\n", argv[1], argv[0])
				return nil
			}
			var rows [][]string
			for _, c := range consumers {
				rows = append(rows, []string{c.Name, itoa(c.Pending), a.dur(c.Idle)})
			}
			return a.table([]string{"CONSUMER", "PENDING", "IDLE"}, rows)
		},
	}
	var (
		idle   time.Duration
		dryRun bool
	)
	prune := &cobra.Command{
		Use:   "prune <topic> <group> --idle <duration>",
		Short: "Delete consumers idle for --idle that hold no pending entry",
		Long: `Delete the consumers of a group that have been idle for at least --idle and hold
no pending entry: subscribers that crashed or were scaled away under generated
names. The check and the deletion run in one Lua script, so a pending entry is
never dropped (XGROUP DELCONSUMER would drop it). Idle consumers that still hold
entries are listed and kept: live consumers reclaim those entries after their
ClaimMinIdle, and a later prune removes them.

From Redis 7.2 on, every read, even an empty one, resets a consumer's idle time,
so a long idle time means a dead consumer. Before 7.2 only reads that returned
entries do: choose --idle well above the quietest period of the topic.`,
		Example: `  millrace consumers prune orders billing --idle 24h --dry-run
  millrace consumers prune orders billing --idle 24h`,
		Args: args(2, "<topic>", "<group>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if idle <= 0 {
				return usageError{fmt.Errorf("--idle is required and must be positive, e.g. --idle 24h")}
			}
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := adm.PruneConsumers(ctx, argv[0], argv[1], admin.PruneOptions{Idle: idle, DryRun: dryRun})
			if err != nil {
				return err
			}
			if a.json {
				type kept struct {
					Name    string `json:"name"`
					Pending int64  `json:"pending"`
					IdleMS  int64  `json:"idle_ms"`
				}
				out := struct {
					DryRun  bool     `json:"dry_run"`
					Removed []string `json:"removed"`
					Kept    []kept   `json:"kept"`
				}{DryRun: dryRun, Removed: append([]string{}, res.Removed...), Kept: []kept{}}
				for _, k := range res.Kept {
					out.Kept = append(out.Kept, kept{Name: k.Name, Pending: k.Pending, IdleMS: ms(k.Idle)})
				}
				return a.printJSON(out)
			}
			verb := "Removed"
			if dryRun {
				verb = "Would remove"
			}
			if len(res.Removed) == 0 {
				a.printf("%s no consumer: none idle for %s without pending entries.\n", verb, idle)
			} else {
				a.printf("%s %d consumer(s) idle for %s or more: %s\n", verb, len(res.Removed), idle, strings.Join(res.Removed, ", "))
			}
			for _, k := range res.Kept {
				a.printf("Kept %s: idle %s but holds %d pending entries (live consumers reclaim them after ClaimMinIdle).\n", k.Name, a.dur(k.Idle), k.Pending)
			}
			return nil
		},
	}
	prune.Flags().DurationVar(&idle, "idle", 0, "minimum idle time of a consumer to delete (required), e.g. 24h")
	prune.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be deleted, change nothing")
	cmd.AddCommand(list, prune)
	return cmd
}

func (a *app) trimCommand() *cobra.Command {
	var (
		maxLen int64
		minID  string
		approx bool
		yes    bool
	)
	cmd := &cobra.Command{
		Use:   "trim <topic> (--maxlen N | --minid <id|time>) --yes",
		Short: "Delete a topic's oldest entries: keep the newest N, or those after an ID or time",
		Long: `Delete the oldest entries of a topic's stream (XTRIM): --maxlen keeps the newest
N entries, --minid deletes the entries before an entry ID or a time (RFC 3339,
Unix milliseconds, or a duration ago like 7d). With --approx Redis deletes only
whole nodes (MAXLEN ~ / MINID ~), much cheaper, keeping a few more entries.

Trimming deletes entries whether or not every group has read them: check
'millrace stat' first. Entries still pending stay in the groups' pending lists
and are acknowledged when their consumers get to them.`,
		Example: `  millrace trim orders --maxlen 1000000 --approx --yes
  millrace trim orders --minid 7d --yes`,
		Args: args(1, "<topic>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			hasMax, hasMin := cmd.Flags().Changed("maxlen"), minID != ""
			if hasMax == hasMin {
				return usageError{fmt.Errorf("give exactly one of --maxlen and --minid")}
			}
			if hasMax && maxLen < 0 {
				return usageError{fmt.Errorf("--maxlen must not be negative")}
			}
			var pos position
			if hasMin {
				var err error
				if pos, err = parsePosition(minID, a.now(), false); err != nil {
					return usageError{fmt.Errorf("--minid: %w", err)}
				}
			}
			if !yes {
				return usageError{fmt.Errorf("trimming deletes entries for good, read or not: pass --yes")}
			}
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var n int64
			if hasMax {
				n, err = adm.TrimMaxLen(ctx, argv[0], maxLen, approx)
			} else {
				n, err = adm.TrimMinID(ctx, argv[0], pos.minID(), approx)
			}
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"topic": argv[0], "deleted": n})
			}
			a.printf("Deleted %d entries from topic %s.\n", n, argv[0])
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&maxLen, "maxlen", 0, "keep the newest N entries")
	f.StringVar(&minID, "minid", "", "delete the entries before this entry ID or time")
	f.BoolVar(&approx, "approx", false, "trim whole nodes only (~): cheaper, keeps a few more")
	f.BoolVar(&yes, "yes", false, "confirm the deletion")
	return cmd
}
