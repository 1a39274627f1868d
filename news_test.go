package millrace_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// blockedReads counts the clients of name blocked in a read (CLIENT LIST:
// flags b), by command.
func blockedReads(t *testing.T, c redis.UniversalClient, name string) map[string]int {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	require.NoError(t, err)
	byCmd := map[string]int{}
	for _, l := range strings.Split(list, "\n") {
		if !strings.Contains(l, " name="+name+" ") || !strings.Contains(l, " flags=b ") {
			continue
		}
		for _, f := range strings.Fields(l) {
			if cmd, ok := strings.CutPrefix(f, "cmd="); ok {
				byCmd[cmd]++
			}
		}
	}
	return byCmd
}

// pubSubClients counts the clients of name subscribed to a channel.
func pubSubClients(t *testing.T, c redis.UniversalClient, name string) int {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	require.NoError(t, err)
	n := 0
	for _, l := range strings.Split(list, "\n") {
		if strings.Contains(l, " name="+name+" ") && !strings.Contains(l, " sub=0 ") {
			n++
		}
	}
	return n
}

// namedClient is a client of e's server whose connections carry name.
func namedClient(t *testing.T, e *env, name string) *redis.Client {
	t.Helper()
	o := e.srv.Options(t)
	o.ClientName = name
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// awaitOneBlockedXREAD waits until the subscribers of the client named
// name wait for entries in exactly one XREAD and nothing else.
func awaitOneBlockedXREAD(t *testing.T, e *env, name string) {
	t.Helper()
	var got map[string]int
	require.Eventually(t, func() bool {
		got = blockedReads(t, e.client, name)
		return len(got) == 1 && got["xread"] == 1
	}, 10*time.Second, 5*time.Millisecond, "blocked reads: %v", &got)
}

// Many topics, one blocking connection: one Subscriber with 50 topics in
// one group, and 20 Subscribers with a group each on a shared client (the
// shape of Watermill's CQRS event processor), wait for new entries in one
// XREAD, and every topic still gets its messages.
func TestNews_OneBlockingReadForAllTopics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})

	t.Run("one subscriber, many topics", func(t *testing.T) {
		client := namedClient(t, e, "many-topics")
		sub, err := millrace.NewSubscriber(client, groupConfig("g"), nil)
		require.NoError(t, err)
		defer sub.Close()
		topics := make([]string, 50)
		chs := make([]<-chan *message.Message, len(topics))
		for i := range topics {
			topics[i] = newTopic()
			chs[i] = subscribe(t, sub, topics[i])
		}
		awaitOneBlockedXREAD(t, e, "many-topics")
		for round := range 2 {
			for i, topic := range topics {
				want := publish(t, pub, topic, fmt.Sprint(round))[0]
				got := receive(t, chs[i])
				assert.Equal(t, want.UUID, got.UUID)
				got.Ack()
			}
			awaitOneBlockedXREAD(t, e, "many-topics")
		}
	})

	t.Run("a subscriber and group per handler on one client", func(t *testing.T) {
		client := namedClient(t, e, "per-handler")
		topics := []string{newTopic(), newTopic()}
		var chs []<-chan *message.Message
		for i := range 20 {
			sub, err := millrace.NewSubscriber(client, groupConfig(fmt.Sprint("handler-", i)), nil)
			require.NoError(t, err)
			defer sub.Close()
			chs = append(chs, subscribe(t, sub, topics[i%2]))
		}
		awaitOneBlockedXREAD(t, e, "per-handler")
		sent := map[string]string{}
		for _, topic := range topics {
			sent[topic] = publish(t, pub, topic, "event")[0].UUID
		}
		for i, ch := range chs {
			got := receive(t, ch)
			assert.Equal(t, sent[topics[i%2]], got.UUID, "handler %d", i)
			got.Ack()
		}
		awaitOneBlockedXREAD(t, e, "per-handler")
		assert.Equal(t, 1, pubSubClients(t, e.client, "per-handler"), "one connection hears the delayed-message announcements")
	})
}

// A subscription that starts while the shared wait is blocked does not wait
// for that wait's BLOCK to end: it interrupts it.
func TestNews_JoinInterruptsTheWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})
	client := namedClient(t, e, "join")
	cfg := groupConfig("g")
	cfg.BlockTime = time.Hour
	sub, err := millrace.NewSubscriber(client, cfg, nil)
	require.NoError(t, err)
	defer sub.Close()

	subscribe(t, sub, newTopic())
	awaitOneBlockedXREAD(t, e, "join")
	late := newTopic()
	ch := subscribe(t, sub, late)
	want := publish(t, pub, late, "x")[0]
	got := receive(t, ch) // within 15s: far less than the hour-long BLOCK
	assert.Equal(t, want.UUID, got.UUID)
	got.Ack()

	// Close ends the hour-long wait too.
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.NoError(t, sub.Close())
	}()
	requireDone(t, ctxDone(done), "Close")
	require.Eventually(t, func() bool { return len(blockedReads(t, e.client, "join")) == 0 }, 10*time.Second, 5*time.Millisecond)
}

// ctxDone is a context that ends when done is closed.
func ctxDone(done <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-done
		cancel()
	}()
	return ctx
}

// A hot topic does not starve a quiet one of the same Subscriber: a message
// on the quiet topic arrives while the hot topic's backlog is being read.
func TestNews_HotTopicDoesNotStarveQuietOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.publisher(t, millrace.PublisherConfig{})
	sub := e.subscriber(t, groupConfig("g"))
	hot, quiet := newTopic(), newTopic()
	hotCh := subscribe(t, sub, hot)
	quietCh := subscribe(t, sub, quiet)

	const backlog = 5000
	msgs := make([]*message.Message, backlog)
	for i := range msgs {
		msgs[i] = message.NewMessage(fmt.Sprint(i), []byte("hot"))
	}
	require.NoError(t, pub.Publish(hot, msgs...))
	// The hot topic is read, slowly, while the quiet one gets a message.
	read := 0
	for ; read < 10; read++ {
		receive(t, hotCh).Ack()
	}
	want := publish(t, pub, quiet, "quiet")[0]
	got := receive(t, quietCh)
	assert.Equal(t, want.UUID, got.UUID)
	got.Ack()
	left := pendingOrUnread(t, e.client, hot, "g")
	assert.Greater(t, left, int64(backlog/2), "the quiet message came before most of the hot backlog was read")
	for ; read < backlog; read++ {
		receive(t, hotCh).Ack()
	}
}

// pendingOrUnread is the entries of stream not yet acknowledged by group.
func pendingOrUnread(t *testing.T, c redis.UniversalClient, stream, group string) int64 {
	t.Helper()
	g, ok := groupInfo(t, c, stream, group)
	require.True(t, ok)
	return g.Lag + g.Pending
}

// cmdCalls is the calls of cmd in INFO commandstats.
func cmdCalls(t *testing.T, c redis.UniversalClient, cmd string) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	for _, l := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "cmdstat_"+cmd+":calls="); ok {
			n, err := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	return 0
}

// A quiet topic is not scanned for idle entries: one XPENDING that finds
// nothing pending stands for the scans until an entry is added (or for
// ClaimMinIdle). Entries a consumer then takes and abandons are still taken
// over.
func TestClaim_QuietTopicSkipsScans(t *testing.T) {
	t.Parallel()
	// It counts commands: a server of its own, even when REDIS_URL is set.
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	e := &env{srv: srv, client: srv.Client(t)}
	topic := newTopic()
	cfg := groupConfig("g")
	cfg.ClaimMinIdle = 2 * time.Second // the quiet look's pace
	cfg.ClaimInterval = 20 * time.Millisecond
	sub, err := millrace.NewSubscriber(namedClient(t, e, "quiet"), cfg, nil)
	require.NoError(t, err)
	defer sub.Close()
	ch := subscribe(t, sub, topic)
	// Once the reader waits for news, the claimer's next look is one
	// XPENDING, and then nothing.
	awaitOneBlockedXREAD(t, e, "quiet")
	waiting := cmdCalls(t, e.client, "xpending")
	require.Eventually(t, func() bool { return cmdCalls(t, e.client, "xpending") > waiting }, 10*time.Second, 5*time.Millisecond)

	before := cmdCalls(t, e.client, "xautoclaim")
	pending := cmdCalls(t, e.client, "xpending")
	requireNoMessage(t, ch, 500*time.Millisecond) // 25 claim intervals
	assert.Zero(t, cmdCalls(t, e.client, "xautoclaim")-before, "XAUTOCLAIM on a quiet topic")
	assert.Zero(t, cmdCalls(t, e.client, "xpending")-pending, "XPENDING on a quiet topic")

	// Another consumer takes an entry and dies with it: it is taken over.
	ctx := context.Background()
	_, err = e.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: []string{"job", "abandoned"}})
		p.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "dead", Streams: []string{topic, ">"}, Count: 1, Block: -1})
		return nil
	})
	require.NoError(t, err)
	got := receive(t, ch)
	assert.Equal(t, "true", got.Metadata.Get(millrace.MetadataForeign))
	assert.Contains(t, string(got.Payload), "abandoned")
	got.Ack()
}
