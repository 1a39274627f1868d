package matrix

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Main runs a benchmark program called name: it parses the command line
// with parse (exiting 2 on a bad one, 0 after -help) and calls run with a
// context that SIGINT and SIGTERM cancel, exiting 1 if run fails.
func Main[O any](name string, parse func(args []string) (O, error), run func(ctx context.Context, opts O) error) {
	opts, err := parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		stop()
		os.Exit(1)
	}
}

// QuietRedis drops go-redis's internal log, which otherwise reports the
// connections that closing subscribers and the end of each run cut off.
func QuietRedis() { redis.SetLogger(discardLogger{}) }

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}
