package ui

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/rediserr"
)

// TestMain checks for leaked goroutines. go-redis redials a pool whose
// dial failed from a goroutine that sleeps a second between attempts and
// sees the pool closed only when it wakes: after the tests that stop Redis
// under a console it may still be asleep.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

// logBuffer collects what a Server logs, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// console is a Server serving on a loopback port for one test.
type console struct {
	*Server
	url string
	log *logBuffer
}

// start serves srv on 127.0.0.1 until the test ends.
func start(t *testing.T, client redis.UniversalClient, cfg Config, prefill func(*Server)) *console {
	t.Helper()
	logs := &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	srv, err := New(client, cfg)
	require.NoError(t, err)
	if prefill != nil {
		prefill(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		if t.Failed() {
			t.Logf("console log:\n%s", logs.String())
		}
	})
	return &console{Server: srv, url: "http://" + ln.Addr().String(), log: logs}
}

// waitRound waits until the sampler has read Redis at least once.
func (c *console) waitRound(t *testing.T) {
	t.Helper()
	rounds, stop := c.sampler.subscribe()
	defer stop()
	if c.sampler.snapshot().seq > 0 {
		return
	}
	select {
	case <-rounds:
	case <-time.After(10 * time.Second):
		t.Fatal("no sampling round within 10s")
	}
}

// do sends a request to the console and returns the status and body.
func (c *console) do(t *testing.T, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return res.StatusCode, b.String()
}

// post sends an action with the console's CSRF token.
func (c *console) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	return c.do(t, http.MethodPost, path, body, map[string]string{"Content-Type": "application/json", csrfHeader: c.csrf})
}

// deadLetter adds a dead letter of topic, as the library writes them.
func deadLetter(t *testing.T, c redis.UniversalClient, topic, uuid, reason string) string {
	t.Helper()
	fixture.Add(t, c, millrace.DeadLetterTopic(topic), "*", uuid, `{"order":99,"amount":"12.50"}`, message.Metadata{
		"source":                              "checkout",
		middleware.ReasonForPoisonedKey:       reason,
		middleware.PoisonedTopicKey:           topic,
		middleware.PoisonedSubscriberKey:      "worker-1",
		millrace.MetadataDeadLetterGroup:      "billing",
		millrace.MetadataDeadLetterConsumer:   "worker-1",
		millrace.MetadataDeadLetterEntryID:    "1700000000000-0",
		millrace.MetadataDeadLetterDeliveries: "5",
	})
	ids, err := c.XRevRangeN(context.Background(), millrace.DeadLetterTopic(topic), "+", "-", 1).Result()
	require.NoError(t, err)
	return ids[0].ID
}

// publish adds n messages to topic, as entry IDs at ms, ms+1, ...
// (0: now).
func publish(t *testing.T, c redis.UniversalClient, topic string, n int, ms int64) {
	t.Helper()
	for k := range n {
		id := "*"
		if ms > 0 {
			id = fmt.Sprintf("%d-0", ms+int64(k))
		}
		fixture.Add(t, c, topic, id, fmt.Sprintf("%s-%d", topic, k), fmt.Sprintf(`{"n":%d}`, k), message.Metadata{"source": "checkout"})
	}
}

// read reads up to n new entries of topic as consumer of group and
// acknowledges the first ack of them.
func read(t *testing.T, c redis.UniversalClient, topic, group, consumer string, n, ack int) {
	t.Helper()
	ctx := context.Background()
	res, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer, Streams: []string{topic, ">"}, Count: int64(n), Block: -1}).Result()
	if rediserr.IsNil(err) {
		return
	}
	require.NoError(t, err)
	for k, m := range res[0].Messages {
		if k < ack {
			require.NoError(t, c.XAck(ctx, topic, group, m.ID).Err())
		}
	}
}
