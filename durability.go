package millrace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/rediserr"
)

// defaultDurabilityTimeout bounds WAIT and WAITAOF when Durability.Timeout
// is zero.
const defaultDurabilityTimeout = time.Second

// Durability makes Publish wait, after its XADDs, until Redis confirms they
// survive the loss of the master (replicas) or of the process (AOF fsync).
// Without it, Publish returns once the master has the messages in memory;
// an asynchronous replica may not have them yet when a failover happens.
type Durability struct {
	// Replicas is how many replicas must have the messages: WAIT Replicas
	// Timeout. 0 = do not wait for replicas.
	Replicas int
	// AOF waits for the messages to be fsynced to the master's append-only
	// file (and to Replicas replicas' files) instead: WAITAOF 1 Replicas
	// Timeout. Redis 7.2 or newer, with appendonly yes.
	AOF bool
	// Timeout bounds the wait; keep it below the client's ReadTimeout.
	// Default: 1s.
	Timeout time.Duration
}

// ErrNotDurable is returned by [Publisher.Publish] when Redis added the
// messages but fewer replicas (or AOF files) than asked confirmed them in
// time. The messages may still survive; a retry may duplicate them.
var ErrNotDurable = errors.New("millrace: messages not confirmed by enough replicas")

func (d Durability) enabled() bool { return d.Replicas > 0 || d.AOF }

func (d Durability) validate() error {
	if d.Replicas < 0 {
		return fmt.Errorf("Replicas must not be negative, got %d", d.Replicas)
	}
	if d.Timeout < 0 {
		return fmt.Errorf("Timeout must not be negative, got %s", d.Timeout)
	}
	return nil
}

func (d Durability) timeout() time.Duration {
	if d.Timeout == 0 {
		return defaultDurabilityTimeout
	}
	return d.Timeout
}

// queue appends WAIT or WAITAOF to pipe and returns what checks its reply
// after Exec.
func (d Durability) queue(ctx context.Context, pipe redis.Pipeliner) func() error {
	switch {
	case d.AOF:
		cmd := pipe.Do(ctx, "waitaof", 1, d.Replicas, d.timeout().Milliseconds())
		return func() error {
			acks, err := cmd.Int64Slice()
			if err != nil {
				return fmt.Errorf("WAITAOF: %w", err)
			}
			if len(acks) != 2 || acks[0] < 1 || acks[1] < int64(d.Replicas) {
				return fmt.Errorf("%w: WAITAOF confirmed local=%v replicas=%v, want 1 and %d", ErrNotDurable, first(acks, 0), first(acks, 1), d.Replicas)
			}
			return nil
		}
	case d.Replicas > 0:
		cmd := pipe.Do(ctx, "wait", d.Replicas, d.timeout().Milliseconds())
		return func() error {
			n, err := cmd.Int64()
			if err != nil {
				return fmt.Errorf("WAIT: %w", err)
			}
			if n < int64(d.Replicas) {
				return fmt.Errorf("%w: %d of %d replicas within %s", ErrNotDurable, n, d.Replicas, d.timeout())
			}
			return nil
		}
	default:
		return func() error { return nil }
	}
}

func first(xs []int64, i int) int64 {
	if i < len(xs) {
		return xs[i]
	}
	return 0
}

// isRedirect reports a MOVED or ASK reply: the command was not executed,
// because its slot is served by another node now.

// masterAfterRedirect reloads the cluster's slot map after a redirect and
// returns key's master once it is no longer stale, waiting at most a
// second for the reload go-redis does in the background.
func masterAfterRedirect(ctx context.Context, cluster *redis.ClusterClient, key string, stale *redis.Client) (*redis.Client, error) {
	cluster.ReloadState(ctx)
	deadline := time.Now().Add(time.Second)
	for {
		node, err := cluster.MasterForKey(ctx, key)
		if err != nil || node != stale || time.Now().After(deadline) {
			return node, err
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// reloadOnNetworkError asks a Cluster client to reload its slot map after a
// network error: a master that died answers no MOVED, and go-redis would
// otherwise keep dialing it until its periodic reload (60 s by default).
func reloadOnNetworkError(client redis.UniversalClient, err error) {
	if cluster, ok := client.(*redis.ClusterClient); ok && err != nil && !rediserr.IsServer(err) {
		cluster.ReloadState(context.Background())
	}
}
