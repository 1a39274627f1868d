package harness

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// idleSettle is how long idle subscriptions are left alone before their
// commands are counted, unless IdleConfig.Settle says otherwise, so that
// acks and start-up work are over.
const idleSettle = time.Second

// IdleConfig is one idle run.
type IdleConfig struct {
	Addr  string // redis-server address
	Topic string // a fresh topic, the base of the names with Topics > 1
	Group string // a fresh consumer group
	// Topics is how many topics are read ([TopicNames] of Topic); 0 and 1
	// mean Topic alone.
	Topics int
	// PerTopic reads each topic with a Subscriber and group of its own, all
	// over one client; otherwise one Subscriber in one group reads them all.
	PerTopic bool
	Settle   time.Duration // quiet time before counting; 0 means idleSettle
	Duration time.Duration // how long commands are counted
	Timeout  time.Duration // bound on the warm-up messages' delivery
}

// IdleRate is the Redis cost of idle subscriptions.
type IdleRate struct {
	PerSecond float64            // commands processed (INFO stats total_commands_processed), our own INFO excluded
	ByCommand map[string]float64 // per command name (INFO commandstats), per second
	// ServerConns is how many more connections Redis had at the end of the
	// window than before the subscribers started (INFO clients
	// connected_clients).
	ServerConns int
	// PoolConns and PoolIdle are the subscribers' client's open and idle
	// connections at the end of the window (PoolStats): PoolConns −
	// PoolIdle are in use, such as blocking reads.
	PoolConns, PoolIdle int
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

// Idle starts the subscribers of cfg, lets each topic handle one message (so
// that every subscription is past any start-up special case), closes the
// publisher, waits Settle, and then measures over Duration the commands
// Redis processes (INFO before and after; the first INFO, counted in the
// second, is subtracted) and the connections the subscribers hold. Nothing
// else may use the server meanwhile.
func Idle(ctx context.Context, impl Impl, cfg IdleConfig) (IdleRate, error) {
	topics := TopicNames(cfg.Topic, cfg.Topics)
	admin := NewClient(cfg.Addr)
	defer admin.Close()
	base, err := serverInfo(ctx, admin)
	if err != nil {
		return IdleRate{}, err
	}
	// Room for more than one connection per topic, so that the pool's cap
	// does not shape the figure; Millrace, which needs no connection per
	// topic, gets go-redis's default pool, as a user would.
	size := 2*len(topics) + 64
	if impl.Name() == Millrace {
		size = 0
	}
	subClient := NewClientPool(cfg.Addr, size)
	defer subClient.Close()
	var handled atomic.Int64
	got := make(chan struct{})
	cons, err := impl.Consume(ctx, subClient, ConsumeSpec{
		Topics: topics, Group: cfg.Group, Subscribers: 1, PerTopic: cfg.PerTopic,
	}, func(int64) {
		if handled.Add(1) == int64(len(topics)) {
			close(got)
		}
	})
	if err != nil {
		return IdleRate{}, fmt.Errorf("start consumers: %w", err)
	}
	defer cons.Close()
	if err := warmUp(ctx, impl, cfg.Addr, topics); err != nil {
		return IdleRate{}, err
	}
	if err := waitClosed(ctx, got, cfg.Timeout); err != nil {
		return IdleRate{}, fmt.Errorf("warm-up: %w", err)
	}
	settle := cfg.Settle
	if settle <= 0 {
		settle = idleSettle
	}
	if err := Sleep(ctx, settle); err != nil {
		return IdleRate{}, err
	}
	before, err := serverInfo(ctx, admin)
	if err != nil {
		return IdleRate{}, err
	}
	t0 := time.Now()
	if err := Sleep(ctx, cfg.Duration); err != nil {
		return IdleRate{}, err
	}
	after, err := serverInfo(ctx, admin)
	if err != nil {
		return IdleRate{}, err
	}
	pool := subClient.PoolStats()
	secs := time.Since(t0).Seconds()
	rate := IdleRate{
		PerSecond:   float64(after.commands-before.commands-1) / secs,
		ByCommand:   map[string]float64{},
		ServerConns: after.clients - base.clients,
		PoolConns:   int(pool.TotalConns),
		PoolIdle:    int(pool.IdleConns),
	}
	before.calls["info"]++ // the first INFO is counted in the second
	for name, calls := range after.calls {
		if d := calls - before.calls[name]; d > 0 {
			rate.ByCommand[name] = float64(d) / secs
		}
	}
	return rate, nil
}

// warmUp publishes one message to each topic with impl's publisher over a
// client of its own, closed before it returns.
func warmUp(ctx context.Context, impl Impl, addr string, topics []string) error {
	client := NewClient(addr)
	defer client.Close()
	sender, err := impl.NewSender(client)
	if err != nil {
		return err
	}
	defer sender.Close()
	for _, topic := range topics {
		if err := sender.Send(ctx, topic, []*message.Message{newMessage([]byte("warm-up"))}); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	return nil
}

// info is what one INFO tells of the server's load.
type info struct {
	clients  int              // connected_clients
	commands int64            // total_commands_processed
	calls    map[string]int64 // commandstats calls by command name
}

// serverInfo reads connected_clients, total_commands_processed and the
// command stats with one INFO command.
func serverInfo(ctx context.Context, c *redis.Client) (info, error) {
	text, err := c.Info(ctx, "clients", "stats", "commandstats").Result()
	if err != nil {
		return info{}, fmt.Errorf("INFO: %w", err)
	}
	in := info{calls: commandStats(text)}
	for line := range strings.Lines(text) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "connected_clients":
			in.clients, _ = strconv.Atoi(v)
		case "total_commands_processed":
			in.commands, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return in, nil
}

// commandStats returns the calls of every command in INFO commandstats
// text, by lower-case name ("xreadgroup", "client|setinfo").
func commandStats(text string) map[string]int64 {
	stats := map[string]int64{}
	for line := range strings.Lines(text) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		if n, err := strconv.ParseInt(calls, 10, 64); err == nil {
			stats[name] = n
		}
	}
	return stats
}

// Sleep waits d or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
