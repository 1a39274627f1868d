package partition_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/membership"
	"github.com/millrace/millrace/internal/redistest"
	"github.com/millrace/millrace/internal/testchild"
	"github.com/millrace/millrace/partition"
)

// The order check's size; `make order-check` runs the long form with
// ORDER_CHECK_ARGS.
var (
	orderMessages   = flag.Int("order.messages", 12000, "messages the order check publishes")
	orderKeys       = flag.Int("order.keys", 300, "partition keys the messages are spread over")
	orderPartitions = flag.Int("order.partitions", 12, "partitions of the topic")
	orderDuration   = flag.Duration("order.duration", 16*time.Second, "how long publishing lasts; the membership changes are spread over it")
	orderSeed       = flag.Uint64("order.seed", 13, "seed of the keys' order")
	orderLease      = flag.Duration("order.lease", 2*time.Second, "ConsumerLease of the members: a killed member's partitions move within it")
)

// orderStep is a membership change of the order check, at a fraction of
// the publishing time.
type orderStep struct {
	at     float64
	op     string // "join", "close" (SIGTERM: Close) or "kill" (SIGKILL)
	member string
}

var orderSteps = []orderStep{
	{0, "join", "m1"}, {0, "join", "m2"}, {0, "join", "m3"},
	{0.12, "join", "m4"},
	{0.24, "join", "m5"},
	{0.36, "close", "m1"},
	{0.48, "kill", "m2"},
	{0.60, "join", "m6"},
	{0.72, "kill", "m4"},
	{0.84, "join", "m7"},
}

// TestOrderCheck runs member processes of one group on a partitioned topic
// while messages are published, adding, closing and SIGKILLing members,
// and then checks every key's handled sequence (see checkOrder). It logs
// how long each rebalance took. Timings are reported, never asserted.
//
//	go test -run '^TestOrderCheck$' -v ./partition -args -order.messages=100000 -order.keys=1000
func TestOrderCheck(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	client := srv.Client(t)
	topic, n := "oc-"+watermill.NewShortUUID(), *orderPartitions
	run := orderRun{
		t: t, client: client, topic: topic, n: n, record: topic + ":handled:",
		children: map[string]*testchild.Child{}, spec: orderChildSpec{
			URL: srv.URL(), Topic: topic, Partitions: n, Group: "g", Lease: *orderLease,
			Heartbeat: 100 * time.Millisecond, Record: topic + ":handled:", NackPercent: 1, AckDelay: 2 * time.Millisecond,
		},
	}
	start := time.Now()
	published := make(chan map[string]int, 1)
	go func() { published <- run.publish(*orderMessages, *orderKeys, *orderDuration, *orderSeed) }()
	for _, s := range orderSteps {
		time.Sleep(time.Until(start.Add(time.Duration(s.at * float64(*orderDuration)))))
		run.apply(s)
	}
	perKey := <-published
	t.Logf("published %d messages over %d keys in %s", *orderMessages, len(perKey), time.Since(start).Round(time.Millisecond))
	run.drain(max(2*time.Minute, 4*(*orderDuration)))
	drained := time.Since(start)
	for name, c := range run.children {
		c.Signal(syscall.SIGTERM)
		require.True(t, c.Wait(time.Minute) && c.Succeeded(), "member %s did not Close and exit", name)
	}
	run.report(drained)
	run.checkOrder(perKey)
}

// orderRun is one run of the order check.
type orderRun struct {
	t        *testing.T
	client   redis.UniversalClient
	topic    string
	n        int
	record   string
	spec     orderChildSpec
	children map[string]*testchild.Child // live ones
	live     []string
	killed   map[string]bool
	figures  []string
}

// publish publishes messages paced over d, each for a key drawn at random,
// with metadata seq counting the key's messages; it returns the count per
// key (of those published when Publish failed). One goroutine publishes, so
// each key's messages are added in order.
func (r *orderRun) publish(messages, keys int, d time.Duration, seed uint64) map[string]int {
	cfg := partition.Config{Topics: map[string]int{r.topic: r.n}}
	perKey := map[string]int{}
	inner, err := millrace.NewPublisher(r.client, millrace.PublisherConfig{}, nil)
	if err != nil {
		r.t.Errorf("publisher: %v", err)
		return perKey
	}
	pub, err := partition.NewPublisher(inner, cfg)
	if err != nil {
		r.t.Errorf("publisher: %v", err)
		return perKey
	}
	defer pub.Close()
	rng := rand.New(rand.NewPCG(seed, seed))
	const tick = 20 * time.Millisecond
	batch := max(1, int(int64(messages)*int64(tick)/int64(d)))
	start := time.Now()
	for sent := 0; sent < messages; {
		msgs := make([]*message.Message, 0, batch)
		for ; len(msgs) < batch && sent < messages; sent++ {
			key := "key-" + strconv.Itoa(rng.IntN(keys))
			msg := message.NewMessage(watermill.NewUUID(), []byte(key))
			msg.Metadata.Set(partition.MetadataKey, key)
			msg.Metadata.Set("seq", strconv.Itoa(perKey[key]))
			perKey[key]++
			msgs = append(msgs, msg)
		}
		if err := pub.Publish(r.topic, msgs...); err != nil {
			r.t.Errorf("publish: %v", err) // this goroutine may not end the test
			return perKey
		}
		time.Sleep(time.Until(start.Add(time.Duration(sent) * d / time.Duration(messages))))
	}
	return perKey
}

// apply makes one membership change and measures how long the group takes
// to share the partitions evenly again.
func (r *orderRun) apply(s orderStep) {
	switch s.op {
	case "join":
		spec := r.spec
		spec.Member = s.member
		r.children[s.member] = startOrderChild(r.t, spec)
		r.live = append(r.live, s.member)
		if len(r.live) < 3 {
			return // the first members join together
		}
		r.awaitMember(s.member)
	case "close", "kill":
		sig := syscall.SIGTERM
		if s.op == "kill" {
			sig = syscall.SIGKILL
			if r.killed == nil {
				r.killed = map[string]bool{}
			}
			r.killed[s.member] = true
		}
		r.children[s.member].Signal(sig)
		r.live = slices.DeleteFunc(r.live, func(n string) bool { return n == s.member })
	}
	took, ok := r.awaitEven()
	if s.op == "close" || s.op == "kill" {
		want := 0 // Close, then exit 0
		if s.op == "kill" {
			want = -1 // ended by the signal
		}
		c := r.children[s.member]
		require.True(r.t, c.Wait(time.Minute), "member %s did not exit after %s", s.member, s.op)
		require.Equal(r.t, want, c.ExitCode(), "exit status of member %s after %s", s.member, s.op)
		delete(r.children, s.member)
	}
	figure := fmt.Sprintf("%-5s %-3s live %d: even again after %s", s.op, s.member, len(r.live), took.Round(time.Millisecond))
	if !ok {
		figure = fmt.Sprintf("%-5s %-3s live %d: not even after %s", s.op, s.member, len(r.live), took.Round(time.Millisecond))
	}
	if s.op == "join" {
		figure += " (from its first heartbeat)"
	}
	r.t.Log(figure)
	r.figures = append(r.figures, figure)
}

// awaitMember waits for member's first heartbeat.
func (r *orderRun) awaitMember(member string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		v, err := membership.Read(context.Background(), r.client, r.topic, "g")
		require.NoError(r.t, err)
		for _, m := range v.Members {
			if m.Name == member {
				return
			}
		}
		time.Sleep(5 * time.Millisecond) // polling the group's state: no event to wait for
	}
}

// awaitEven polls the group until the live members, and only they, own
// every partition evenly; it gives up after a minute.
func (r *orderRun) awaitEven() (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < time.Minute {
		v, err := membership.Read(context.Background(), r.client, r.topic, "g")
		require.NoError(r.t, err)
		if _, ok := even(v, r.n, r.live); ok {
			return time.Since(start), true
		}
		time.Sleep(5 * time.Millisecond) // polling the group's state: no event to wait for
	}
	return time.Since(start), false
}

// drain waits until the group has read and acknowledged every entry of
// every partition.
func (r *orderRun) drain(timeout time.Duration) {
	parts, err := partition.Topics(r.topic, r.n)
	require.NoError(r.t, err)
	a := admin.New(r.client, admin.Options{})
	deadline := time.Now().Add(timeout)
	var left string
	for time.Now().Before(deadline) {
		stats, err := a.Stats(context.Background(), parts...)
		require.NoError(r.t, err)
		var lag, pending int64
		for _, s := range stats {
			for _, g := range s.Groups {
				lag, pending = lag+g.Lag, pending+g.Pending
			}
		}
		if lag == 0 && pending == 0 {
			return
		}
		left = fmt.Sprintf("lag %d, pending %d", lag, pending)
		time.Sleep(50 * time.Millisecond) // polling the group's state: no event to wait for
	}
	r.t.Fatalf("the group did not drain within %s: %s", timeout, left)
}

func (r *orderRun) report(drained time.Duration) {
	r.t.Logf("every entry acknowledged %s after the start", drained.Round(time.Millisecond))
	r.t.Log("rebalances:\n  " + strings.Join(r.figures, "\n  "))
}
