package main

import (
	"github.com/spf13/cobra"
)

// groupPauseCommand is `millrace group pause`.
func (a *app) groupPauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "pause <topic> <group>",
		Short: "Pause a consumer group: its subscribers take no new entries until resumed",
		Long: `Pause a consumer group. Within a second its subscribers stop taking new entries
(and stop taking over other consumers' idle ones); they finish and acknowledge the
entries they hold. Messages published meanwhile wait: the group's lag grows.
The pause is kept in Redis ("{topic}:paused:<len>:<group>") and holds across
restarts of the subscribers until 'millrace group resume'. Subscribers need to
read that key (XREVRANGE, and XREAD while paused).`,
		Example: `  millrace group pause orders billing`,
		Args:    args(2, "<topic>", "<group>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			changed, err := adm.PauseGroup(ctx, argv[0], argv[1])
			if err != nil {
				return err
			}
			g, err := adm.Group(ctx, argv[0], argv[1])
			if err != nil {
				// A partitioned topic: paused on every partition.
				format := "Paused group %s of partitioned topic %s on every partition.\n"
				if !changed {
					format = "Group %s of partitioned topic %s was paused already.\n"
				}
				return a.done(map[string]any{"topic": argv[0], "group": argv[1], "paused": true, "changed": changed},
					format, argv[1], argv[0])
			}
			format := "Paused group %s of topic %s (lag %s, %d pending entries to finish).\n"
			if !changed {
				format = "Group %s of topic %s was paused already (lag %s, %d pending entries).\n"
			}
			return a.done(map[string]any{"topic": argv[0], "group": argv[1], "paused": true, "changed": changed,
				"lag": g.Lag, "pending": g.Pending},
				format, argv[1], argv[0], lagText(g), g.Pending)
		},
	}
}

// groupResumeCommand is `millrace group resume`.
func (a *app) groupResumeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "resume <topic> <group>",
		Short: "Resume a paused consumer group",
		Long: `Resume a consumer group paused with 'millrace group pause': its subscribers take
new entries again at once, starting with those published while it was paused.`,
		Example: `  millrace group resume orders billing`,
		Args:    args(2, "<topic>", "<group>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, adm, cancel, err := a.callAdmin(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			changed, err := adm.ResumeGroup(ctx, argv[0], argv[1])
			if err != nil {
				return err
			}
			format := "Resumed group %s of topic %s.\n"
			if !changed {
				format = "Group %s of topic %s was not paused.\n"
			}
			return a.done(map[string]any{"topic": argv[0], "group": argv[1], "paused": false, "changed": changed},
				format, argv[1], argv[0])
		},
	}
}
