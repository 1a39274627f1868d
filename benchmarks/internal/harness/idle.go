package harness

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// idleSettle is how long an idle subscription is left alone before its
// commands are counted, so that acks and start-up work are over.
const idleSettle = time.Second

// IdleConfig is one idle run.
type IdleConfig struct {
	Addr     string        // redis-server address
	Topic    string        // a fresh topic
	Group    string        // a fresh consumer group
	Duration time.Duration // how long commands are counted
	Timeout  time.Duration // bound on the warm-up message's delivery
}

// IdleRate is the Redis command rate of one idle subscription.
type IdleRate struct {
	PerSecond float64            // every command but our own INFOs
	ByCommand map[string]float64 // per command name, per second
}

// String lists the commands by rate, e.g. "xreadgroup 1.00/s, xautoclaim 0.20/s".
func (r IdleRate) String() string {
	names := slices.SortedFunc(maps.Keys(r.ByCommand), func(a, b string) int {
		if r.ByCommand[a] != r.ByCommand[b] {
			if r.ByCommand[a] > r.ByCommand[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f/s", n, r.ByCommand[n]))
	}
	return strings.Join(parts, ", ")
}

// Idle starts one subscriber in a group, lets it handle one message (so it
// is past any start-up special case), closes the publisher, waits
// idleSettle, and then counts the commands Redis processes over Duration
// (INFO commandstats before and after, our own INFO excluded). Nothing else
// may use the server meanwhile.
func Idle(ctx context.Context, impl Impl, cfg IdleConfig) (IdleRate, error) {
	admin, pubClient, subClient := NewClient(cfg.Addr), NewClient(cfg.Addr), NewClient(cfg.Addr)
	defer admin.Close()
	defer pubClient.Close()
	defer subClient.Close()
	got := make(chan struct{})
	var once sync.Once
	cons, err := impl.Consume(ctx, subClient, cfg.Topic, cfg.Group, 1, func(int64) {
		once.Do(func() { close(got) })
	})
	if err != nil {
		return IdleRate{}, fmt.Errorf("start consumer: %w", err)
	}
	defer cons.Close()
	sender, err := impl.NewSender(pubClient)
	if err != nil {
		return IdleRate{}, err
	}
	err = sender.Send(ctx, cfg.Topic, []*message.Message{newMessage([]byte("warm-up"))})
	sender.Close()
	if err != nil {
		return IdleRate{}, fmt.Errorf("publish: %w", err)
	}
	if err := waitClosed(ctx, got, cfg.Timeout); err != nil {
		return IdleRate{}, err
	}
	if err := sleep(ctx, idleSettle); err != nil {
		return IdleRate{}, err
	}
	before, err := commandStats(ctx, admin)
	if err != nil {
		return IdleRate{}, err
	}
	t0 := time.Now()
	if err := sleep(ctx, cfg.Duration); err != nil {
		return IdleRate{}, err
	}
	after, err := commandStats(ctx, admin)
	if err != nil {
		return IdleRate{}, err
	}
	secs := time.Since(t0).Seconds()
	rate := IdleRate{ByCommand: map[string]float64{}}
	for name, calls := range after {
		if d := calls - before[name]; d > 0 && name != "info" {
			rate.ByCommand[name] = float64(d) / secs
			rate.PerSecond += float64(d) / secs
		}
	}
	return rate, nil
}

// commandStats returns the calls of every command so far, by lower-case
// name ("xreadgroup", "client|setinfo"), from INFO commandstats.
func commandStats(ctx context.Context, c *redis.Client) (map[string]int64, error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats: %w", err)
	}
	stats := map[string]int64{}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err == nil {
			stats[name] = n
		}
	}
	return stats, nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
