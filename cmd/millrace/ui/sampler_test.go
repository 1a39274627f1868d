package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/redistest"
)

// counter counts the commands a client sends and its round trips.
type counter struct {
	mu               sync.Mutex
	commands, visits int
	names            map[string]int
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd)
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.add(cmds...)
		return next(ctx, cmds)
	}
}

func (c *counter) add(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.visits++
	for _, cmd := range cmds {
		c.commands++
		c.names[cmd.Name()]++
	}
}

func (c *counter) get() (commands, visits int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commands, c.visits
}

// events opens the event stream and returns the round numbers it tells.
func events(t *testing.T, ctx context.Context, url string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/events", nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	out := make(chan string, 16)
	go func() {
		defer res.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev roundEvent
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					t.Errorf("round event %q: %v", data, err)
					return
				}
				out <- strconv.FormatUint(ev.Seq, 10)
			}
		}
	}()
	return out
}

// TestSampler_OneLoopForAllTabs checks that open pages cost Redis nothing:
// five event streams and many reads of the figures send no command; one
// round is one pipelined round trip of one EVALSHA per topic (which reads
// the groups' pause states too), and every stream hears of it.
func TestSampler_OneLoopForAllTabs(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	client := srv.Client(t)
	publish(t, client, "orders", 5, 0)
	publish(t, client, "payments", 5, 0)
	require.NoError(t, client.XGroupCreate(context.Background(), "orders", "billing", "0").Err())
	counted := redis.NewClient(srv.Options(t))
	defer counted.Close()
	cnt := &counter{names: map[string]int{}}
	counted.AddHook(cnt)

	con := start(t, counted, Config{Interval: time.Hour, History: 2 * time.Hour}, nil)
	con.waitRound(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var streams []<-chan string
	for range 5 {
		s := events(t, ctx, con.url)
		<-s // the round number when the stream opens
		streams = append(streams, s)
	}
	before, visits := cnt.get()
	for range 10 {
		for _, path := range []string{"/api/overview", "/api/topic?topic=orders", "/"} {
			code, _ := con.do(t, http.MethodGet, path, "", nil)
			require.Equal(t, http.StatusOK, code, path)
		}
	}
	after, _ := cnt.get()
	assert.Equal(t, before, after, "pages read the figures from memory")

	con.sampler.refresh()
	for k, s := range streams {
		select {
		case seq := <-s:
			assert.Equal(t, "2", seq, "stream %d", k)
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d heard of no round", k)
		}
	}
	after, afterVisits := cnt.get()
	assert.Equal(t, 2, after-before, "one EVALSHA per topic")
	assert.Equal(t, 1, afterVisits-visits, "in one round trip")
	t.Logf("commands by name over 2 rounds (the first lists the topics and loads the script): %v", cnt.names)
}

func TestRing(t *testing.T) {
	r := newRing[int](3)
	assert.Empty(t, r.values())
	for v := range 5 {
		r.push(v)
	}
	assert.Equal(t, []int{2, 3, 4}, r.values(), "the oldest values go")
	assert.Equal(t, 0, newRing[int](0).n, "a ring holds at least one value")
}

// rounds builds a history of one topic "t" with group "g", one round a
// second: lags[k] and dlq[k] at round k, entries read growing by 2 a round.
func rounds(lags, dlq []int64) []round {
	base := time.Unix(1700000000, 0)
	var out []round
	for k := range lags {
		out = append(out, round{at: base.Add(time.Duration(k) * time.Second), topics: map[string]topicPoint{
			"t": {length: 100, added: int64(10 * k), deadLetters: dlq[k], groups: map[string]groupPoint{"g": {lag: lags[k], read: int64(2 * k)}}},
		}})
	}
	return out
}

func TestProblems(t *testing.T) {
	var th Thresholds
	th.setDefaults()
	stats := func(lag, dlq int64) admin.TopicStats {
		return admin.TopicStats{Topic: "t", Exists: true, Length: 100, EntriesAdded: 150, DeadLetters: dlq,
			Groups: []admin.GroupStats{{Name: "g", Lag: lag, OldestUndeliveredAge: time.Second}}}
	}
	kinds := func(ps []problem) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Kind)
		}
		return out
	}

	grow := rounds([]int64{1, 2, 3, 4, 5, 6}, []int64{0, 0, 0, 1, 1, 1})
	got := problems(stats(6, 1), grow, th)
	assert.Equal(t, []string{problemLagGrowing, problemDLQGrowing}, kinds(got))
	assert.Equal(t, problem{Kind: problemLagGrowing, Level: "warn", Group: "g", From: 1, Value: 6, Span: 5000}, got[0])

	blip := rounds([]int64{0, 0, 0, 0, 0, 1}, []int64{2, 2, 2, 2, 2, 2})
	assert.Equal(t, []string{problemDeadLetters}, kinds(problems(stats(1, 2), blip, th)), "one round of lag is no trend; old dead letters are a warning")

	s := stats(5, 0)
	s.Groups[0].OldestUndeliveredAge = 2 * time.Minute
	s.Groups[0].Pending, s.Groups[0].OldestPendingAge = 1, time.Hour
	s.EntriesAdded, s.Length = 20000, 20000
	assert.Equal(t, []string{problemBehind, problemOldPending, problemNoRetention}, kinds(problems(s, nil, th)))
}

func TestRates(t *testing.T) {
	h := rounds([]int64{0, 0, 0}, []int64{0, 0, 0})
	assert.InDelta(t, 10, *topicRate(h, "t"), 1e-9)
	assert.InDelta(t, 2, *groupRate(h, "t", "g"), 1e-9)
	assert.Nil(t, topicRate(h[:1], "t"), "one round has no rate")

	h[0].topics["t"].groups["g"] = groupPoint{read: 5}
	assert.Nil(t, groupRate(h, "t", "g"), "a counter that went down (XGROUP SETID) gives no rate")
	h[0].topics["t"] = topicPoint{added: -1}
	assert.Nil(t, topicRate(h, "t"), "Redis before 7.0 counts no entries added")

	s := series(rounds([]int64{3, 4}, []int64{0, 0}), "t", true)
	assert.Equal(t, []*int64{ptr[int64](3), ptr[int64](4)}, s.Groups["g"].Lag)
	assert.Nil(t, s.In[0])
	assert.InDelta(t, 10, *s.In[1], 1e-9)
	assert.InDelta(t, 2, *s.Out[1], 1e-9)
}

// TestProblems_Capacity checks the problems of the capacity figures and a
// paused group: drops and refusals are bad while they grow in the window,
// a warning after.
func TestProblems_Capacity(t *testing.T) {
	var th Thresholds
	th.setDefaults()
	since := time.Unix(1700000000, 0)
	s := admin.TopicStats{Topic: "t", Exists: true, Length: 100, EntriesAdded: 150, Refused: 4, Groups: []admin.GroupStats{
		{Name: "g", Lag: 2, Dropped: 7, Paused: true, PausedSince: since},
		{Name: "h", BeyondEnd: true},
		{Name: "i", Lag: 9, Abandoned: true},
	}}
	hist := rounds([]int64{0, 0, 0}, []int64{0, 0, 0})
	for k := range hist {
		tp := hist[k].topics["t"]
		tp.refused = 4
		tp.groups["g"] = groupPoint{dropped: int64(3 + 2*k)}
		hist[k].topics["t"] = tp
	}
	got := problems(s, hist, th)
	byKind := map[string]problem{}
	for _, p := range got {
		byKind[p.Kind+"/"+p.Group] = p
	}
	assert.Equal(t, problem{Kind: problemPaused, Level: "warn", Group: "g", Value: 2, From: since.UnixMilli()}, byKind["paused/g"])
	assert.Equal(t, problem{Kind: problemDropped, Level: "bad", Group: "g", Value: 7, From: 3, Span: 2000}, byKind["dropped/g"], "growing")
	assert.Equal(t, problem{Kind: problemRefused, Level: "warn", Value: 4}, byKind["refused/"], "not growing")
	assert.Equal(t, "bad", byKind["beyond-end/h"].Level)
	assert.Equal(t, problem{Kind: problemAbandoned, Level: "bad", Group: "i", Value: 9}, byKind["abandoned/i"])
}
