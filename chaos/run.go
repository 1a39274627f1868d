package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/chaos/internal/childproc"
)

// Config configures a run. The zero value is the short run of `make test`.
type Config struct {
	// Duration is how long faults are injected. Messages are published
	// until the last fault has ended and Redis has settled, and every kind
	// of fault is injected at least once, even if that takes longer.
	// Default: 30s.
	Duration time.Duration
	// Seed draws the faults. Default: 1.
	Seed uint64
	// Rate is how many messages are published per second. Default: 100.
	Rate int
	// Consumers is how many consumer processes run. Default: 3.
	Consumers int
	// MeanGap is the mean time between the starts of two faults.
	// Default: 3s.
	MeanGap time.Duration
	// Work is how long the handler takes per message. Default: 2ms.
	Work time.Duration
	// MaxDeliveries of the subscribers. Default: 6.
	MaxDeliveries int
	// ClaimMinIdle of the subscribers. Default: 2s.
	ClaimMinIdle time.Duration
	// Drain bounds the wait, after Duration, until every confirmed message
	// is handled or dead-lettered. Default: 2m.
	Drain time.Duration
	// Dir receives the event logs, the consumers' output, report.txt and
	// chaos.svg; its old *.log and *.out files are removed first.
	// Default: a temp dir of the test.
	Dir string
	// Lenient reports publish-side duplicates and delivery-side duplicates
	// without a cause instead of counting them as failures of the check.
	Lenient bool
	// Logf prints progress. Default: the test's Logf.
	Logf func(format string, args ...any)
}

func (c *Config) setDefaults(tb testing.TB) {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Duration, 30*time.Second)
	def(&c.MeanGap, 3*time.Second)
	def(&c.Work, 2*time.Millisecond)
	def(&c.ClaimMinIdle, 2*time.Second)
	def(&c.Drain, 2*time.Minute)
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.Consumers == 0 {
		c.Consumers = 3
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = 6
	}
	if c.Dir == "" {
		c.Dir = tb.TempDir()
	}
	if c.Logf == nil {
		c.Logf = tb.Logf
	}
}

// Result is what a run recorded and what Check made of it.
type Result struct {
	Config Config
	Start  time.Time
	Drain  time.Duration // from the end of the faults until every message was accounted for, or Config.Drain
	// Dropped counts the messages never published because every publisher
	// was blocked and two seconds of messages were queued already.
	Dropped    int
	Log        Log
	Verdict    Verdict
	Series     *Series
	Recoveries []Recovery
	// Unexpected lists the consumer processes that exited without being
	// killed; Races the output files of consumers that reported a data race.
	Unexpected, Races []string
}

// Names of the run's topic and consumer group.
const (
	topic = "chaos"
	group = "workers"
)

// Run sets up Sentinel, starts the consumer processes and the publisher,
// injects the faults of cfg.Seed for cfg.Duration, waits until every
// confirmed message is accounted for (at most cfg.Drain), and checks the
// run. The test binary must call RunConsumerIfAsked in its TestMain.
func Run(tb testing.TB, cfg Config) Result {
	tb.Helper()
	cfg.setDefaults(tb)
	prepareDir(tb, cfg.Dir)
	tp := startTopology(tb)
	client := redis.NewFailoverClient(tp.ep.options())
	defer client.Close()
	ctx := context.Background()
	if err := admin.New(client, admin.Options{}).CreateGroup(ctx, topic, group, millrace.StartOldest); err != nil {
		tb.Fatalf("chaos: %v", err)
	}
	// The group must survive a failover: wait until the replica has it.
	if n, err := client.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n < 1 {
		tb.Fatalf("chaos: WAIT for the replica after creating the group: %d, %v", n, err)
	}
	events, err := createEventLog(filepath.Join(cfg.Dir, "run.log"))
	if err != nil {
		tb.Fatalf("chaos: %v", err)
	}
	defer events.Close()

	spec := consumerSpec{
		Endpoints: tp.ep, Topic: topic, Group: group,
		Work: cfg.Work, MaxDeliveries: cfg.MaxDeliveries, ClaimMinIdle: cfg.ClaimMinIdle,
	}
	cons := childproc.New(tb, childproc.Config[consumerSpec]{
		Env: consumerEnv, Dir: cfg.Dir, Slots: cfg.Consumers, Prefix: "chaos",
		Spec: func(name string) consumerSpec {
			s := spec
			s.Consumer, s.Log = name, filepath.Join(cfg.Dir, "consumer-"+name+".log")
			return s
		},
	})
	for slot := range cfg.Consumers {
		cons.Start(slot)
	}
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{
		Durability: millrace.Durability{Replicas: 1},
	}, watermill.NopLogger{})
	if err != nil {
		tb.Fatalf("chaos: %v", err)
	}
	defer pub.Close()

	start := time.Now()
	if err := events.run(start, cfg.ClaimMinIdle); err != nil {
		tb.Fatalf("chaos: %v", err)
	}
	end := start.Add(cfg.Duration)
	p := startPublishing(pub, events, cfg.Rate)
	ex := &executor{
		tb: tb, tp: tp, cons: cons, events: events, logf: cfg.Logf,
		rng:      rand.New(rand.NewPCG(cfg.Seed, 1)),
		slotDown: make([]bool, cfg.Consumers),
	}
	ex.run(plan(cfg.Seed, cfg.Duration, cfg.MeanGap, cfg.Consumers), start, end)
	p.close()

	res := Result{Config: cfg, Start: start, Dropped: int(p.dropped.Load())}
	drained := time.Now()
	deadline := drained.Add(cfg.Drain)
	var dead []DeadLetter
	for {
		cons.RestartExited()
		dead = deadLetters(ctx, client)
		l, err := ReadLog(cfg.Dir)
		if err != nil {
			tb.Fatalf("chaos: %v", err)
		}
		l.DeadLetters = dead
		if Check(l).Complete() || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond) // polls the logs for the drain
	}
	res.Drain = time.Since(drained)
	for _, d := range dead {
		if err := events.deadLetter(d); err != nil {
			tb.Fatalf("chaos: %v", err)
		}
	}
	stream, err := readStream(ctx, client)
	if err != nil {
		tb.Errorf("chaos: reading the stream after the run: %v", err)
	}
	for _, e := range stream {
		if err := events.streamEntry(e); err != nil {
			tb.Fatalf("chaos: %v", err)
		}
	}
	cons.StopAll()
	res.Unexpected = cons.Unexpected()
	res.Races = racesIn(cfg.Dir)
	if res.Log, err = ReadLog(cfg.Dir); err != nil {
		tb.Fatalf("chaos: %v", err)
	}
	res.Verdict = Check(res.Log)
	res.Series = NewSeries(res.Log, start)
	res.Recoveries = res.Series.Recoveries(res.Log.Faults, cfg.Rate)
	return res
}

// prepareDir creates dir and removes the logs of an earlier run from it.
func prepareDir(tb testing.TB, dir string) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("chaos: %v", err)
	}
	for _, pattern := range []string{"*.log", "*.out"} {
		old, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				tb.Fatalf("chaos: %v", err)
			}
		}
	}
}

// deadLetters reads the whole dead-letter stream of the topic; what it
// cannot read (Redis out of reach) is read at the next poll.
func deadLetters(ctx context.Context, client redis.UniversalClient) []DeadLetter {
	a := admin.New(client, admin.Options{})
	var out []DeadLetter
	q := admin.DeadLetterQuery{Count: 1000}
	for {
		page, err := a.DeadLetters(ctx, topic, q)
		if err != nil || len(page) == 0 {
			return out
		}
		for _, d := range page {
			out = append(out, DeadLetter{UUID: d.UUID, Deliveries: d.Deliveries, Reason: d.Reason})
		}
		q.After = page[len(page)-1].ID
	}
}

// readStream reads every entry of the topic's stream: its ID and the UUID
// in it. A failed read is tried again for up to streamReadFor, in case
// Redis has not settled yet.
func readStream(ctx context.Context, client redis.UniversalClient) ([]StreamEntry, error) {
	const streamReadFor = 30 * time.Second
	deadline := time.Now().Add(streamReadFor)
	var out []StreamEntry
	start := "-"
	for {
		page, err := client.XRangeN(ctx, topic, start, "+", 1000).Result()
		if err != nil {
			if time.Now().After(deadline) {
				return out, err
			}
			time.Sleep(500 * time.Millisecond) // Redis out of reach: try again
			continue
		}
		if len(page) == 0 {
			return out, nil
		}
		for _, m := range page {
			u, _ := m.Values[millrace.UUIDField].(string)
			out = append(out, StreamEntry{ID: m.ID, UUID: u})
		}
		start = "(" + page[len(page)-1].ID
	}
}

// racesIn lists the consumer output files of dir with a data race report.
func racesIn(dir string) []string {
	outs, _ := filepath.Glob(filepath.Join(dir, "*.out"))
	var races []string
	for _, f := range outs {
		b, err := os.ReadFile(f)
		if err == nil && strings.Contains(string(b), "WARNING: DATA RACE") {
			races = append(races, f)
		}
	}
	return races
}

// publishOutcome names what Publish returned: "ok", "not-durable" (added,
// but WAIT timed out), "redis-error" (an error reply) or "network".
func publishOutcome(err error) string {
	var redisErr redis.Error
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, millrace.ErrNotDurable):
		return "not-durable"
	case errors.As(err, &redisErr):
		return "redis-error"
	default:
		return "network"
	}
}

// String is a one-line summary.
func (r Result) String() string {
	v := r.Verdict
	return fmt.Sprintf("%d confirmed, %d lost, %d publish-side duplicates, %d delivery-side duplicates (%d unexplained), %d poison dead-lettered of %d, %d faults",
		v.Confirmed, len(v.Lost), v.PublishDuplicates, len(v.DeliveryDuplicates), len(v.Unexplained), v.PoisonInDLQ, v.Poison, len(r.Log.Faults))
}
