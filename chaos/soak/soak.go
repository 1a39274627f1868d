package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/redistest"
)

// Config configures a soak run. The zero value is the 20-minute run of
// `make soak`; Short gives the 20-second form of `make test`.
type Config struct {
	// Duration of the churn. Default: 20m.
	Duration time.Duration
	// SampleEvery is the sample interval. Default: 10s.
	SampleEvery time.Duration
	// ChurnEvery is how often one subscription is closed and opened again.
	// Default: 2s.
	ChurnEvery time.Duration
	// RouterEvery is how often one Router is closed and started again.
	// Default: 30s.
	RouterEvery time.Duration
	// RedisEvery is how often redis-server is restarted. Default: 4m.
	RedisEvery time.Duration
	// Rate is how many messages are published per second. Default: 200.
	Rate int
	// Seed picks which subscription and Router churn. Default: 1.
	Seed uint64
	// Logf prints progress. Default: the test's Logf.
	Logf func(format string, args ...any)
}

// Short is the configuration of the short run in `make test`.
var Short = Config{Duration: 20 * time.Second, SampleEvery: time.Second, ChurnEvery: 250 * time.Millisecond, RouterEvery: 3 * time.Second, RedisEvery: 7 * time.Second}

func (c *Config) setDefaults(tb testing.TB) {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Duration, 20*time.Minute)
	def(&c.SampleEvery, 10*time.Second)
	def(&c.ChurnEvery, 2*time.Second)
	def(&c.RouterEvery, 30*time.Second)
	def(&c.RedisEvery, 4*time.Minute)
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logf == nil {
		c.Logf = tb.Logf
	}
}

// The workload's shape: topics, subscription slots (slot i reads topic
// i mod len(topics) as consumer "sub-i" of group "soak") and Routers
// (Router i reads topic i mod len(topics) as consumer "router-i" of group
// "routers").
var topics = []string{"soak.a", "soak.b", "soak.c"}

const (
	slots   = 6
	routers = 2
)

// Result is what a soak run measured.
type Result struct {
	Config   Config
	Samples  []Sample
	Restarts []time.Duration // when redis-server was restarted, since the start
	Trends   []Trend
	// Churned counts the subscriptions and Routers closed and opened again;
	// Published and PublishErrors the Publish calls.
	Churned, RouterRestarts, Published, PublishErrors int64
	// LeftOpen lists the connections of the workload's client (CLIENT LIST
	// lines with its name) still open on Redis once everything was closed.
	LeftOpen []string
	// KeysAfter lists the keys left once everything was closed.
	KeysAfter []string
}

// Run churns for cfg.Duration and returns what it sampled.
func Run(tb testing.TB, cfg Config) Result {
	tb.Helper()
	cfg.setDefaults(tb)
	srv := redistest.Start(tb, redistest.Options{})
	probe := srv.Client(tb) // samples Redis; its one connection is the baseline
	ctx := context.Background()
	res := Result{Config: cfg}

	opts := srv.Options(tb)
	opts.PoolSize = 50
	opts.ClientName = clientName
	client := redis.NewClient(opts)
	a := admin.New(probe, admin.Options{})
	w := &workload{tb: tb, client: client, logger: watermill.NopLogger{}, rng: rand.New(rand.NewPCG(cfg.Seed, 2))}
	w.start(cfg.Rate)

	start := time.Now()
	next := map[string]time.Time{
		"sample": start, "churn": start.Add(cfg.ChurnEvery),
		"router": start.Add(cfg.RouterEvery), "redis": start.Add(cfg.RedisEvery),
	}
	every := map[string]time.Duration{"sample": cfg.SampleEvery, "churn": cfg.ChurnEvery, "router": cfg.RouterEvery, "redis": cfg.RedisEvery}
	end := start.Add(cfg.Duration)
	for {
		what := earliest(next)
		if next[what].After(end) {
			break
		}
		time.Sleep(time.Until(next[what])) // the churn's pace
		next[what] = next[what].Add(every[what])
		switch what {
		case "sample":
			s, err := take(ctx, client, a, topics)
			if err != nil {
				tb.Errorf("soak: sample at %s: %v", time.Since(start).Round(time.Second), err)
			}
			s.At, s.Handled = time.Since(start), w.handled.Load()
			res.Samples = append(res.Samples, s)
			cfg.Logf("%6.0fs rss %5.1f MB, heap %5.1f MB, %4d goroutines, pool %2d, redis clients %2d, used_memory %5.1f MB, %2d keys, %2d consumers, %4d pending, %d handled",
				s.At.Seconds(), float64(s.RSS)/mb, float64(s.HeapInuse)/mb, s.Goroutines, s.PoolConns, s.RedisClients, float64(s.UsedMemory)/mb, s.Keys, s.Consumers, s.Pending, s.Handled)
		case "churn":
			w.churnSubscription()
		case "router":
			w.churnRouter()
		case "redis":
			srv.Restart(tb)
			res.Restarts = append(res.Restarts, time.Since(start))
		}
	}
	w.stop()
	client.Close()
	res.Churned, res.RouterRestarts = w.churned, w.routerRestarts
	res.Published, res.PublishErrors = w.published.Load(), w.publishErrors.Load()
	res.LeftOpen = leftOpen(ctx, tb, probe)
	res.KeysAfter = keysAfter(ctx, tb, probe, topics)
	res.Trends = Analyze(res.Samples)
	return res
}

func earliest(next map[string]time.Time) string {
	best := ""
	for k, t := range next {
		if best == "" || t.Before(next[best]) || (t.Equal(next[best]) && k < best) {
			best = k
		}
	}
	return best
}

// keysAfter waits until only the topics' streams (and publishers' sequence
// keys, which expire by themselves) are left, or until a consumer-name
// holder key whose release met a restarting Redis has expired
// (SubscriberConfig.ConsumerLease, 10 s), and returns the keys then. A
// name key is given up at Close, tried again until Redis is back; one left
// here is a leak.
func keysAfter(ctx context.Context, tb testing.TB, probe *redis.Client, topics []string) []string {
	deadline := time.Now().Add(12 * time.Second)
	for {
		keys, err := probe.Keys(ctx, "*").Result()
		if err != nil {
			tb.Fatalf("soak: KEYS: %v", err)
		}
		keys = slices.DeleteFunc(keys, func(k string) bool { return expiringProducerKey(ctx, probe, k) })
		extra := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return slices.Contains(topics, k) })
		if len(extra) == 0 || time.Now().After(deadline) {
			return keys
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// expiringProducerKey reports a publisher's sequence key
// ("{topic}:producer:<id>") that expires within 10 minutes, as the
// Publisher sets it: what a closed Publisher leaves by design, bounded by
// the number of its pipelines and topics.
func expiringProducerKey(ctx context.Context, probe *redis.Client, key string) bool {
	if !strings.Contains(key, "}:producer:") {
		return false
	}
	ttl, err := probe.PTTL(ctx, key).Result()
	return err == nil && ttl > 0 && ttl <= 10*time.Minute
}

// clientName is the name (CLIENT SETNAME) of the workload's connections.
const clientName = "soak-workload"

// leftOpen waits until Redis has seen the workload's connections close:
// it returns those still open (CLIENT LIST lines) after 10 s, or none.
func leftOpen(ctx context.Context, tb testing.TB, c *redis.Client) []string {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := c.ClientList(ctx).Result()
		if err != nil {
			tb.Fatalf("soak: CLIENT LIST: %v", err)
		}
		var open []string
		for line := range strings.Lines(list) {
			if strings.Contains(line, " name="+clientName+" ") {
				open = append(open, strings.TrimSpace(line))
			}
		}
		if len(open) == 0 || time.Now().After(deadline) {
			return open
		}
		time.Sleep(50 * time.Millisecond) // polls Redis's list
	}
}

// workload is the publisher, the subscription slots and the Routers.
type workload struct {
	tb     testing.TB
	client *redis.Client
	logger watermill.LoggerAdapter
	rng    *rand.Rand

	pub       *millrace.Publisher
	stopPub   chan struct{}
	pubDone   sync.WaitGroup
	subs      [slots]*subscription
	routers   [routers]*router
	handled   atomic.Int64
	published atomic.Int64
	// publishErrors counts failed Publish calls (Redis restarting).
	publishErrors           atomic.Int64
	churned, routerRestarts int64
}

func (w *workload) start(rate int) {
	pub, err := millrace.NewPublisher(w.client, millrace.PublisherConfig{Retention: millrace.Retention{KeepUnacked: true}}, w.logger)
	if err != nil {
		w.tb.Fatalf("soak: %v", err)
	}
	w.pub, w.stopPub = pub, make(chan struct{})
	for i := range w.subs {
		w.subs[i] = w.openSubscription(i)
	}
	for i := range w.routers {
		w.routers[i] = w.startRouter(i)
	}
	w.pubDone.Add(1)
	go w.publish(rate)
}

// publish publishes to the topics in turn, rate messages per second, in
// batches of one tick.
func (w *workload) publish(rate int) {
	defer w.pubDone.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	perTick := max(1, rate/50)
	for n := 0; ; n++ {
		select {
		case <-w.stopPub:
			return
		case <-tick.C:
		}
		msgs := make([]*message.Message, perTick)
		for i := range msgs {
			msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(n)))
		}
		w.published.Add(int64(perTick))
		if err := w.pub.Publish(topics[n%len(topics)], msgs...); err != nil {
			w.publishErrors.Add(1)
		}
	}
}

func (w *workload) stop() {
	close(w.stopPub)
	w.pubDone.Wait()
	if err := w.pub.Close(); err != nil {
		w.tb.Errorf("soak: close publisher: %v", err)
	}
	for _, s := range w.subs {
		s.close(w.tb)
	}
	for _, r := range w.routers {
		r.close(w.tb)
	}
}
