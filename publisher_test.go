package millrace_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

func TestPublish_OneCallLandsInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})
	topic := newTopic()

	msgs := make([]*message.Message, 25)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("payload-"+strconv.Itoa(i)))
		msgs[i].Metadata.Set("i", strconv.Itoa(i))
	}
	require.NoError(t, pub.Publish(topic, msgs...))

	got := entries(t, e.client, topic)
	require.Len(t, got, len(msgs))
	for i, entry := range got {
		assert.Len(t, entry.Values, 3, "fields of entry %d", i)
		m := decode(t, entry.Values)
		assert.Equal(t, msgs[i].UUID, m.UUID, "entry %d", i)
		assert.Equal(t, "payload-"+strconv.Itoa(i), string(m.Payload))
		assert.Equal(t, strconv.Itoa(i), m.Metadata.Get("i"))
	}

	require.NoError(t, pub.Publish(topic), "publishing no messages is a no-op")
	assert.EqualValues(t, len(msgs), xlen(t, e.client, topic))
}

func TestPublish_InvalidArguments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})
	good := func() *message.Message { return message.NewMessage(watermill.NewUUID(), []byte("x")) }

	t.Run("empty topic", func(t *testing.T) {
		require.ErrorIs(t, pub.Publish("", good()), millrace.ErrEmptyTopic)
	})

	for name, msgs := range map[string][]*message.Message{
		"only nil":       {nil},
		"nil first":      {nil, good()},
		"nil in between": {good(), nil, good()},
		"nil last":       {good(), good(), nil},
	} {
		t.Run(name, func(t *testing.T) {
			topic := newTopic()
			err := publishCatchingPanic(pub, topic, msgs...)
			require.ErrorIs(t, err, millrace.ErrNilMessage)
			assert.Zero(t, xlen(t, e.client, topic), "no message of a failed call may be written")
		})
	}

	// The publisher is still usable.
	topic := newTopic()
	require.NoError(t, pub.Publish(topic, good()))
	assert.EqualValues(t, 1, xlen(t, e.client, topic))
}

func TestPublish_CancelledContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	cases := []struct {
		name  string
		ctx   context.Context
		at    int // index of the message with ctx
		n     int
		is    error
		fresh bool // a new publisher, whose first call this is
	}{
		{name: "first of one, fresh publisher", ctx: cancelled, at: 0, n: 1, is: context.Canceled, fresh: true},
		{name: "first of one", ctx: cancelled, at: 0, n: 1, is: context.Canceled},
		{name: "second of three", ctx: cancelled, at: 1, n: 3, is: context.Canceled},
		{name: "last of three, deadline", ctx: expired, at: 2, n: 3, is: context.DeadlineExceeded},
	}
	shared := e.publisher(t, millrace.PublisherConfig{})
	publish(t, shared, newTopic(), "warm-up")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := shared
			if tc.fresh {
				pub = e.publisher(t, millrace.PublisherConfig{})
			}
			topic := newTopic()
			msgs := make([]*message.Message, tc.n)
			for i := range msgs {
				msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("x"))
			}
			msgs[tc.at].SetContext(tc.ctx)
			err := pub.Publish(topic, msgs...)
			require.ErrorIs(t, err, tc.is)
			assert.Zero(t, xlen(t, e.client, topic), "no message of the call may be written")
		})
	}
}

func TestPublisher_Close(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub, err := millrace.NewPublisher(e.client, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	topic := newTopic()
	publish(t, pub, topic, "before close")

	require.NoError(t, pub.Close())
	require.NoError(t, pub.Close(), "Close is idempotent")
	err = pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("after close")))
	require.ErrorIs(t, err, millrace.ErrPublisherClosed)
	assert.EqualValues(t, 1, xlen(t, e.client, topic))

	// The client is borrowed: Close leaves it open.
	require.NoError(t, e.client.Ping(context.Background()).Err())
}

// Close waits for a Publish whose pipeline is on the wire. Redis is frozen
// (SIGSTOP) so that the pipeline stays in flight until the test lets go.
func TestPublisher_CloseWaitsForInFlightPublish(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	client := srv.Client(t) // the publisher's own client, so its pool stats are the publisher's
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	topic := newTopic()
	publish(t, pub, topic, "warm-up") // version check done, one idle connection

	srv.Freeze()
	thawed := false
	t.Cleanup(func() {
		if !thawed {
			srv.Thaw()
		}
	})

	published := make(chan error, 1)
	go func() {
		published <- pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("in flight")))
	}()
	// The pipeline holds a connection while it waits for the frozen server.
	require.Eventually(t, func() bool {
		s := client.PoolStats()
		return s.TotalConns-s.IdleConns >= 1
	}, 5*time.Second, time.Millisecond, "Publish never got on the wire")

	closed := make(chan error, 1)
	go func() { closed <- pub.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a Publish was in flight", err)
	case err := <-published:
		t.Fatalf("Publish returned (%v) while Redis was frozen", err)
	case <-time.After(300 * time.Millisecond):
	}

	srv.Thaw()
	thawed = true
	select {
	case err := <-published:
		require.NoError(t, err, "the in-flight Publish completes")
	case <-time.After(10 * time.Second):
		t.Fatal("Publish did not return after the server was thawed")
	}
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the in-flight Publish")
	}
	assert.EqualValues(t, 2, xlen(t, client, topic))
}

func TestPublish_Concurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{MaxBatch: 16})
	topic := newTopic()
	const goroutines, perGoroutine = 50, 20

	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perGoroutine)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				msg := message.NewMessage(fmt.Sprintf("%02d-%02d", g, i), nil)
				// Single and multi-message calls mixed.
				if i%5 == 0 {
					extra := message.NewMessage(fmt.Sprintf("%02d-%02d-extra", g, i), nil)
					errs <- pub.Publish(topic, msg, extra)
					continue
				}
				errs <- pub.Publish(topic, msg)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	got := entries(t, e.client, topic)
	const extras = goroutines * perGoroutine / 5
	require.Len(t, got, goroutines*perGoroutine+extras)
	seen := map[string]bool{}
	next := make([]int, goroutines) // per goroutine: the next i expected
	for _, entry := range got {
		uuid := decode(t, entry.Values).UUID
		require.False(t, seen[uuid], "duplicate %s", uuid)
		seen[uuid] = true
		var g, i int
		_, err := fmt.Sscanf(uuid, "%02d-%02d", &g, &i)
		require.NoError(t, err)
		if len(uuid) > 5 {
			continue // the extra of a pair follows its first message
		}
		// Each goroutine's calls are sequential, so they land in order.
		assert.Equal(t, next[g], i, "goroutine %d out of order", g)
		next[g] = i + 1
	}
}

// publishMany publishes n small messages to topic in calls of batch.
func publishMany(t *testing.T, pub *millrace.Publisher, topic string, n, batch int) {
	t.Helper()
	for sent := 0; sent < n; sent += batch {
		msgs := make([]*message.Message, min(batch, n-sent))
		for i := range msgs {
			msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("x"))
		}
		require.NoError(t, pub.Publish(topic, msgs...))
	}
}

// MAXLEN ~ trims whole nodes (at most stream-node-max-entries, 100): the
// stream stays between MaxLen and MaxLen plus one node.
func TestPublish_RetentionMaxLen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const maxLen, node = 50, 100
	pub := e.publisher(t, millrace.PublisherConfig{
		Retention: millrace.Retention{MaxLen: maxLen},
		TopicRetention: map[string]millrace.Retention{
			"keep-all": {},                  // overrides: no limit
			"tight":    {MaxLen: 10},        // overrides: a smaller limit
			"aged":     {MaxAge: time.Hour}, // overrides: age only, no MaxLen
		},
	})
	suffix := watermill.NewShortUUID()
	cases := []struct {
		topic    string
		min, max int64
	}{
		{topic: "default-" + suffix, min: maxLen, max: maxLen + node},
		{topic: "keep-all", min: 1000, max: 1000},
		{topic: "tight", min: 10, max: 10 + node},
		{topic: "aged", min: 1000, max: 1000},
	}
	for _, tc := range cases {
		publishMany(t, pub, tc.topic, 1000, 50)
		n := xlen(t, e.client, tc.topic)
		assert.GreaterOrEqual(t, n, tc.min, "XLEN of %s", tc.topic)
		assert.Less(t, n, tc.max+1, "XLEN of %s", tc.topic)
	}
}

// oldEntries adds n entries with IDs from the first seconds of 1970, far
// older than any MaxAge, with a raw XADD.
func oldEntries(t *testing.T, c redis.UniversalClient, stream string, n int) {
	t.Helper()
	pipe := c.Pipeline()
	for i := range n {
		pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, ID: fmt.Sprintf("1000-%d", i+1), Values: []string{"old", strconv.Itoa(i)}})
	}
	_, err := pipe.Exec(context.Background())
	require.NoError(t, err)
}

// oldCount is how many entries of stream are older than the 1970 cut-off.
func oldCount(t *testing.T, c redis.UniversalClient, stream string) int {
	t.Helper()
	msgs, err := c.XRange(context.Background(), stream, "-", "1000-999999").Result()
	require.NoError(t, err)
	return len(msgs)
}

func TestPublish_RetentionMaxAge(t *testing.T) {
	t.Parallel()
	t.Run("one entry per node: exact", func(t *testing.T) {
		t.Parallel()
		// With one entry per node, approximate trimming (MINID ~) removes
		// every entry below the threshold, so the threshold itself is tested.
		srv := redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{"stream-node-max-entries 1"}})
		c := srv.Client(t)
		pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{
			Retention:      millrace.Retention{MaxAge: time.Hour},
			TopicRetention: map[string]millrace.Retention{"forever": {}},
		}, testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, pub.Close()) })

		topic := newTopic()
		oldEntries(t, c, topic, 30)
		// Entries one minute old are younger than MaxAge and stay.
		minuteAgo := time.Now().Add(-time.Minute).UnixMilli()
		require.NoError(t, c.XAdd(context.Background(), &redis.XAddArgs{Stream: topic, ID: fmt.Sprintf("%d-0", minuteAgo), Values: []string{"recent", "1"}}).Err())
		publishMany(t, pub, topic, 5, 5)
		assert.Zero(t, oldCount(t, c, topic), "entries older than MaxAge are trimmed")
		assert.EqualValues(t, 6, xlen(t, c, topic), "younger entries stay")

		// TopicRetention overrides Retention: no MaxAge for this topic.
		oldEntries(t, c, "forever", 30)
		publishMany(t, pub, "forever", 5, 5)
		assert.Equal(t, 30, oldCount(t, c, "forever"))
	})
	t.Run("default nodes: at most one node of old entries left", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		pub := e.publisher(t, millrace.PublisherConfig{Retention: millrace.Retention{MaxAge: time.Hour}})
		topic := newTopic()
		oldEntries(t, e.client, topic, 1000)
		publishMany(t, pub, topic, 3, 3)
		left := oldCount(t, e.client, topic)
		assert.Less(t, left, 100, "old entries left beyond one node (stream-node-max-entries 100)")
		assert.EqualValues(t, left+3, xlen(t, e.client, topic), "new entries stay")
	})
}

// blockXTrim is a go-redis hook that holds every XTRIM until release is
// closed, after signalling entered once.
type blockXTrim struct {
	entered chan struct{}
	once    sync.Once
	release chan struct{}
}

func (h *blockXTrim) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *blockXTrim) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *blockXTrim) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "xtrim" {
			h.once.Do(func() { close(h.entered) })
			<-h.release
		}
		return next(ctx, cmd)
	}
}

// A Close that races another returns only once the first has finished,
// here its last round of KeepUnacked trimming, held up by a hook.
func TestPublisher_ConcurrentCloseWaitsForTheFirst(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFromEnv(t)
	client := srv.Client(t)
	hook := &blockXTrim{entered: make(chan struct{}), release: make(chan struct{})}
	client.AddHook(hook)
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{
		Retention:    millrace.Retention{KeepUnacked: true},
		TrimInterval: time.Hour, // only Close's last round trims
	}, testLogger)
	require.NoError(t, err)
	topic := newTopic()
	require.NoError(t, client.XGroupCreateMkStream(context.Background(), topic, "g", "$").Err())
	publish(t, pub, topic, "one")

	var (
		mu    sync.Mutex
		order []string
	)
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	first := make(chan error, 1)
	go func() { first <- pub.Close() }()
	<-hook.entered // the first Close is in its last trim round

	second := make(chan error, 1)
	go func() {
		err := pub.Close()
		note("second Close returned")
		second <- err
	}()
	go func() {
		// Let the trim go once the second Close has had every chance to
		// return early.
		time.Sleep(100 * time.Millisecond)
		note("trim released")
		close(hook.release)
	}()
	require.NoError(t, <-second)
	require.NoError(t, <-first)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"trim released", "second Close returned"}, order)
}
