package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
)

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
new position on their next read. On Redis 7.0+ the lag Redis reports (XINFO
GROUPS, what autoscalers such as KEDA read) is the entries after --to at once.

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
