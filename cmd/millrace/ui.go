package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/cmd/millrace/ui"
)

// envAuth holds the --auth value when the flag is not given, so that the
// secret stays out of the process list.
const envAuth = "MILLRACE_UI_AUTH"

func (a *app) uiCommand() *cobra.Command {
	var (
		cfg  ui.Config
		auth string
	)
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve the web console: topics, lag, rates, dead letters, groups",
		Long: `Serve Millrace's web console until interrupted: every topic with its length,
groups, lag, pending entries, oldest pending age, dead letters and rates with
charts of the last minutes and the problems flagged; a page per topic with its
groups, consumers, pending entries (each opened with its payload and last
error) and its messages, browsed by entry ID or time; dead letters paged and
filtered, to open, replay (to one group or to all) or purge; consumer groups to
reset, pause, resume, delete or prune; topics to delete; each action after a
confirmation that counts what it touches in Redis.

One sampling loop reads every topic in two pipelined round trips each
--interval, however many pages are open; pages update live over server-sent
events.

Safety:
  - It listens on 127.0.0.1:8080 by default. Any address that is not loopback
    needs --auth: token:<secret> (at least 16 characters; sign in once in the
    page or send Authorization: Bearer <secret>) or basic:<user>:<password>
    (a password of at least 12 characters). Wrong credentials are logged and
    throttled per client address: 5 at once, then one each 10s.
    Give it in $` + envAuth + ` rather than the flag to keep it out of the process list.
  - --read-only hides every action and the server refuses them.
  - Actions are same-origin POSTs carrying a per-server CSRF token.
  - Every action is logged to stderr with what it changed. No password of the
    Redis URL is shown or logged; go-redis's own lines (a pool that cannot
    dial) go to the same log, at most one each 10s.
  - While Redis cannot be read, the header says since when instead of "live".`,
		Example: `  millrace ui
  millrace ui --read-only --url redis-sentinel://s1:26379,s2:26379/mymaster
  ` + envAuth + `=token:$(openssl rand -hex 16) millrace ui --listen 0.0.0.0:8080`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if auth == "" {
				auth = os.Getenv(envAuth)
			}
			if auth != "" {
				parsed, err := ui.ParseAuth(auth)
				if err != nil {
					return usageError{fmt.Errorf("--auth: %w", err)}
				}
				cfg.Auth = parsed
			}
			cfg.Target = a.target.describe()
			cfg.Timeout = a.timeout
			cfg.Logger = slog.New(slog.NewTextHandler(a.stderr, nil))
			// go-redis's own lines (a pool that cannot dial while Redis is
			// down) in the same format, at most one each 10s.
			redis.SetLogger(ui.NewRedisLogger(cfg.Logger, 10*time.Second))
			// Refuse a bad address before connecting to Redis.
			if err := ui.CheckListen(cfg.Listen, cfg.Auth); err != nil {
				if errors.Is(err, ui.ErrAuthRequired) {
					return usageError{fmt.Errorf("%w; pass --auth token:<secret> or basic:<user>:<password> (or set $%s), or listen on 127.0.0.1", err, envAuth)}
				}
				return usageError{err}
			}
			c, err := a.redis(cmd.Context())
			if err != nil {
				return err
			}
			srv, err := ui.New(c, cfg)
			if err != nil {
				return usageError{err}
			}
			return srv.ListenAndServe(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", ui.DefaultListen, "address to serve on; not loopback requires --auth")
	f.BoolVar(&cfg.ReadOnly, "read-only", false, "hide and refuse every action")
	f.StringVar(&auth, "auth", "", "token:<secret> or basic:<user>:<password> (default $"+envAuth+")")
	f.StringArrayVar(&cfg.Topics, "topic", nil, "show this topic (repeatable; default: every topic)")
	f.DurationVar(&cfg.Interval, "interval", ui.DefaultInterval, "time between two sampling rounds")
	f.DurationVar(&cfg.History, "history", ui.DefaultHistory, "how far back the charts look (kept in memory)")
	f.DurationVar(&cfg.DiscoveryInterval, "discovery-interval", ui.DefaultDiscoveryInterval, "how long a list of discovered topics is reused")
	f.DurationVar(&cfg.Thresholds.UnreadAge, "warn-unread-age", time.Minute, "flag a group whose oldest unread entry waited longer")
	f.DurationVar(&cfg.Thresholds.PendingAge, "warn-pending-age", 5*time.Minute, "flag a group whose oldest pending entry is older")
	f.Int64Var(&cfg.Thresholds.UntrimmedLength, "warn-untrimmed-length", 10000, "flag a stream this long from which nothing was ever removed")
	return cmd
}
