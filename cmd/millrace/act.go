package main

import (
	"errors"
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
		Short: "Create, reset, delete, pause or resume a consumer group",
	}
	var (
		start       string
		forceCreate bool
		forceReset  bool
	)
	create := &cobra.Command{
		Use:   "create <topic> <group>",
		Short: "Create a consumer group (and the stream if missing)",
		Long: `Create a consumer group on a topic, starting at --start, so that messages
published from now on are kept for it even before its consumers run. The
stream is created if missing.

--start is ` + positionHelp + `.
A time starts the group at the first entry added at or after it. A position
after the stream's last entry and in the future is refused without --force.`,
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
			mv, err := adm.CreateGroupWith(ctx, argv[0], argv[1], id, admin.MoveOptions{Force: forceCreate})
			if err != nil {
				return forceHint(err)
			}
			if mv.After.LastDeliveredID == "" {
				// The user may not read the group's figures (ACL).
				return a.done(map[string]any{"topic": argv[0], "group": argv[1], "start": pos.String()},
					"Created group %s on topic %s at %s.\n", argv[1], argv[0], pos)
			}
			return a.done(map[string]any{"topic": argv[0], "group": argv[1], "start": pos.String(),
				"position": mv.After.LastDeliveredID, "lag": mv.After.Lag},
				"Created group %s on topic %s at %s: position %s, lag %s.\n", argv[1], argv[0], pos, mv.After.LastDeliveredID, lagText(mv.After))
		},
	}
	create.Flags().StringVar(&start, "start", "oldest", "where the group starts")
	create.Flags().BoolVar(&forceCreate, "force", false, "start the group beyond the stream's end (it skips the messages published until then)")

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
A time makes the group read the entries added at or after it. A position after
the stream's last entry and in the future is refused without --force: the group
would skip every message published until then.`,
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
			id := pos.id
			if id == "" {
				id = entryid.Before(pos.t)
			}
			mv, err := adm.MoveGroup(ctx, argv[0], argv[1], id, admin.MoveOptions{Force: forceReset})
			if err != nil {
				return forceHint(err)
			}
			b, f := mv.Before, mv.After
			if f.LastDeliveredID == "" {
				// The user may not read the group's figures (ACL).
				return a.done(map[string]any{"topic": argv[0], "group": argv[1], "to": pos.String()},
					"Reset group %s of topic %s to %s.\n", argv[1], argv[0], pos)
			}
			held := ""
			if f.Pending > 0 {
				held = fmt.Sprintf(" Its %d pending entries stay pending.", f.Pending)
			}
			return a.done(map[string]any{"topic": argv[0], "group": argv[1], "to": pos.String(),
				"from_position": b.LastDeliveredID, "position": f.LastDeliveredID,
				"lag_before": b.Lag, "lag": f.Lag, "pending": f.Pending},
				"Reset group %s of topic %s from %s to %s (lag %s → %s).%s\n",
				argv[1], argv[0], b.LastDeliveredID, f.LastDeliveredID, lagText(b), lagText(f), held)
		},
	}
	reset.Flags().StringVar(&to, "to", "", "the new position (required)")
	reset.Flags().BoolVar(&forceReset, "force", false, "move the group beyond the stream's end (it skips the messages published until then)")

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
			g, err := adm.Group(ctx, argv[0], argv[1])
			if errors.Is(err, admin.ErrNoSuchGroup) {
				return blameTopic(ctx, adm, argv[0], err)
			}
			known := err == nil // else the user may not read the group's figures (ACL)
			if err := adm.DeleteGroup(ctx, argv[0], argv[1]); err != nil {
				return err
			}
			if !known {
				return a.done(map[string]any{"topic": argv[0], "group": argv[1], "deleted": true},
					"Deleted group %s of topic %s.\n", argv[1], argv[0])
			}
			return a.done(map[string]any{"topic": argv[0], "group": argv[1], "deleted": true,
				"position": g.LastDeliveredID, "lag": g.Lag, "pending": g.Pending},
				"Deleted group %s of topic %s: it was at %s with lag %s and %d pending entries, no longer tracked.\n",
				argv[1], argv[0], g.LastDeliveredID, lagText(g), g.Pending)
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "confirm the deletion")
	cmd.AddCommand(create, reset, del, a.groupPauseCommand(), a.groupResumeCommand())
	return cmd
}

// forceHint adds to a refusal that --force overrides how to override it.
func forceHint(err error) error {
	if errors.Is(err, admin.ErrBeyondEnd) || errors.Is(err, admin.ErrWouldLoseEntries) {
		return fmt.Errorf("%w (--force)", err)
	}
	return err
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
				return blameTopic(ctx, adm, argv[0], err)
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
				return blameTopic(ctx, adm, argv[0], err)
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
		force  bool
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "trim <topic> (--maxlen N | --minid <id|time>) --yes",
		Short: "Delete a topic's oldest entries: keep the newest N, or those after an ID or time",
		Long: `Delete the oldest entries of a topic's stream (XTRIM): --maxlen keeps the newest
N entries, --minid deletes the entries before an entry ID or a time (RFC 3339,
Unix milliseconds, or a duration ago like 7d). With --approx Redis deletes only
whole nodes (MAXLEN ~ / MINID ~), much cheaper, keeping a few more.

Before deleting, trim works out the first entry it keeps and, per consumer
group, how many of the entries before it the group has not read (it would never
see them) or has not acknowledged (they stay pending with nothing left to
process). If any group would lose an entry, trim says so and deletes nothing
unless --force. --dry-run only says what a trim would delete. The deletion is
an XTRIM MINID at that first kept entry, so messages published meanwhile are
never deleted instead.`,
		Example: `  millrace trim orders --maxlen 1000000 --dry-run
  millrace trim orders --maxlen 1000000 --approx --yes
  millrace trim orders --minid 7d --yes --force`,
		Args: args(1, "<topic>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			hasMax, hasMin := cmd.Flags().Changed("maxlen"), minID != ""
			if hasMax == hasMin {
				return usageError{fmt.Errorf("give exactly one of --maxlen and --minid")}
			}
			if hasMax && maxLen < 0 {
				return usageError{fmt.Errorf("--maxlen must not be negative")}
			}
			opts := admin.TrimOptions{MaxLen: maxLen, Approx: approx, Force: force, DryRun: dryRun}
			if hasMin {
				pos, err := parsePosition(minID, a.now(), false)
				if err != nil {
					return usageError{fmt.Errorf("--minid: %w", err)}
				}
				opts.MaxLen, opts.MinID = -1, pos.minID()
			}
			if !yes && !dryRun {
				return usageError{fmt.Errorf("trimming deletes entries for good: pass --yes (or --dry-run to see what it would delete)")}
			}
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := adm.Trim(ctx, argv[0], opts)
			if err != nil && !errors.Is(err, admin.ErrWouldLoseEntries) {
				return err
			}
			refused := err != nil
			if a.json {
				type loss struct {
					Group   string `json:"group"`
					Unread  int64  `json:"unread"`
					Pending int64  `json:"pending"`
				}
				out := struct {
					Topic   string `json:"topic"`
					DryRun  bool   `json:"dry_run"`
					Refused bool   `json:"refused"`
					Cut     string `json:"first_kept_id,omitempty"`
					Deleted int64  `json:"deleted"`
					Losses  []loss `json:"losses"`
				}{Topic: argv[0], DryRun: dryRun, Refused: refused, Cut: res.Cut, Losses: []loss{}}
				if !refused {
					out.Deleted = res.Deleted
				}
				for _, l := range res.Losses {
					out.Losses = append(out.Losses, loss{l.Group, l.Unread, l.Pending})
				}
				if err := a.printJSON(out); err != nil {
					return err
				}
			} else {
				a.printTrim(argv[0], res, refused, approx)
			}
			if refused {
				return fmt.Errorf("deleted nothing: %d group(s) would lose entries they have not processed; pass --force to trim anyway", len(res.Losses))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&maxLen, "maxlen", 0, "keep the newest N entries")
	f.StringVar(&minID, "minid", "", "delete the entries before this entry ID or time")
	f.BoolVar(&approx, "approx", false, "trim whole nodes only (~): cheaper, keeps a few more")
	f.BoolVar(&yes, "yes", false, "confirm the deletion")
	f.BoolVar(&force, "force", false, "delete entries groups have not read or acknowledged")
	f.BoolVar(&dryRun, "dry-run", false, "say what the trim would delete, delete nothing")
	return cmd
}

// printTrim says what a trim deleted, would delete, or refused to.
func (a *app) printTrim(topic string, res admin.TrimResult, refused, approx bool) {
	switch {
	case res.Cut == "":
		a.printf("Deleted nothing from topic %s: it is not longer than that.\n", topic)
		return
	case refused:
		a.printf("Refused: trimming would delete %d entries of topic %s (those before %s), and:\n", res.Deleted, topic, res.Cut)
	case res.DryRun:
		a.printf("Would delete %d entries of topic %s (those before %s).\n", res.Deleted, topic, res.Cut)
	default:
		a.printf("Deleted %d entries of topic %s (those before %s).\n", res.Deleted, topic, res.Cut)
	}
	if len(res.Losses) == 0 {
		a.printf("No group loses an entry: every group had read and acknowledged them.\n")
		return
	}
	verb := "lost"
	switch {
	case refused || res.DryRun:
		verb = "would lose"
	case approx:
		verb = "lost up to"
	}
	for _, l := range res.Losses {
		a.printf("  group %s %s %d unread and %d pending (unacknowledged) entries\n", l.Group, verb, l.Unread, l.Pending)
	}
}
