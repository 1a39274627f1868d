package millrace_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/redistest"
	"github.com/millrace/millrace/internal/testchild"
)

// stageTopics are an input and an output topic in one Cluster slot.
func stageTopics() (in, out string) {
	tag := "{" + watermill.NewShortUUID() + "}"
	return tag + ".in", tag + ".out"
}

// splitHandler produces n outputs per input, payloads "<input>/<i>", and
// counts its runs by input payload.
type splitHandler struct {
	n    int
	mu   sync.Mutex
	runs map[string]int
}

func newSplitHandler(n int) *splitHandler { return &splitHandler{n: n, runs: map[string]int{}} }

func (h *splitHandler) handle(msg *message.Message) ([]*message.Message, error) {
	h.mu.Lock()
	h.runs[string(msg.Payload)]++
	h.mu.Unlock()
	out := make([]*message.Message, h.n)
	for i := range out {
		out[i] = message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf("%s/%d", msg.Payload, i)))
		out[i].Metadata.Set("from", string(msg.Payload))
	}
	return out, nil
}

func (h *splitHandler) runsOf(input string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runs[input]
}

// runStageRouter runs a Router with one handler from in (sub) to out (pub),
// wrapped by middlewares, the first outermost, until the test ends.
func runStageRouter(t *testing.T, sub message.Subscriber, in string, pub message.Publisher, out string,
	h message.HandlerFunc, middlewares ...message.HandlerMiddleware) {
	t.Helper()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, testLogger)
	require.NoError(t, err)
	handler := router.AddHandler("stage", in, sub, out, pub, h)
	handler.AddMiddleware(middlewares...)
	done := make(chan error, 1)
	go func() { done <- router.Run(context.Background()) }()
	select {
	case <-router.Running():
	case err := <-done:
		t.Fatalf("router ended: %v", err)
	}
	t.Cleanup(func() {
		require.NoError(t, router.Close())
		require.NoError(t, <-done)
	})
}

// outputsByPayload reads stream and counts its entries by payload.
func outputsByPayload(t *testing.T, c redis.UniversalClient, stream string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, e := range entries(t, c, stream) {
		counts[string(decode(t, e.Values).Payload)]++
	}
	return counts
}

// awaitOutputs waits until stream holds n entries.
func awaitOutputs(t *testing.T, c redis.UniversalClient, stream string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return xlen(t, c, stream) >= int64(n) }, 15*time.Second, 10*time.Millisecond,
		"%s does not hold %d entries", stream, n)
}

// twice is a middleware outside a Stage that runs the handler and its
// commit twice for each input, as a consumer that took the input over
// while the first was slow, or the first run again after a lost Ack, would.
// done counts the inputs whose second run returned.
type twice struct{ done atomic.Int64 }

func (tw *twice) middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if _, err := h(msg); err != nil {
			return nil, err
		}
		defer tw.done.Add(1)
		return h(msg)
	}
}

func newStage(t *testing.T, sub *millrace.Subscriber, pub message.Publisher) *millrace.Stage {
	t.Helper()
	stage, err := millrace.NewStage(sub, pub, millrace.StageConfig{})
	require.NoError(t, err)
	return stage
}

// A handler's outputs are added in the Publisher's wire format, with their
// UUIDs and metadata, and its input is acknowledged, by the commit.
func TestStage_CommitsOutputsWithTheAck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in, out := stageTopics()
	pub := e.publisher(t, millrace.PublisherConfig{Retention: millrace.Retention{MaxLen: 1000}})
	sub := e.subscriber(t, groupConfig("g"))
	h := newSplitHandler(3)
	var uuids sync.Map
	record := func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			msgs, err := next(msg)
			for _, m := range msgs {
				uuids.Store(string(m.Payload), m.UUID)
			}
			return msgs, err
		}
	}
	stage := newStage(t, sub, pub)
	// The Stage outside record: record sees what the handler produced.
	runStageRouter(t, sub, in, pub, out, h.handle, stage.Middleware, record)
	publish(t, pub, in, "a", "b", "c", "d")

	awaitOutputs(t, e.client, out, 12)
	requireNoPending(t, e.client, in, "g")
	assert.Equal(t, int64(12), xlen(t, e.client, out))
	for _, x := range entries(t, e.client, out) {
		msg := decode(t, x.Values)
		want, ok := uuids.Load(string(msg.Payload))
		require.True(t, ok, "unexpected output %q", msg.Payload)
		assert.Equal(t, want, msg.UUID)
		assert.Equal(t, strings.Split(string(msg.Payload), "/")[0], msg.Metadata.Get("from"))
	}
	for _, p := range []string{"a", "b", "c", "d"} {
		assert.Equal(t, 1, h.runsOf(p))
	}
}

// A handler run again after its commit adds nothing: the input is
// acknowledged and its outputs are in the output stream once.
func TestStage_RerunAfterCommitAddsNothing(t *testing.T) {
	t.Parallel()
	e, in, out, pub, sub := newStageEnv(t)
	h := newSplitHandler(2)
	var tw twice
	runStageRouter(t, sub, in, pub, out, h.handle, tw.middleware, newStage(t, sub, pub).Middleware)
	publish(t, pub, in, "a", "b")

	require.Eventually(t, func() bool { return tw.done.Load() == 2 }, 15*time.Second, 10*time.Millisecond)
	assert.Equal(t, 2, h.runsOf("a"))
	assert.Equal(t, 2, h.runsOf("b"))
	requireNoPending(t, e.client, in, "g")
	assert.Equal(t, map[string]int{"a/0": 1, "a/1": 1, "b/0": 1, "b/1": 1}, outputsByPayload(t, e.client, out))
}

// A handler error commits nothing: the input is delivered again, its
// outputs are added by the run that succeeds, once.
func TestStage_HandlerErrorCommitsNothing(t *testing.T) {
	t.Parallel()
	e, in, out, pub, sub := newStageEnv(t)
	h := newSplitHandler(2)
	var outputsAtRetry atomic.Int64
	failFirst := func(msg *message.Message) ([]*message.Message, error) {
		msgs, _ := h.handle(msg)
		if msg.Metadata.Get(millrace.MetadataDeliveryCount) == "1" {
			return msgs, errors.New("first delivery fails")
		}
		outputsAtRetry.Store(xlen(t, e.client, out))
		return msgs, nil
	}
	runStageRouter(t, sub, in, pub, out, failFirst, newStage(t, sub, pub).Middleware)
	publish(t, pub, in, "a")

	awaitOutputs(t, e.client, out, 2)
	requireNoPending(t, e.client, in, "g")
	assert.Equal(t, 2, h.runsOf("a"))
	assert.Equal(t, int64(0), outputsAtRetry.Load(), "the failed run added outputs")
	assert.Equal(t, map[string]int{"a/0": 1, "a/1": 1}, outputsByPayload(t, e.client, out))
}

// An input whose handler always fails goes to the dead letters after
// MaxDeliveries, as without a Stage, and none of its outputs is added.
func TestStage_MaxDeliveriesDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in, out := stageTopics()
	pub := e.publisher(t, millrace.PublisherConfig{})
	sub := e.subscriber(t, millrace.SubscriberConfig{ConsumerGroup: "g", BlockTime: 100 * time.Millisecond,
		CloseTimeout: 300 * time.Millisecond, NackBackoff: time.Millisecond, MaxDeliveries: 2})
	h := newSplitHandler(2)
	failing := func(msg *message.Message) ([]*message.Message, error) {
		msgs, _ := h.handle(msg)
		if string(msg.Payload) == "poison" {
			return msgs, errors.New("poison")
		}
		return msgs, nil
	}
	runStageRouter(t, sub, in, pub, out, failing, newStage(t, sub, pub).Middleware)
	publish(t, pub, in, "poison", "good")

	dead := awaitDeadLetters(t, e.client, millrace.DeadLetterTopic(in), 1)
	assert.Equal(t, "poison", string(dead[0].Payload))
	assert.Equal(t, "3", dead[0].Metadata.Get(millrace.MetadataDeadLetterDeliveries))
	requireNoPending(t, e.client, in, "g")
	assert.Equal(t, 2, h.runsOf("poison"))
	assert.Equal(t, map[string]int{"good/0": 1, "good/1": 1}, outputsByPayload(t, e.client, out))
}

// A commit whose reply is lost after Redis ran it is sent again, and the
// second send adds nothing: the outputs are there once, the input is
// acknowledged, the handler ran once.
func TestStage_CommitReplyLost(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	direct := srv.Client(t)
	proxy := startFaultProxy(t, srv.Addr())
	client := proxiedClient(t, srv, proxy)
	in, out := stageTopics()
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	sub, err := millrace.NewSubscriber(client, groupConfig("g"), testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	h := newSplitHandler(2)
	committed := make(chan string, 2)
	signal := func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			msgs, err := next(msg)
			committed <- fmt.Sprintf("%s: %v", msg.Payload, err)
			return msgs, err
		}
	}
	runStageRouter(t, sub, in, pub, out, h.handle, signal, newStage(t, sub, pub).Middleware)
	// A first input caches the script: the reply lost below is that of a
	// commit Redis ran, not a NOSCRIPT.
	publish(t, pub, in, "warm")
	require.Equal(t, "warm: <nil>", <-committed)
	// The commit: EVALSHA with the input and the output streams as keys.
	lost := proxy.LoseReply(func(args []string) bool {
		return len(args) > 5 && strings.EqualFold(args[0], "evalsha") && args[2] == "2" && args[3] == in && args[4] == out
	})
	publish(t, pub, in, "a")
	awaitLost(t, lost, "the commit")
	// The commit is sent again and succeeds: the handler is done.
	require.Equal(t, "a: <nil>", <-committed)

	requireNoPending(t, direct, in, "g")
	counts := outputsByPayload(t, direct, out)
	assert.Equal(t, map[string]int{"warm/0": 1, "warm/1": 1, "a/0": 1, "a/1": 1}, counts)
	assert.Equal(t, 1, h.runsOf("a"))
}

// On Cluster, an input and an output topic of one slot commit in one
// script; topics of two slots fall back to outputs deduplicated by keys
// derived from the input. Both add a rerun's outputs once.
func TestStage_ClusterSameSlotAndAcrossSlots(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3, 0)
	client := cluster.Client(t)
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	sameIn, sameOut := stageTopics()
	crossIn, crossOut := "{"+watermill.NewShortUUID()+"}.in", ""
	for crossOut == "" || keys.Slot(crossOut) == keys.Slot(crossIn) {
		crossOut = "{" + watermill.NewShortUUID() + "}.out"
	}
	for _, tc := range []struct {
		name, in, out string
		fallback      bool
	}{
		{"same slot", sameIn, sameOut, false},
		{"across slots", crossIn, crossOut, true},
	} {
		sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{ConsumerGroup: "g", BlockTime: 100 * time.Millisecond,
			CloseTimeout: 300 * time.Millisecond, NackBackoff: time.Millisecond}, testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sub.Close()) })
		h := newSplitHandler(2)
		var tw twice
		runStageRouter(t, sub, tc.in, pub, tc.out, h.handle, tw.middleware, newStage(t, sub, pub).Middleware)
		publish(t, pub, tc.in, "a")

		require.Eventually(t, func() bool { return tw.done.Load() == 1 }, 15*time.Second, 10*time.Millisecond, tc.name)
		assert.Equal(t, 2, h.runsOf("a"), tc.name)
		requireNoPending(t, client, tc.in, "g")
		assert.Equal(t, map[string]int{"a/0": 1, "a/1": 1}, outputsByPayload(t, client, tc.out), tc.name)
		id := entries(t, client, tc.in)[0].ID
		for i := range 2 {
			key := keys.Published(tc.out, fmt.Sprintf("%d:%s:1:g:%s:%d", len(tc.in), tc.in, id, i))
			n, err := client.Exists(context.Background(), key).Result()
			require.NoError(t, err)
			assert.Equal(t, tc.fallback, n == 1, "%s: output key %s", tc.name, key)
		}
	}
}

// On Sentinel with Durability, the commit is followed by WAIT in its
// pipeline: with the replica there it succeeds; asked for more replicas
// than there are it fails with ErrNotDurable, and the commit Redis ran
// stays: the input is acknowledged and its outputs are there once.
func TestStage_Durability(t *testing.T) {
	t.Parallel()
	st := redistest.StartSentinel(t, 1, 1)
	client := st.Client(t)
	for _, tc := range []struct {
		name     string
		replicas int
		timeout  time.Duration // the one that must pass, long enough on a loaded machine
		err      error
	}{
		{"one replica asked", 1, 5 * time.Second, nil},
		{"two replicas asked", 2, 100 * time.Millisecond, millrace.ErrNotDurable},
	} {
		in, out := stageTopics()
		pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{
			Durability: millrace.Durability{Replicas: tc.replicas, Timeout: tc.timeout},
		}, testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, pub.Close()) })
		sub, err := millrace.NewSubscriber(client, groupConfig("g"), testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sub.Close()) })
		returned := make(chan error, 1)
		first := func(next message.HandlerFunc) message.HandlerFunc {
			var once sync.Once
			return func(msg *message.Message) ([]*message.Message, error) {
				msgs, err := next(msg)
				once.Do(func() { returned <- err })
				return msgs, err
			}
		}
		h := newSplitHandler(2)
		runStageRouter(t, sub, in, pub, out, h.handle, first, newStage(t, sub, pub).Middleware)
		publish(t, inputPublisher(t, client), in, "a")

		err = <-returned
		if tc.err == nil {
			require.NoError(t, err, tc.name)
		} else {
			require.ErrorIs(t, err, tc.err, tc.name)
		}
		requireNoPending(t, client, in, "g")
		assert.Equal(t, map[string]int{"a/0": 1, "a/1": 1}, outputsByPayload(t, client, out), tc.name)
		assert.Equal(t, 1, h.runsOf("a"), tc.name)
	}
}

// inputPublisher is a Publisher without Durability over client, closed when
// the test ends.
func inputPublisher(t *testing.T, client redis.UniversalClient) *millrace.Publisher {
	t.Helper()
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	return pub
}

// With another broker as the output, the outputs' UUIDs are derived from
// the input: a rerun publishes the same UUIDs, for the output's consumers
// to deduplicate.
func TestStage_OtherPublisherGetsDerivedUUIDs(t *testing.T) {
	t.Parallel()
	e, in, out, pub, sub := newStageEnv(t)
	other := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 16, Persistent: true}, testLogger)
	t.Cleanup(func() { require.NoError(t, other.Close()) })
	outputs, err := other.Subscribe(context.Background(), out)
	require.NoError(t, err)
	h := newSplitHandler(2)
	// The Router's Ack is lost after it published: the input runs again.
	var once sync.Once
	loseAck := func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			msgs, err := next(msg)
			once.Do(func() {
				_ = other.Publish(out, msgs...)
				msgs, err = nil, errors.New("ack lost")
			})
			return msgs, err
		}
	}
	runStageRouter(t, sub, in, other, out, h.handle, loseAck, newStage(t, sub, other).Middleware)
	publish(t, pub, in, "a")

	id := ""
	var got []string
	for range 4 {
		msg := receive(t, outputs)
		msg.Ack()
		got = append(got, string(msg.Payload)+" "+msg.UUID)
		if id == "" {
			id = entries(t, e.client, in)[0].ID
		}
	}
	key := func(i int) string { return fmt.Sprintf("%d:%s:1:g:%s:%d", len(in), in, id, i) }
	assert.ElementsMatch(t, []string{"a/0 " + key(0), "a/1 " + key(1), "a/0 " + key(0), "a/1 " + key(1)}, got)
	requireNoPending(t, e.client, in, "g")
}

// A Stage of another group's Subscriber than the handler's commits
// nothing: the input is not pending in its group, but that group never
// read it, so the commit fails instead of taking the outputs for committed.
func TestStage_OfAnotherGroupFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in, out := stageTopics()
	pub := e.publisher(t, millrace.PublisherConfig{})
	sub := e.subscriber(t, groupConfig("g"))
	other := e.subscriber(t, groupConfig("h"))
	require.NoError(t, e.client.XGroupCreateMkStream(context.Background(), in, "h", "$").Err())
	returned := make(chan error, 1)
	first := func(next message.HandlerFunc) message.HandlerFunc {
		var once sync.Once
		return func(msg *message.Message) ([]*message.Message, error) {
			msgs, err := next(msg)
			once.Do(func() { returned <- err })
			return msgs, err
		}
	}
	runStageRouter(t, sub, in, pub, out, newSplitHandler(2).handle, first, newStage(t, other, pub).Middleware)
	publish(t, pub, in, "a")

	err := <-returned
	require.Error(t, err)
	assert.Contains(t, err.Error(), "never delivered to group h")
	assert.Equal(t, int64(0), xlen(t, e.client, out))
	assert.Equal(t, int64(1), pendingCount(t, e.client, in, "g"), "the input stays pending")
}

// A Stage needs a subscriber in a consumer group.
func TestStage_NeedsAGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})
	_, err := millrace.NewStage(e.subscriber(t, millrace.SubscriberConfig{}), pub, millrace.StageConfig{})
	require.Error(t, err)
	_, err = millrace.NewStage(e.subscriber(t, groupConfig("g")), pub, millrace.StageConfig{Window: -time.Second})
	require.Error(t, err)
}

// stageChildEnv carries a stageChildSpec (JSON) to a consumer process:
// TestStageChildConsumer reads it.
const stageChildEnv = "MILLRACE_STAGE_CHILD"

// stageChildSpec is what a stage consumer process runs: a Router from In
// to Out, with a Stage unless Plain, that kills its own process (SIGKILL)
// on an input's first delivery at Crash: "handler" at the end of the
// handler (its outputs made, nothing committed), "published" once the
// outputs were published and before the Router's Ack. RunsKey is a hash
// input payload → handler runs.
type stageChildSpec struct {
	URL, In, Out, Consumer string
	Plain                  bool
	Crash                  string
	RunsKey                string
}

// TestStageChildConsumer is the body of the consumer processes the stage
// crash tests start. Run as an ordinary test it does nothing and passes.
func TestStageChildConsumer(t *testing.T) {
	var spec stageChildSpec
	if !testchild.Spec(t, stageChildEnv, &spec) {
		return
	}
	fail := func(what string, err error) { testchild.Fail(spec.Consumer, what, err) }
	testchild.ExitWithParent(faultChildLifetime)
	opts, err := redis.ParseURL(spec.URL)
	if err != nil {
		fail("redis URL", err)
	}
	client := redis.NewClient(opts)
	sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{ConsumerGroup: "g", Consumer: spec.Consumer,
		BlockTime: 100 * time.Millisecond}, testLogger)
	if err != nil {
		fail("NewSubscriber", err)
	}
	mp, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
	if err != nil {
		fail("NewPublisher", err)
	}
	first := func(msg *message.Message) bool { return msg.Metadata.Get(millrace.MetadataDeliveryCount) == "1" }
	var pub message.Publisher = mp
	if spec.Crash == "published" {
		pub = crashAfterPublish{mp}
	}
	handle := func(msg *message.Message) ([]*message.Message, error) {
		client.HIncrBy(context.Background(), spec.RunsKey, string(msg.Payload), 1)
		out, _ := newSplitHandler(2).handle(msg)
		if spec.Crash == "handler" && first(msg) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return out, nil
	}
	router, err := message.NewRouter(message.RouterConfig{}, testLogger)
	if err != nil {
		fail("NewRouter", err)
	}
	handler := router.AddHandler("stage", spec.In, sub, spec.Out, pub, handle)
	if !spec.Plain {
		stage, err := millrace.NewStage(sub, mp, millrace.StageConfig{})
		if err != nil {
			fail("NewStage", err)
		}
		crash := func(h message.HandlerFunc) message.HandlerFunc {
			return func(msg *message.Message) ([]*message.Message, error) {
				out, err := h(msg)
				if spec.Crash == "published" && err == nil && first(msg) {
					_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
					select {}
				}
				return out, err
			}
		}
		handler.AddMiddleware(crash, stage.Middleware)
	}
	fail("Router.Run", router.Run(context.Background()))
}

// crashAfterPublish kills its process once a Publish of a first delivery's
// outputs returned: before the Router's Ack.
type crashAfterPublish struct{ message.Publisher }

func (p crashAfterPublish) Publish(topic string, msgs ...*message.Message) error {
	err := p.Publisher.Publish(topic, msgs...)
	if err == nil {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	return err
}

// A consumer process killed at the end of its handler (nothing committed)
// or after its outputs were committed (before the Router's Ack) leaves its
// input's outputs once in the output stream after another consumer takes
// over; the same crash after the plain Router's Publish leaves them twice.
func TestStage_ConsumerKilled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		plain bool
		crash string
		runs  int // handler runs in all
		each  int // times each output is in the stream
	}{
		{"stage, killed before the commit", false, "handler", 2, 1},
		{"stage, killed after the commit", false, "published", 1, 1},
		{"plain Router, killed after Publish", true, "published", 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			in, out := stageTopics()
			pub := e.publisher(t, millrace.PublisherConfig{})
			runsKey := "runs:" + in
			require.NoError(t, e.client.XGroupCreateMkStream(context.Background(), in, "g", "0").Err())
			publish(t, pub, in, "a")
			child := testchild.Start(t, "TestStageChildConsumer", stageChildEnv, "c1", stageChildSpec{
				URL: e.srv.URL(), In: in, Out: out, Consumer: "c1", Plain: tc.plain, Crash: tc.crash, RunsKey: runsKey,
			}, faultChildLifetime)
			require.True(t, child.Wait(30*time.Second), "the consumer was not killed")
			require.Equal(t, -1, child.ExitCode(), "the consumer ended otherwise than by a signal")

			// A second consumer takes the input over once it is idle.
			sub := e.subscriber(t, millrace.SubscriberConfig{ConsumerGroup: "g", BlockTime: 100 * time.Millisecond,
				CloseTimeout: 300 * time.Millisecond, ClaimMinIdle: 200 * time.Millisecond, ClaimInterval: 50 * time.Millisecond})
			h := newSplitHandler(2)
			var mws []message.HandlerMiddleware
			if !tc.plain {
				mws = append(mws, newStage(t, sub, pub).Middleware)
			}
			runStageRouter(t, sub, in, pub, out, h.handle, mws...)
			requireNoPending(t, e.client, in, "g")
			if tc.runs == 2 {
				require.Eventually(t, func() bool { return h.runsOf("a") == 1 }, 15*time.Second, 10*time.Millisecond)
			}
			awaitOutputs(t, e.client, out, 2*tc.each)
			runs, err := e.client.HGet(context.Background(), runsKey, "a").Int()
			require.NoError(t, err)
			assert.Equal(t, tc.runs, runs+h.runsOf("a"), "handler runs")
			assert.Equal(t, map[string]int{"a/0": tc.each, "a/1": tc.each}, outputsByPayload(t, e.client, out))
		})
	}
}

// newStageEnv is a server, an input and an output topic, a Publisher and a
// Subscriber of group "g" that redelivers at once and closes quickly.
func newStageEnv(t *testing.T) (e *env, in, out string, pub *millrace.Publisher, sub *millrace.Subscriber) {
	t.Helper()
	e = newEnv(t)
	in, out = stageTopics()
	pub = e.publisher(t, millrace.PublisherConfig{})
	sub = e.subscriber(t, millrace.SubscriberConfig{ConsumerGroup: "g", BlockTime: 100 * time.Millisecond,
		CloseTimeout: 300 * time.Millisecond, NackBackoff: time.Millisecond})
	return e, in, out, pub, sub
}
