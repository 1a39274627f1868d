package soak

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/admin"
)

// Sample is one measurement of the process and of Redis.
type Sample struct {
	At           time.Duration // since the start
	RSS          int64         // resident set size of this process, bytes
	HeapInuse    int64         // Go heap in use, bytes
	Goroutines   int
	PoolConns    int   // connections in the client's pool
	RedisClients int64 // Redis's connected_clients
	UsedMemory   int64 // Redis's used_memory, bytes
	Keys         int64 // DBSIZE
	Consumers    int   // consumers of all groups of all topics
	Pending      int64 // pending entries of all groups
	Handled      int64 // messages handled since the start
}

// metric is one series of the samples, with how much fitted growth over
// the second half of the run it tolerates: Abs, or Rel of its median if
// that is more.
type metric struct {
	Name string
	Unit string
	Get  func(Sample) float64
	Abs  float64
	Rel  float64
	// NotUnderRace leaves the series unjudged in a -race build, where it
	// grows with the race detector's own memory.
	NotUnderRace bool
}

const mb = 1 << 20

// metrics are the series that must not grow. RSS and the heap get room for
// the garbage collector's rhythm, used_memory for streams that are trimmed
// in whole nodes of 100 entries; counts that only churn get a few.
var metrics = []metric{
	{Name: "rss", Unit: "MB", Get: func(s Sample) float64 { return float64(s.RSS) / mb }, Abs: 16, Rel: 0.25, NotUnderRace: true},
	{Name: "heap", Unit: "MB", Get: func(s Sample) float64 { return float64(s.HeapInuse) / mb }, Abs: 8, Rel: 0.25},
	{Name: "goroutines", Get: func(s Sample) float64 { return float64(s.Goroutines) }, Abs: 20, Rel: 0.1},
	{Name: "pool connections", Get: func(s Sample) float64 { return float64(s.PoolConns) }, Abs: 8},
	{Name: "redis clients", Get: func(s Sample) float64 { return float64(s.RedisClients) }, Abs: 8},
	{Name: "redis used_memory", Unit: "MB", Get: func(s Sample) float64 { return float64(s.UsedMemory) / mb }, Abs: 8, Rel: 0.25},
	{Name: "keys", Get: func(s Sample) float64 { return float64(s.Keys) }, Abs: 1},
	{Name: "consumers", Get: func(s Sample) float64 { return float64(s.Consumers) }, Abs: 1},
	{Name: "pending", Get: func(s Sample) float64 { return float64(s.Pending) }, Abs: 200, Rel: 0.5},
}

// rss reads VmRSS from /proc/self/status; 0 if it cannot.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// infoInt returns field of an INFO reply as a number, 0 if absent.
func infoInt(info, field string) int64 {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// take samples the process, client and Redis; Redis figures it cannot read
// stay 0 and err says why.
func take(ctx context.Context, client *redis.Client, a *admin.Admin, topics []string) (Sample, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := Sample{RSS: rss(), HeapInuse: int64(ms.HeapInuse), Goroutines: runtime.NumGoroutine(), PoolConns: int(client.PoolStats().TotalConns)}
	info, err := client.Info(ctx, "clients", "memory").Result()
	if err != nil {
		return s, err
	}
	s.RedisClients = infoInt(info, "connected_clients")
	s.UsedMemory = infoInt(info, "used_memory")
	if s.Keys, err = client.DBSize(ctx).Result(); err != nil {
		return s, err
	}
	for _, t := range topics {
		groups, err := a.Groups(ctx, t)
		if err != nil {
			return s, err
		}
		for _, g := range groups {
			s.Consumers += len(g.Consumers)
			s.Pending += g.Pending
		}
	}
	return s, nil
}
