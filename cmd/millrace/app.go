package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/millrace/millrace/admin"
)

const defaultURL = "redis://127.0.0.1:6379/0"

// timeFormat is RFC 3339 in UTC to the millisecond, the resolution of
// entry IDs.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func init() { cobra.EnableCommandSorting = false }

// app is one run of the CLI: flags, streams and the lazily opened client.
type app struct {
	url     string
	json    bool
	timeout time.Duration

	stdin          io.Reader
	stdout, stderr io.Writer

	target target
	client redis.UniversalClient

	// stable prints ages and idle times as placeholders, so
	// that tests can compare human output with golden files.
	stable bool
	// now is the clock for ages computed on this side (pending, tail, dlq).
	now func() time.Time
	// terminal reports whether w is a terminal (progress bars).
	terminal func(w io.Writer) bool
}

// usageError is a command line mistake: exit status 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exitError ends the run with a status and no further message (e.g.
// doctor found problems and already said so).
type exitError struct{ code int }

func (e exitError) Error() string { return "exit status " + strconv.Itoa(e.code) }

// run runs the CLI with args and returns the exit status: 0 success, 1
// failure, 2 usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newApp(stdin, stdout, stderr).run(ctx, args)
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{
		stdin: stdin, stdout: stdout, stderr: stderr,
		now: time.Now,
		terminal: func(w io.Writer) bool {
			f, ok := w.(*os.File)
			return ok && term.IsTerminal(int(f.Fd()))
		},
	}
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if a.client != nil {
		a.client.Close()
	}
	if err == nil {
		return 0
	}
	var exit exitError
	if errors.As(err, &exit) {
		return exit.code
	}
	// The library's errors start with "millrace: " too: say it once.
	fmt.Fprintf(a.stderr, "millrace: %s\n", strings.TrimPrefix(err.Error(), "millrace: "))
	var usage usageError
	if errors.As(err, &usage) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintln(a.stderr, "Run 'millrace --help' for usage.")
		return 2
	}
	return 1
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "millrace",
		Short: "Inspect and operate Millrace topics on Redis Streams",
		Long: `millrace inspects and operates the Redis streams behind Millrace, the Watermill
Pub/Sub over Redis Streams: is every consumer group keeping up, is anything stuck
or poisoned, and one command to act on it.

A topic is a stream; its dead letters are in the stream "{topic}:dlq".

` + urlHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.url == "" {
				a.url = os.Getenv("REDIS_URL")
			}
			if a.url == "" {
				a.url = defaultURL
			}
			t, err := parseURL(a.url)
			if err != nil {
				return usageError{fmt.Errorf("--url: %w", err)}
			}
			a.target = t
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", "", "Redis URL (default $REDIS_URL, else "+defaultURL+")")
	pf.BoolVar(&a.json, "json", false, "print JSON instead of tables")
	pf.DurationVar(&a.timeout, "timeout", 10*time.Second, "time limit of each command's Redis calls")
	root.AddGroup(
		&cobra.Group{ID: "inspect", Title: "Inspect:"},
		&cobra.Group{ID: "act", Title: "Act:"},
		&cobra.Group{ID: "run", Title: "Check and serve:"},
	)
	for _, c := range []*cobra.Command{a.topicsCommand(), a.statCommand(), a.pendingCommand(), a.tailCommand(), a.browseCommand()} {
		c.GroupID = "inspect"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.publishCommand(), a.dlqCommand(), a.groupCommand(), a.consumersCommand(), a.trimCommand(), a.topicCommand()} {
		c.GroupID = "act"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.doctorCommand(), a.exporterCommand(), a.uiCommand()} {
		c.GroupID = "run"
		root.AddCommand(c)
	}
	root.SetHelpCommandGroupID("run")
	root.SetCompletionCommandGroupID("run")
	return root
}

// redis returns the client, opening it on first use and checking it
// answers.
func (a *app) redis(ctx context.Context) (redis.UniversalClient, error) {
	if a.client != nil {
		return a.client, nil
	}
	a.client = a.target.client()
	pctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if err := a.client.Ping(pctx).Err(); err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %w", redact(a.url), err)
	}
	return a.client, nil
}

// call returns the client and a context bounded by --timeout.
func (a *app) call(cmd *cobra.Command) (context.Context, redis.UniversalClient, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	c, err := a.redis(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, c, cancel, nil
}

// callAdmin returns the operator API over the client and a context bounded
// by --timeout.
func (a *app) callAdmin(cmd *cobra.Command) (context.Context, *admin.Admin, context.CancelFunc, error) {
	ctx, c, cancel, err := a.call(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	return ctx, admin.New(c, admin.Options{}), cancel, nil
}

// args checks the number of positional arguments, as a usage error.
func args(n int, names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("want %d argument(s): %s; got %d", n, strings.Join(names, " "), len(args))}
		}
		for k, arg := range args {
			if arg == "" {
				return usageError{fmt.Errorf("%s must not be empty", names[k])}
			}
		}
		return nil
	}
}

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes rows under headers, aligned in columns.
func (a *app) table(headers []string, rows [][]string) error {
	w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(headers, "\t"))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	return w.Flush()
}

// fields writes "name  value" lines, aligned.
func (a *app) fields(pairs [][2]string) error {
	w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	for _, p := range pairs {
		fmt.Fprintf(w, "%s\t%s\n", p[0], p[1])
	}
	return w.Flush()
}

func (a *app) printf(format string, args ...any) { fmt.Fprintf(a.stdout, format, args...) }

// dur formats a duration for people: 850ms, 42s, 3m05s, 2h10m, 4d03h.
func (a *app) dur(d time.Duration) string {
	if a.stable {
		return "<dur>"
	}
	return humanDuration(d)
}

func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// when formats a point in time, UTC, to the millisecond.
func (a *app) when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeFormat)
}

// ago is "<time> (<age> ago)".
func (a *app) ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return a.when(t) + " (" + a.dur(now.Sub(t)) + " ago)"
}

// ms is a duration in milliseconds for JSON.
func ms(d time.Duration) int64 { return d.Milliseconds() }

// jsonTime is a time for JSON, nil when zero.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(timeFormat)
	return &s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
