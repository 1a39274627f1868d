package stagecheck

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/chaos/internal/childproc"
	"github.com/millrace/millrace/internal/faultproxy"
	"github.com/millrace/millrace/internal/redistest"
)

// Config is one run of the check.
type Config struct {
	Seed      uint64        // seed of the fault schedule
	Duration  time.Duration // how long inputs are published and faults injected
	Rate      int           // inputs published per second
	Consumers int           // stage consumer processes
	// KillGap and CutGap are the mean times between two SIGKILLs of a
	// consumer process and between two connection faults (every
	// connection cut, or the reply of the next commit lost).
	KillGap, CutGap time.Duration
	Work            time.Duration // time the handler takes per input, ± half
	ClaimMinIdle    time.Duration // the stage consumers' ClaimMinIdle
	Drain           time.Duration // how long to wait at most for every input after the faults
	Plain           bool          // the plain Router instead of a Stage
	Dir             string        // the consumers' output files
}

// Result is what a run found.
type Result struct {
	Config  Config
	Inputs  int // inputs published
	Outputs int // entries in the output topic
	// Expected is the number of outputs the inputs produce, each once.
	Expected int
	// Missing, Duplicated and Unexpected are output payloads: produced by
	// an input but not in the output topic, in it more than once (with the
	// count), and not produced by any input.
	Missing, Duplicated, Unexpected []string
	// Unacked is the number of inputs not acknowledged at the end (still
	// pending or never read).
	Unacked int64
	// Received is the number of distinct output entries the final consumer
	// received; it must be Outputs.
	Received int
	// Reruns is the number of inputs whose handler ran more than once, as
	// far as the handlers could record it.
	Reruns int
	// Faults injected.
	Kills, Cuts, LostReplies int
	// Unexpectedly are the consumer processes that exited on their own.
	Exited  []string
	Drained bool
	Elapsed time.Duration
}

// Failures lists what makes the run fail.
func (r Result) Failures() []string {
	var f []string
	if !r.Drained {
		f = append(f, fmt.Sprintf("not every input was handled within %s", r.Config.Drain))
	}
	if len(r.Missing) > 0 {
		f = append(f, fmt.Sprintf("%d outputs missing (inputs lost): %s", len(r.Missing), sample(r.Missing)))
	}
	if len(r.Duplicated) > 0 {
		f = append(f, fmt.Sprintf("%d outputs in the output topic more than once: %s", len(r.Duplicated), sample(r.Duplicated)))
	}
	if len(r.Unexpected) > 0 {
		f = append(f, fmt.Sprintf("%d outputs no input produces: %s", len(r.Unexpected), sample(r.Unexpected)))
	}
	if r.Unacked > 0 {
		f = append(f, fmt.Sprintf("%d inputs not acknowledged", r.Unacked))
	}
	if r.Received != r.Outputs {
		f = append(f, fmt.Sprintf("the final consumer received %d of the %d output entries", r.Received, r.Outputs))
	}
	if len(r.Exited) > 0 {
		f = append(f, fmt.Sprintf("consumer processes exited on their own: %v", r.Exited))
	}
	return f
}

func (r Result) String() string {
	build := "Stage"
	if r.Config.Plain {
		build = "plain Router (no Stage)"
	}
	return fmt.Sprintf("stage check, %s, seed %d, %s: %d inputs, %d outputs expected, %d in the output topic "+
		"(%d missing, %d duplicated, %d unexpected), %d inputs unacknowledged, %d received by the final consumer; "+
		"%d inputs handled more than once; faults: %d consumers SIGKILLed, %d connections cut, %d commit replies lost; %s",
		build, r.Config.Seed, r.Config.Duration, r.Inputs, r.Expected, r.Outputs,
		len(r.Missing), len(r.Duplicated), len(r.Unexpected), r.Unacked, r.Received,
		r.Reruns, r.Kills, r.Cuts, r.LostReplies, r.Elapsed.Round(time.Millisecond))
}

// Check compares the output topic's entries, counted by payload, with what
// inputs 0 to inputs-1 produce.
func Check(inputs int, outputs map[string]int) (expected int, missing, duplicated, unexpected []string) {
	want := map[string]bool{}
	for i := range inputs {
		for j := range Outputs(i) {
			p := OutputPayload(i, j)
			want[p] = true
			switch n := outputs[p]; {
			case n == 0:
				missing = append(missing, p)
			case n > 1:
				duplicated = append(duplicated, fmt.Sprintf("%s×%d", p, n))
			}
		}
	}
	for p := range outputs {
		if !want[p] {
			unexpected = append(unexpected, p)
		}
	}
	sort.Strings(duplicated)
	sort.Strings(unexpected)
	return len(want), missing, duplicated, unexpected
}

func sample(xs []string) string {
	if len(xs) > 8 {
		return strings.Join(xs[:8], ", ") + ", ..."
	}
	return strings.Join(xs, ", ")
}

const (
	inTopic   = "{stage}.in"
	outTopic  = "{stage}.out"
	group     = "stage"
	sinkGroup = "sink"
	runsKey   = "{stage}:runs"
)

// Run runs the check: a redis-server with a fault proxy in front of it
// for the consumer processes, inputs published straight to it at Rate for
// Duration while the faults go on, then a wait for every input, and the
// check of the output topic.
func Run(tb testing.TB, cfg Config) Result {
	tb.Helper()
	start := time.Now()
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	res := Result{Config: cfg}
	srv := redistest.Start(tb, redistest.Options{NoAOF: true})
	proxy, err := faultproxy.Start(srv.Addr())
	if err != nil {
		tb.Fatalf("stagecheck: %v", err)
	}
	tb.Cleanup(proxy.Close)
	client := srv.Client(tb)
	ctx := context.Background()
	for _, g := range [][2]string{{inTopic, group}, {outTopic, sinkGroup}} {
		if err := client.XGroupCreateMkStream(ctx, g[0], g[1], "0").Err(); err != nil {
			tb.Fatalf("stagecheck: %v", err)
		}
	}
	logger := watermill.NewStdLogger(false, false)

	sink := startSink(tb, client, logger)
	spec := consumerSpec{Addr: proxy.Addr(), In: inTopic, Out: outTopic, Group: group, Work: cfg.Work,
		ClaimMinIdle: cfg.ClaimMinIdle, Plain: cfg.Plain, RunsKey: runsKey}
	procs := childproc.New(tb, childproc.Config[consumerSpec]{
		Env: consumerEnv, Dir: cfg.Dir, Slots: cfg.Consumers, Prefix: "stagecheck",
		Spec: func(name string) consumerSpec {
			s := spec
			s.Consumer = name
			return s
		},
	})
	for slot := range cfg.Consumers {
		procs.Start(slot)
	}

	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, logger)
	if err != nil {
		tb.Fatalf("stagecheck: %v", err)
	}
	defer pub.Close()
	published := make(chan int, 1)
	go func() { published <- publishInputs(tb, pub, cfg) }()

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x57a6e))
	nextKill := time.Now().Add(gap(rng, cfg.KillGap))
	nextCut := time.Now().Add(gap(rng, cfg.CutGap))
	var lost []<-chan struct{} // armed LoseReply calls
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
faults:
	for {
		select {
		case res.Inputs = <-published:
			break faults
		case now := <-tick.C:
			procs.RestartExited()
			if now.After(nextKill) {
				slot := rng.IntN(cfg.Consumers)
				procs.Kill(slot)
				procs.Start(slot)
				res.Kills++
				nextKill = now.Add(gap(rng, cfg.KillGap))
			}
			if now.After(nextCut) {
				if rng.IntN(2) == 0 {
					res.Cuts += proxy.CutAll()
				} else {
					lost = append(lost, proxy.LoseReply(commitOf(cfg.Plain)))
				}
				nextCut = now.Add(gap(rng, cfg.CutGap))
			}
		}
	}
	proxy.LoseReply(func([]string) bool { return false }) // disarm
	for _, l := range lost {
		select {
		case <-l:
			res.LostReplies++
		default:
		}
	}

	deadline := time.Now().Add(cfg.Drain)
	for time.Now().Before(deadline) && !res.Drained {
		procs.RestartExited()
		res.Drained = drained(ctx, client, sink)
		if !res.Drained {
			time.Sleep(100 * time.Millisecond)
		}
	}
	procs.StopAll()
	sink.stop(tb)
	res.Exited = procs.Unexpected()

	counts := map[string]int{}
	xs, err := client.XRange(ctx, outTopic, "-", "+").Result()
	if err != nil {
		tb.Fatalf("stagecheck: %v", err)
	}
	for _, x := range xs {
		msg, err := millrace.DefaultMarshaler{}.Unmarshal(x.Values)
		if err != nil {
			tb.Fatalf("stagecheck: entry %s: %v", x.ID, err)
		}
		counts[string(msg.Payload)]++
	}
	res.Outputs = len(xs)
	res.Expected, res.Missing, res.Duplicated, res.Unexpected = Check(res.Inputs, counts)
	res.Unacked = unacked(ctx, client)
	res.Received = sink.received()
	runs, _ := client.HGetAll(ctx, runsKey).Result()
	for _, n := range runs {
		if v, _ := strconv.Atoi(n); v > 1 {
			res.Reruns++
		}
	}
	res.Elapsed = time.Since(start)
	return res
}

// commitOf matches what adds a handler's outputs: the Stage's commit
// (EVALSHA with the input and output streams as keys) or the plain
// Router's Publish (the Publisher's script on the output stream).
func commitOf(plain bool) func(args []string) bool {
	return func(args []string) bool {
		if len(args) < 5 || !strings.EqualFold(args[0], "evalsha") {
			return false
		}
		if plain {
			return args[3] == outTopic
		}
		return args[3] == inTopic && args[4] == outTopic
	}
}

// gap is an exponentially distributed time with mean m.
func gap(rng *rand.Rand, m time.Duration) time.Duration {
	return time.Duration(rng.ExpFloat64() * float64(m))
}

// publishInputs publishes inputs 0, 1, ... at cfg.Rate for cfg.Duration
// and returns how many.
func publishInputs(tb testing.TB, pub *millrace.Publisher, cfg Config) int {
	n := int(cfg.Duration.Seconds() * float64(cfg.Rate))
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(cfg.Rate))); d > 0 {
			time.Sleep(d)
		}
		if err := pub.Publish(inTopic, message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))); err != nil {
			tb.Errorf("stagecheck: publish input %d: %v", i, err)
			return i
		}
	}
	return n
}

// drained reports whether the stage group has read and acknowledged every
// input and the final consumer has every output entry.
func drained(ctx context.Context, c redis.UniversalClient, s *sink) bool {
	if unacked(ctx, c) > 0 {
		return false
	}
	n, err := c.XLen(ctx, outTopic).Result()
	return err == nil && int64(s.received()) == n
}

// unacked is the number of inputs the stage group has not acknowledged:
// pending, or not read yet.
func unacked(ctx context.Context, c redis.UniversalClient) int64 {
	gs, err := c.XInfoGroups(ctx, inTopic).Result()
	if err != nil {
		return -1
	}
	for _, g := range gs {
		if g.Name == group {
			return g.Pending + g.Lag
		}
	}
	return -1
}

// sink is the final consumer: a Subscriber of the output topic that
// records the distinct entries it received.
type sink struct {
	sub     *millrace.Subscriber
	mu      sync.Mutex
	entries map[string]bool
	done    chan struct{}
}

func startSink(tb testing.TB, c redis.UniversalClient, logger watermill.LoggerAdapter) *sink {
	sub, err := millrace.NewSubscriber(c, millrace.SubscriberConfig{ConsumerGroup: sinkGroup, BlockTime: 100 * time.Millisecond,
		CloseTimeout: time.Second}, logger)
	if err != nil {
		tb.Fatalf("stagecheck: %v", err)
	}
	ch, err := sub.Subscribe(context.Background(), outTopic)
	if err != nil {
		tb.Fatalf("stagecheck: %v", err)
	}
	s := &sink{sub: sub, entries: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for msg := range ch {
			s.mu.Lock()
			s.entries[msg.Metadata.Get(millrace.MetadataEntryID)] = true
			s.mu.Unlock()
			msg.Ack()
		}
	}()
	return s
}

func (s *sink) received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

func (s *sink) stop(tb testing.TB) {
	if err := s.sub.Close(); err != nil {
		tb.Errorf("stagecheck: close the final consumer: %v", err)
	}
	<-s.done
}
