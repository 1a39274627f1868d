package millrace_test

// Fault tests: real redis-server processes on loopback, real faults. Each
// test publishes messages (retrying failed Publish calls, as a producer
// must), runs consumers, injects its fault and asserts that every message
// was handled at least once. Each logs one line in a fixed format, the
// source of the figures in docs/reliability.md:
//
//	FAULT <name>: published=N handled=N lost=0 duplicates=D (redelivered=R republished=P) <test-specific figures>
//
// handled counts distinct messages (UUIDs) handled at least once; duplicates
// counts handlings beyond the first, split into redeliveries of one entry
// (the at-least-once kind) and extra entries of one message, written by a
// retry after the first XADD had in fact gone through (republished): go-redis
// retries a command whose connection timed out or was cut, and so does a
// producer whose Publish returned an error.
//
// Figures of the in-process flows: publish_retries counts failed Publish
// calls the producer retried; slowest_publish is the longest time one
// message took to publish, retries included (how long producers were held
// up); max_delay is the longest time from Publish returning to the first
// handling of its message. Recovery figures, per fault:
//   - resumed: from the end of the fault until the first message published
//     after it was handled (the end-to-end outage beyond the fault itself);
//   - drained: from the end of the fault until every message published
//     before its end was handled (what was in flight is recovered);
//   - for killed consumers, recovered_first and recovered_all: from the
//     SIGKILL until the first, and until the last, of the entries the killed
//     processes held was handled by a successor.
//
// Run them with: go test -race -count=1 -run 'TestFault' -v . | grep FAULT

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
	"github.com/millrace/millrace/internal/testchild"
)

// faultClaimMinIdle is small so that entries of dead consumers come back
// quickly; live consumers extend their leases every third of it.
const faultClaimMinIdle = 500 * time.Millisecond

// faultSubscriberConfig is the consumer config of the in-process fault
// tests.
func faultSubscriberConfig(group, consumer string) millrace.SubscriberConfig {
	return millrace.SubscriberConfig{
		ConsumerGroup: group,
		Consumer:      consumer,
		ClaimMinIdle:  faultClaimMinIdle,
		MaxInFlight:   4,
		BlockTime:     200 * time.Millisecond,
		CloseTimeout:  2 * time.Second,
	}
}

// ---------------------------------------------------------------------------
// Counting

// faultCounts are the figures every fault test reports.
type faultCounts struct {
	published   int // distinct messages whose Publish returned nil
	handled     int // distinct published messages handled at least once
	lost        []string
	duplicates  int // handlings beyond the first, per UUID
	redelivered int // handlings beyond the first, per entry
	republished int // entries beyond the first, per UUID
}

// countFaults computes faultCounts from the UUIDs published and the handling
// counts per UUID and per entry ID.
func countFaults(published []string, byUUID, byEntry map[string]int) faultCounts {
	c := faultCounts{published: len(published)}
	for _, u := range published {
		if byUUID[u] > 0 {
			c.handled++
		} else {
			c.lost = append(c.lost, u)
		}
	}
	for _, n := range byUUID {
		c.duplicates += n - 1
	}
	for _, n := range byEntry {
		c.redelivered += n - 1
	}
	c.republished = c.duplicates - c.redelivered
	return c
}

// report logs the FAULT line and fails the test if anything was lost.
func (c faultCounts) report(t *testing.T, name, figures string) {
	t.Helper()
	t.Logf("FAULT %s: published=%d handled=%d lost=%d duplicates=%d (redelivered=%d republished=%d) %s",
		name, c.published, c.handled, len(c.lost), c.duplicates, c.redelivered, c.republished, figures)
	if len(c.lost) > 0 {
		t.Errorf("%d messages never handled, e.g. %v", len(c.lost), c.lost[:min(len(c.lost), 10)])
	}
}

// faultLedger records, in memory, what the publisher and the in-process
// consumers of one test did and when.
type faultLedger struct {
	mu        sync.Mutex
	order     []string             // UUIDs in publish order
	published map[string]time.Time // when Publish returned nil
	byUUID    map[string]int
	byEntry   map[string]int
	first     map[string]time.Time // first handling of a UUID
	slowest   time.Duration        // longest publishing of one message, retries included
}

func newFaultLedger() *faultLedger {
	return &faultLedger{
		published: map[string]time.Time{},
		byUUID:    map[string]int{},
		byEntry:   map[string]int{},
		first:     map[string]time.Time{},
	}
}

// markPublished records that the message was published; took is how long
// publishing it took, retries included.
func (l *faultLedger) markPublished(uuid string, took time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.order = append(l.order, uuid)
	l.published[uuid] = now
	l.slowest = max(l.slowest, took)
}

func (l *faultLedger) slowestPublish() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.slowest
}

func (l *faultLedger) markHandled(m *message.Message) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byUUID[m.UUID]++
	l.byEntry[m.Metadata.Get(millrace.MetadataEntryID)]++
	if _, ok := l.first[m.UUID]; !ok {
		l.first[m.UUID] = now
	}
}

func (l *faultLedger) publishedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.order)
}

// allHandled reports whether every published message was handled.
func (l *faultLedger) allHandled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, u := range l.order {
		if l.byUUID[u] == 0 {
			return false
		}
	}
	return true
}

func (l *faultLedger) counts() faultCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return countFaults(l.order, l.byUUID, l.byEntry)
}

// resumed is the time from end until the first message published after end
// was handled; -1 when there is none.
func (l *faultLedger) resumed(end time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	best := time.Duration(-1)
	for u, at := range l.published {
		h, ok := l.first[u]
		if !ok || at.Before(end) {
			continue
		}
		if d := max(h.Sub(end), 0); best < 0 || d < best {
			best = d
		}
	}
	return best
}

// drained is the time from end until every message published before end was
// handled (0 when all were handled before end).
func (l *faultLedger) drained(end time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var worst time.Duration
	for u, at := range l.published {
		if !at.Before(end) {
			continue
		}
		if h, ok := l.first[u]; ok {
			worst = max(worst, h.Sub(end))
		}
	}
	return worst
}

// maxDelay is the longest time from a Publish returning to the first
// handling of its message.
func (l *faultLedger) maxDelay() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var worst time.Duration
	for u, at := range l.published {
		if h, ok := l.first[u]; ok {
			worst = max(worst, h.Sub(at))
		}
	}
	return worst
}

// ---------------------------------------------------------------------------
// Publishing with retry

// faultPublishTimeout bounds the retries of one message.
const faultPublishTimeout = 30 * time.Second

// publishRetrying publishes msgs in one call, retrying the whole call until
// it succeeds, as a producer that must not drop messages does. A retry after
// an error whose XADDs went through writes the messages again: those are
// the "republished" duplicates.
func publishRetrying(pub message.Publisher, topic string, msgs ...*message.Message) (attempts int, err error) {
	deadline := time.Now().Add(faultPublishTimeout)
	for {
		attempts++
		err = pub.Publish(topic, msgs...)
		if err == nil || time.Now().After(deadline) {
			return attempts, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// faultFlow is one in-process fault scenario: a publisher goroutine adding
// messages at a steady pace until told to stop, consumers handling them, and
// the test injecting faults meanwhile.
type faultFlow struct {
	t       *testing.T
	topic   string
	group   string
	inspect redis.UniversalClient // talks to Redis directly, never faulted
	ledger  *faultLedger
	pubErr  chan error
	stopPub chan struct{}
	stopped sync.Once

	retriesMu sync.Mutex
	retries   int // Publish calls that failed and were retried

	ends        []time.Time // when each fault ended
	publishedAt int         // messages published when the last fault ended
}

// startFaultFlow starts consumers (one Subscriber each, on subClient) and a
// publisher goroutine (on pubClient) that adds one message every interval,
// one Publish per message.
func startFaultFlow(t *testing.T, pubClient, subClient, inspect redis.UniversalClient, consumers int, interval time.Duration) *faultFlow {
	t.Helper()
	f := &faultFlow{
		t:       t,
		topic:   newTopic(),
		group:   "g",
		inspect: inspect,
		ledger:  newFaultLedger(),
		pubErr:  make(chan error, 1),
		stopPub: make(chan struct{}),
	}
	for i := range consumers {
		f.consume(t, subClient, faultSubscriberConfig(f.group, "c"+strconv.Itoa(i+1)))
	}

	pub, err := millrace.NewPublisher(pubClient, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	var publishing sync.WaitGroup
	publishing.Add(1)
	go func() {
		defer publishing.Done()
		f.pubErr <- f.publish(pub, interval)
	}()
	t.Cleanup(func() {
		f.stopPublishing()
		publishing.Wait()
		require.NoError(t, pub.Close())
	})
	return f
}

func (f *faultFlow) stopPublishing() { f.stopped.Do(func() { close(f.stopPub) }) }

func (f *faultFlow) publish(pub *millrace.Publisher, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		msg := message.NewMessage(watermill.NewUUID(), []byte("message "+strconv.Itoa(i)))
		start := time.Now()
		attempts, err := publishRetrying(pub, f.topic, msg)
		took := time.Since(start)
		f.retriesMu.Lock()
		f.retries += attempts - 1
		f.retriesMu.Unlock()
		if err != nil {
			return fmt.Errorf("message %d not published after %s: %w", i, faultPublishTimeout, err)
		}
		f.ledger.markPublished(msg.UUID, took)
		select {
		case <-tick.C:
		case <-f.stopPub:
			return nil
		}
	}
}

// consume starts one subscriber whose handler takes up to 2ms, records the
// message and acknowledges it.
func (f *faultFlow) consume(t *testing.T, client redis.UniversalClient, cfg millrace.SubscriberConfig) {
	t.Helper()
	sub, err := millrace.NewSubscriber(client, cfg, testLogger)
	require.NoError(t, err)
	ch, err := sub.Subscribe(context.Background(), f.topic)
	require.NoError(t, err)
	var handlers sync.WaitGroup
	handlers.Add(1)
	go func() {
		defer handlers.Done()
		for m := range ch {
			handlers.Add(1)
			go func() {
				defer handlers.Done()
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				f.ledger.markHandled(m)
				m.Ack()
			}()
		}
	}()
	t.Cleanup(func() {
		require.NoError(t, sub.Close())
		handlers.Wait()
	})
}

// waitPublished waits until k messages were published.
func (f *faultFlow) waitPublished(k int) {
	f.t.Helper()
	require.Eventually(f.t, func() bool { return f.ledger.publishedCount() >= k }, 60*time.Second, 5*time.Millisecond,
		"only %d of %d messages published", f.ledger.publishedCount(), k)
}

// faultEnded records that a fault is over.
func (f *faultFlow) faultEnded() {
	f.ends = append(f.ends, time.Now())
	f.publishedAt = f.ledger.publishedCount()
}

// finish lets the publisher add tail more messages after the last fault,
// stops it, waits for every message to be handled and for the group's PEL to
// be empty, then reports the figures.
func (f *faultFlow) finish(name string, tail int, figures string) faultCounts {
	t := f.t
	t.Helper()
	f.waitPublished(f.publishedAt + tail)
	f.stopPublishing()
	select {
	case err := <-f.pubErr:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("publisher did not stop")
	}
	// Everything published must be handled; give redeliveries time.
	complete := assert.Eventually(t, f.ledger.allHandled, 30*time.Second, 10*time.Millisecond, "not every message was handled")
	if complete {
		assert.Eventually(t, func() bool {
			p, err := f.inspect.XPending(context.Background(), f.topic, f.group).Result()
			return err == nil && p.Count == 0
		}, 10*time.Second, 10*time.Millisecond, "entries left pending")
	}
	var resumed, drained []string
	for _, end := range f.ends {
		resumed = append(resumed, fmtDur(f.ledger.resumed(end)))
		drained = append(drained, fmtDur(f.ledger.drained(end)))
	}
	c := f.ledger.counts()
	f.retriesMu.Lock()
	retries := f.retries
	f.retriesMu.Unlock()
	c.report(t, name, fmt.Sprintf("publish_retries=%d slowest_publish=%s resumed=[%s] drained=[%s] max_delay=%s %s",
		retries, fmtDur(f.ledger.slowestPublish()), strings.Join(resumed, " "), strings.Join(drained, " "), fmtDur(f.ledger.maxDelay()), figures))
	return c
}

// fmtDur rounds d for the FAULT lines: milliseconds, "none" for -1.
func fmtDur(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return d.Round(time.Millisecond).String()
}

// faultSize is the number of messages of a flow: fewer with -short.
func faultSize(full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

// ---------------------------------------------------------------------------
// 1. Consumer processes killed with SIGKILL mid-handler

// Consumer processes (the test binary re-run as TestFaultChildConsumer) are
// killed with SIGKILL three times while their handlers run, and replaced:
// first by processes with the same consumer names (which read back their
// own pending entries), then by processes with new names (which claim the
// dead consumers' entries after ClaimMinIdle). Handlings are recorded in
// Redis, so they are counted across processes.
func TestFaultConsumerKilled(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	client := srv.Client(t)
	ctx := context.Background()
	topic, group := newTopic(), "g"
	n := 600       // enough that three rounds of kills never finish the work
	perRound := 40 // handled between a recovery and the next kill

	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	require.NoError(t, createGroupAt(client, topic, group))
	uuids := make([]string, 0, n)
	for batch := 0; batch < n; batch += 100 {
		msgs := make([]*message.Message, 0, 100)
		for i := batch; i < min(batch+100, n); i++ {
			msgs = append(msgs, message.NewMessage(watermill.NewUUID(), []byte("message "+strconv.Itoa(i))))
		}
		_, err := publishRetrying(pub, topic, msgs...)
		require.NoError(t, err)
		for _, m := range msgs {
			uuids = append(uuids, m.UUID)
		}
	}

	keys := "fault:" + topic + ":"
	spec := func(consumer string) faultChildSpec {
		return faultChildSpec{
			URL: srv.URL(), Topic: topic, Group: group, Consumer: consumer,
			ClaimMinIdle: faultClaimMinIdle, MaxInFlight: 2, Prefetch: 10, HandlerDelay: 50 * time.Millisecond,
			StartedKey: keys + "started", HandledKey: keys + "handled", EntriesKey: keys + "entries",
			HistoryKey: keys + "history",
		}
	}
	handledCount := func() int {
		n, err := client.HLen(ctx, keys+"handled").Result()
		require.NoError(t, err)
		return int(n)
	}
	pendingIDs := func() []string {
		p, err := client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: topic, Group: group, Start: "-", End: "+", Count: 100000}).Result()
		require.NoError(t, err)
		ids := make([]string, len(p))
		for i, e := range p {
			ids[i] = e.ID
		}
		return ids
	}
	// midHandler counts the messages whose handler started more often than
	// it completed: killed in the middle of their handler.
	midHandler := func() int {
		started, err := client.HGetAll(ctx, keys+"started").Result()
		require.NoError(t, err)
		handled, err := client.HGetAll(ctx, keys+"handled").Result()
		require.NoError(t, err)
		k := 0
		for u, s := range started {
			if atoiOr0(s) > atoiOr0(handled[u]) {
				k++
			}
		}
		return k
	}

	// Three rounds end with a kill; the last one runs to completion. The
	// successors of the first kill have the same names, those of the
	// second new names, those of the third one of each.
	rounds := [][]string{{"w1", "w2"}, {"w1", "w2"}, {"w3", "w4"}, {"w3", "w5"}}
	var (
		held       [][]string // per kill, the entries pending once the processes were gone
		kills      []int64    // per kill, unix millis once the processes were gone
		midKilled  []string
		heldSizes  []string
		heldTotal  int
		midTotal   int
		lastRunner []*testchild.Child
	)
	for r, names := range rounds {
		var children []*testchild.Child
		for _, name := range names {
			children = append(children, startFaultChild(t, spec(name)))
		}
		if len(held) > 0 {
			last := held[len(held)-1]
			require.Eventually(t, func() bool {
				return !slices.ContainsFunc(pendingIDs(), func(id string) bool { return slices.Contains(last, id) })
			}, 30*time.Second, 10*time.Millisecond, "entries of the killed consumers not recovered")
		}
		if r == len(rounds)-1 {
			lastRunner = children
			break
		}
		before := handledCount()
		require.Eventually(t, func() bool { return handledCount() >= before+perRound }, 30*time.Second, 5*time.Millisecond,
			"round %d: consumers %v handled nothing", r+1, names)
		require.Less(t, handledCount(), n, "round %d: everything was handled before the kill; raise n", r+1)
		time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)

		for _, c := range children {
			c.Signal(syscall.SIGKILL)
		}
		for _, c := range children {
			c.Kill()
		}
		kills = append(kills, time.Now().UnixMilli()) // every handling of the killed processes is older
		ids := pendingIDs()
		held = append(held, ids)
		mid := midHandler() - midTotal // the count is cumulative: a message killed mid-handler stays started > handled
		heldTotal += len(ids)
		midTotal += mid
		heldSizes = append(heldSizes, strconv.Itoa(len(ids)))
		midKilled = append(midKilled, strconv.Itoa(mid))
	}

	require.Eventually(t, func() bool { return handledCount() == n }, 60*time.Second, 10*time.Millisecond,
		"only %d of %d messages handled", handledCount(), n)
	require.Eventually(t, func() bool { return len(pendingIDs()) == 0 }, 10*time.Second, 10*time.Millisecond, "entries left pending")
	for _, c := range lastRunner {
		c.Kill()
	}

	byUUID := hgetallInts(t, client, keys+"handled")
	byEntry := hgetallInts(t, client, keys+"entries")
	history := readHandlingHistory(t, client, keys+"history")
	// Recovery per kill: from the kill until the first, and until the last,
	// of the entries the killed processes held was handled by a successor.
	var firstBack, allBack []string
	for i, ids := range held {
		first, last := int64(-1), int64(0)
		for _, id := range ids {
			for _, h := range history[id] {
				if h.at >= kills[i] {
					d := h.at - kills[i]
					if first < 0 || d < first {
						first = d
					}
					last = max(last, d)
					break
				}
			}
		}
		firstBack = append(firstBack, fmtDur(time.Duration(first)*time.Millisecond))
		allBack = append(allBack, fmtDur(time.Duration(last)*time.Millisecond))
	}
	c := countFaults(uuids, byUUID, byEntry)
	c.report(t, "consumer-sigkill", fmt.Sprintf("kills=3 successors=[same-names new-names mixed] held_at_kill=[%s] mid_handler_at_kill=[%s] recovered_first=[%s] recovered_all=[%s]",
		strings.Join(heldSizes, " "), strings.Join(midKilled, " "), strings.Join(firstBack, " "), strings.Join(allBack, " ")))
	assert.Positive(t, midTotal, "no kill hit a handler mid-way: the test did not test what it says")
	assert.LessOrEqual(t, c.duplicates, heldTotal, "only entries held by a killed consumer may be handled twice")
	checkDuplicatesFollowKills(t, history, byEntry, kills)
	assert.Zero(t, c.republished)
}

// handling is one completed handling in a child consumer's history.
type handling struct {
	consumer string
	count    string // MetadataDeliveryCount
	at       int64  // unix millis
}

// readHandlingHistory reads the history list the child consumers keep, one
// line per completed handling ("entryID consumer deliveryCount unixMillis"),
// as the handlings of each entry in time order.
func readHandlingHistory(t *testing.T, c redis.UniversalClient, key string) map[string][]handling {
	t.Helper()
	lines, err := c.LRange(context.Background(), key, 0, -1).Result()
	require.NoError(t, err)
	history := map[string][]handling{}
	for _, l := range lines {
		f := strings.Fields(l)
		require.Len(t, f, 4, "history line %q", l)
		at, err := strconv.ParseInt(f[3], 10, 64)
		require.NoError(t, err)
		history[f[0]] = append(history[f[0]], handling{consumer: f[1], count: f[2], at: at})
	}
	for _, hs := range history {
		sort.SliceStable(hs, func(i, j int) bool { return hs[i].at < hs[j].at })
	}
	return history
}

// checkDuplicatesFollowKills fails the test for every entry handled a
// second time without a kill in between: a live consumer's entry taken by
// another one.
func checkDuplicatesFollowKills(t *testing.T, history map[string][]handling, byEntry map[string]int, kills []int64) {
	t.Helper()
	var bad []string
	for id, n := range byEntry {
		if n < 2 {
			continue
		}
		hs := history[id]
		for i := 1; i < len(hs); i++ {
			prev, cur := hs[i-1].at, hs[i].at
			if slices.ContainsFunc(kills, func(k int64) bool { return prev <= k && k <= cur }) {
				continue
			}
			var s []string
			for _, h := range hs {
				s = append(s, fmt.Sprintf("%s delivery %s at %d", h.consumer, h.count, h.at))
			}
			bad = append(bad, id+": "+strings.Join(s, " | "))
			break
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		t.Errorf("%d entries were handled again with no kill in between (kills done at %v, unix ms): "+
			"a live consumer's entries were claimed by another one. For example:\n%s",
			len(bad), kills, strings.Join(bad[:min(len(bad), 10)], "\n"))
	}
}

func atoiOr0(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func hgetallInts(t *testing.T, c redis.UniversalClient, key string) map[string]int {
	t.Helper()
	raw, err := c.HGetAll(context.Background(), key).Result()
	require.NoError(t, err)
	out := make(map[string]int, len(raw))
	for k, v := range raw {
		out[k] = atoiOr0(v)
	}
	return out
}

// createGroupAt creates group at the start of topic (the stream is created
// if missing), as a deployment does before its consumers start.
func createGroupAt(c redis.UniversalClient, topic, group string) error {
	err := c.XGroupCreateMkStream(context.Background(), topic, group, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return err
	}
	return nil
}

// ---------------------------------------------------------------------------
// 2. redis-server restarted twice

// redis-server (AOF, appendfsync always) is restarted twice while messages
// are published and consumed.
func TestFaultRedisRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	f := startFaultFlow(t, srv.Client(t), srv.Client(t), srv.Client(t), 2, 4*time.Millisecond)
	step := faultSize(200, 100)

	var outages []string
	for i := 1; i <= 2; i++ {
		f.waitPublished(i * step)
		start := time.Now()
		srv.Restart(t)
		f.faultEnded()
		outages = append(outages, fmtDur(time.Since(start)))
	}
	f.finish("redis-restart", step, "restarts=2 restart_took=["+strings.Join(outages, " ")+"]")
}

// ---------------------------------------------------------------------------
// 3. Connections cut at random by a proxy

// A TCP proxy between the clients and Redis closes a random live connection
// every 100–300 ms for a few seconds: blocked reads, pipelines, XACKs and
// XCLAIMs are all cut at some point.
func TestFaultConnectionsCut(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	proxy := startFaultProxy(t, srv.Addr())
	viaProxy := func() *redis.Client {
		o := srv.Options(t)
		o.Addr = proxy.Addr()
		c := redis.NewClient(o)
		t.Cleanup(func() { c.Close() })
		return c
	}
	f := startFaultFlow(t, viaProxy(), viaProxy(), srv.Client(t), 2, 4*time.Millisecond)

	f.waitPublished(100)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	cutFor := 4 * time.Second
	if testing.Short() {
		cutFor = 2 * time.Second
	}
	for end := time.Now().Add(cutFor); time.Now().Before(end); {
		time.Sleep(time.Duration(100+rng.IntN(200)) * time.Millisecond)
		proxy.cutRandom(rng)
	}
	f.faultEnded()
	f.finish("connections-cut", faultSize(200, 100), fmt.Sprintf("cut_for=%s cuts=%d", cutFor, proxy.cutCount()))
}

// ---------------------------------------------------------------------------
// 4. redis-server frozen

// redis-server is stopped with SIGSTOP for 3 s (it keeps its sockets open
// and answers nothing, like a hung server or a partition) and resumed.
// Redis's clock runs on meanwhile, so after the thaw every pending entry
// looks idle for 3 s, longer than ClaimMinIdle.
func TestFaultRedisFrozen(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	f := startFaultFlow(t, srv.Client(t), srv.Client(t), srv.Client(t), 2, 4*time.Millisecond)

	f.waitPublished(faultSize(200, 100))
	const frozen = 3 * time.Second
	srv.Freeze()
	time.Sleep(frozen)
	srv.Thaw()
	f.faultEnded()
	f.finish("redis-frozen", faultSize(200, 100), "frozen_for="+frozen.String())
}

// ---------------------------------------------------------------------------
// 5. Poison messages

// faultPoisonMaxDeliveries is the MaxDeliveries of the poison tests.
const faultPoisonMaxDeliveries = 5

// A poison message among good ones, Nacked by every handler: it is handed
// out exactly MaxDeliveries times (delivery counts 1..5), then moved to the
// dead-letter topic and acknowledged; every good message is handled.
func TestFaultPoisonNacked(t *testing.T) {
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	ledger := newFaultLedger()
	poison := message.NewMessage("poison-"+watermill.NewShortUUID(), []byte("poison"))

	var mu sync.Mutex
	var counts []string
	var firstDelivery time.Time
	var handlers sync.WaitGroup
	t.Cleanup(handlers.Wait) // registered first, so it runs after the subscribers are closed
	for _, name := range []string{"c1", "c2"} {
		cfg := faultSubscriberConfig("g", name)
		cfg.MaxDeliveries = faultPoisonMaxDeliveries
		cfg.NackBackoff = 20 * time.Millisecond
		ch := subscribe(t, e.subscriber(t, cfg), topic)
		handlers.Go(func() {
			for m := range ch {
				if m.UUID == poison.UUID {
					mu.Lock()
					if len(counts) == 0 {
						firstDelivery = time.Now()
					}
					counts = append(counts, m.Metadata.Get(millrace.MetadataDeliveryCount))
					mu.Unlock()
					m.Nack()
					continue
				}
				ledger.markHandled(m)
				m.Ack()
			}
		})
	}

	msgs := make([]*message.Message, 0, 51)
	for i := range 50 {
		if i == 20 {
			msgs = append(msgs, poison)
		}
		msgs = append(msgs, message.NewMessage(watermill.NewUUID(), []byte("good "+strconv.Itoa(i))))
	}
	_, err := publishRetrying(pub, topic, msgs...)
	require.NoError(t, err)
	for _, m := range msgs {
		if m != poison {
			ledger.markPublished(m.UUID, 0)
		}
	}

	dlq := millrace.DeadLetterTopic(topic)
	require.Eventually(t, func() bool { return xlen(t, e.client, dlq) == 1 }, 15*time.Second, 10*time.Millisecond, "poison not dead-lettered")
	deadAfter := time.Since(firstDelivery)
	require.Eventually(t, ledger.allHandled, 15*time.Second, 10*time.Millisecond, "good messages missing")
	require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") == 0 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // no late delivery

	mu.Lock()
	got := slices.Clone(counts)
	mu.Unlock()
	assert.Equal(t, []string{"1", "2", "3", "4", "5"}, got, "delivery counts of the poison message")
	dead := decode(t, entries(t, e.client, dlq)[0].Values)
	assert.Equal(t, poison.UUID, dead.UUID)
	assert.Contains(t, dead.Metadata.Get(middleware.ReasonForPoisonedKey), "MaxDeliveries")
	c := ledger.counts()
	c.report(t, "poison-nack", fmt.Sprintf("poison_deliveries=%d dead_lettered=%d dead_lettered_after=%s",
		len(got), xlen(t, e.client, dlq), fmtDur(deadAfter)))
	assert.Zero(t, c.duplicates)
}

// The same with a handler that crashes its process (SIGKILL) on the poison
// message: Redis's delivery counter counts the crashes, so the message is
// handed to a handler exactly MaxDeliveries times across restarts (with the
// same name and with new names) and then dead-lettered; the good messages
// around it, read into the same processes, are all handled.
func TestFaultPoisonCrash(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	client := srv.Client(t)
	ctx := context.Background()
	topic, group := newTopic(), "g"
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, testLogger)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	require.NoError(t, createGroupAt(client, topic, group))

	poison := message.NewMessage("poison-"+watermill.NewShortUUID(), []byte("poison"))
	var good []string
	msgs := make([]*message.Message, 0, 31)
	for i := range 30 {
		if i == 10 {
			msgs = append(msgs, poison)
		}
		m := message.NewMessage(watermill.NewUUID(), []byte("good "+strconv.Itoa(i)))
		msgs = append(msgs, m)
		good = append(good, m.UUID)
	}
	_, err = publishRetrying(pub, topic, msgs...)
	require.NoError(t, err)

	keys := "fault:" + topic + ":"
	spec := func(consumer string) faultChildSpec {
		return faultChildSpec{
			URL: srv.URL(), Topic: topic, Group: group, Consumer: consumer,
			ClaimMinIdle: faultClaimMinIdle, MaxDeliveries: faultPoisonMaxDeliveries, MaxInFlight: 1,
			StartedKey: keys + "started", HandledKey: keys + "handled", EntriesKey: keys + "entries",
			PoisonUUID: poison.UUID, PoisonKey: keys + "poison",
		}
	}
	poisonCounts := func() []string {
		l, err := client.LRange(ctx, keys+"poison", 0, -1).Result()
		require.NoError(t, err)
		return l
	}
	dlq := millrace.DeadLetterTopic(topic)

	// Each process crashes on the poison message, until the sixth, which
	// finds it delivered more than MaxDeliveries times.
	names := []string{"p1", "p1", "p2", "p2", "p3", "p3"}
	start := time.Now()
	for i, name := range names {
		child := startFaultChild(t, spec(name))
		if i < faultPoisonMaxDeliveries {
			require.True(t, child.Wait(20*time.Second), "process %d (%s) did not crash on the poison message", i+1, name)
			require.Len(t, poisonCounts(), i+1, "process %d", i+1)
			continue
		}
		require.Eventually(t, func() bool { return xlen(t, client, dlq) >= 1 }, 20*time.Second, 10*time.Millisecond, "poison not dead-lettered")
		deadAfter := time.Since(start)
		// Settled: nothing pending any more, every good message handled or
		// dead-lettered.
		require.Eventually(t, func() bool {
			return pendingCount(t, client, topic, group) == 0 && xlen(t, client, topic) == int64(len(msgs))
		}, 15*time.Second, 10*time.Millisecond, "entries left pending")
		time.Sleep(300 * time.Millisecond)
		child.Kill()

		// Good messages in the dead-letter stream: never handed to a handler
		// (read ahead into a process that crashed on the poison message), or
		// handled, acknowledged, and yet counted again because the crash
		// beat the batched XACK.
		byUUID := hgetallInts(t, client, keys+"handled")
		var neverHandled, handledThenDead []string
		for _, d := range entries(t, client, dlq) {
			m := decode(t, d.Values)
			if m.UUID == poison.UUID {
				continue
			}
			what := m.UUID + " (" + m.Metadata.Get(middleware.ReasonForPoisonedKey) + ")"
			if byUUID[m.UUID] == 0 {
				neverHandled = append(neverHandled, what)
			} else {
				handledThenDead = append(handledThenDead, fmt.Sprintf("%s handled %d times", what, byUUID[m.UUID]))
			}
		}
		c := countFaults(good, byUUID, hgetallInts(t, client, keys+"entries"))
		c.report(t, "poison-crash", fmt.Sprintf("crashes=%d poison_deliveries=%d dead_lettered=%d good_dead_lettered=%d (never_handled=%d handled_first=%d) dead_lettered_after=%s",
			faultPoisonMaxDeliveries, len(poisonCounts()), xlen(t, client, dlq), len(neverHandled)+len(handledThenDead),
			len(neverHandled), len(handledThenDead), fmtDur(deadAfter)))
		assert.Equal(t, []string{"1", "2", "3", "4", "5"}, poisonCounts(), "delivery counts of the poison message")
		assert.Empty(t, neverHandled, "good messages dead-lettered without ever reaching a handler: "+
			"they were read ahead (Prefetch) into the processes that crashed, and every crash counted against them")
		assert.Empty(t, handledThenDead, "good messages handled successfully, yet dead-lettered: "+
			"each crash came before their batched XACK went out, and counted against them")
	}
}

// ---------------------------------------------------------------------------
// 6. Slow handler

// A handler that runs 3× ClaimMinIdle, with a second, idle consumer in the
// group: the holder extends its leases, so every message, including those
// queued behind the slow one, is delivered exactly once.
func TestFaultSlowHandler(t *testing.T) {
	e := newEnv(t)
	topic := newTopic()
	pub := e.publisher(t, millrace.PublisherConfig{})
	const minIdle = 300 * time.Millisecond
	ledger := newFaultLedger()
	var mu sync.Mutex
	var deliveries []string // consumer/uuid/count
	var handlers sync.WaitGroup
	t.Cleanup(handlers.Wait) // registered first, so it runs after the subscribers are closed
	for _, name := range []string{"a", "b"} {
		cfg := faultSubscriberConfig("g", name)
		cfg.ClaimMinIdle = minIdle
		cfg.MaxInFlight = 1
		ch := subscribe(t, e.subscriber(t, cfg), topic)
		handlers.Go(func() {
			for m := range ch {
				mu.Lock()
				deliveries = append(deliveries, name+"/"+m.UUID+"/"+m.Metadata.Get(millrace.MetadataDeliveryCount))
				mu.Unlock()
				select {
				case <-time.After(3 * minIdle):
				case <-m.Context().Done():
				}
				ledger.markHandled(m)
				m.Ack()
			}
		})
	}

	msgs := make([]*message.Message, 4)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("slow "+strconv.Itoa(i)))
	}
	start := time.Now()
	_, err := publishRetrying(pub, topic, msgs...)
	require.NoError(t, err)
	for _, m := range msgs {
		ledger.markPublished(m.UUID, 0)
	}
	require.Eventually(t, ledger.allHandled, 30*time.Second, 10*time.Millisecond)
	took := time.Since(start)
	require.Eventually(t, func() bool { return pendingCount(t, e.client, topic, "g") == 0 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(2 * minIdle) // a late claim would deliver again meanwhile

	c := ledger.counts()
	mu.Lock()
	got := slices.Clone(deliveries)
	mu.Unlock()
	sort.Strings(got)
	c.report(t, "slow-handler", fmt.Sprintf("handler=%s claim_min_idle=%s deliveries=%d took=%s", 3*minIdle, minIdle, len(got), fmtDur(took)))
	assert.Len(t, got, len(msgs), "deliveries: %v", got)
	for _, d := range got {
		assert.True(t, strings.HasSuffix(d, "/1"), "a redelivery: %s", d)
	}
}
