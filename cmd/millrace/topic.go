package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
)

func (a *app) topicCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Delete a topic with everything of it",
	}
	var yes, force bool
	del := &cobra.Command{
		Use:   "delete <topic> --yes",
		Short: "Delete a topic: its stream, groups, dead letters, delayed messages and keys",
		Long: `Delete a topic and everything of it: its stream with its consumer groups, its
dead letters, its delayed messages and every auxiliary key (idempotency and
producer keys, consumer leases, last errors, pause state, overflow counts,
dead-letter markers); for a partitioned topic every partition with all of its
own and the groups' membership keys.

It is refused, deleting nothing, while a consumer group has pending entries
(messages delivered and not acknowledged) unless --force. Stop the topic's
publishers and subscribers first: a publisher adds a new stream, a running
subscriber recreates its group.`,
		Example: `  millrace topic delete old-orders --yes
  millrace topic delete old-orders --yes --force`,
		Args: args(1, "<topic>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if !yes {
				return usageError{fmt.Errorf("deleting topic %s deletes its messages, dead letters and groups for good: pass --yes", argv[0])}
			}
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := adm.DeleteTopic(ctx, argv[0], force)
			if errors.Is(err, admin.ErrWouldLoseEntries) {
				return fmt.Errorf("%w (--force)", err)
			}
			if err != nil {
				return err
			}
			if a.json {
				type group struct {
					Topic   string `json:"topic"`
					Name    string `json:"name"`
					Pending int64  `json:"pending"`
				}
				out := struct {
					Topic       string   `json:"topic"`
					Partitions  int      `json:"partitions"`
					Entries     int64    `json:"entries"`
					DeadLetters int64    `json:"dead_letters"`
					Delayed     int64    `json:"delayed"`
					Groups      []group  `json:"groups"`
					Keys        []string `json:"keys"`
				}{res.Topic, res.Partitions, res.Entries, res.DeadLetters, res.Delayed, []group{}, res.Keys}
				for _, g := range res.Groups {
					out.Groups = append(out.Groups, group{g.Topic, g.Name, g.Pending})
				}
				return a.printJSON(out)
			}
			parts := ""
			if res.Partitions > 0 {
				parts = fmt.Sprintf(" and its %d partitions", res.Partitions)
			}
			a.printf("Deleted topic %s%s: %d entries, %d dead letters, %d delayed messages, %d keys.\n",
				res.Topic, parts, res.Entries, res.DeadLetters, res.Delayed, len(res.Keys))
			for _, g := range res.Groups {
				a.printf("  group %s of %s deleted with %d pending entries\n", g.Name, g.Topic, g.Pending)
			}
			return nil
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "confirm the deletion")
	del.Flags().BoolVar(&force, "force", false, "delete even while groups have pending entries")
	cmd.AddCommand(del)
	return cmd
}

func (a *app) browseCommand() *cobra.Command {
	var (
		from, to, after string
		count           int64
		reverse         bool
	)
	cmd := &cobra.Command{
		Use:   "browse <topic>",
		Short: "Page through a topic's messages by entry ID or time",
		Long: `Print a page of a topic's messages, decoded like tail, between --from and --to
(entry IDs or times, both included; default the whole stream), oldest first or
newest first with --reverse. The last line (on stderr) gives the --after of the
next page. It reads with XRANGE/XREVRANGE: no group moves, nothing is
acknowledged. With --json it prints one JSON object per message.`,
		Example: `  millrace browse orders --from 2024-05-01T12:00:00Z --to 2024-05-01T13:00:00Z
  millrace browse orders --reverse -n 50
  millrace browse orders --from 1714557600000-0 --after 1714557600123-0`,
		Args: args(1, "<topic>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			q := admin.MessageQuery{Count: count, Reverse: reverse, After: after}
			if from != "" {
				pos, err := parsePosition(from, a.now(), false)
				if err != nil {
					return usageError{fmt.Errorf("--from: %w", err)}
				}
				q.Start = pos.minID()
			}
			if to != "" {
				pos, err := parsePosition(to, a.now(), false)
				if err != nil {
					return usageError{fmt.Errorf("--to: %w", err)}
				}
				q.End = pos.id
				if pos.id == "" {
					q.End = entryid.Before(pos.t)
				}
				if q.End == "0" {
					q.End = "0-0"
				}
			}
			if after != "" && !entryid.Valid(after) {
				return usageError{fmt.Errorf("--after: want an entry ID (the one the previous page named), got %q", after)}
			}
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			page, err := adm.BrowseMessages(ctx, argv[0], q)
			if err != nil {
				return err
			}
			for _, m := range page.Messages {
				if err := a.emitEntry(messageEntry(m)); err != nil {
					return err
				}
			}
			if len(page.Messages) == 0 && !a.json {
				a.printf("No messages of topic %s in that range.\n", argv[0])
			}
			a.nextPage(page.Next)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "first entry ID or time (RFC 3339, Unix ms, or a duration ago like 15m)")
	f.StringVar(&to, "to", "", "last entry ID, or the time before which to stop")
	f.StringVar(&after, "after", "", "continue after this entry ID (the previous page's last line)")
	f.Int64VarP(&count, "lines", "n", 20, "messages per page (at most 10000)")
	f.BoolVar(&reverse, "reverse", false, "newest first")
	return cmd
}

// messageEntry is a decoded admin.Message as tail prints it.
func messageEntry(m admin.Message) entryJSON {
	e := entryJSON{ID: m.ID, Time: jsonTime(m.Time), UUID: m.UUID, Metadata: m.Metadata, Error: m.DecodeError}
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	if m.DecodeError != "" {
		s := string(m.Payload)
		e.Payload = &s
		return e
	}
	setPayload(&e, m.Payload)
	return e
}
