package prometheus_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/redistest"
	millraceprom "github.com/millrace/millrace/prometheus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// topology: "orders" with 10 entries; group "billing" where "worker-dead"
// holds 3 entries and 2 more were acked (lag 5); 2 dead letters; "payments"
// with 1 entry and no group.
func topology(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).UnixMilli()
	add := func(stream string, ms int64) {
		msg := message.NewMessage("u", []byte("p"))
		fields, err := millrace.DefaultMarshaler{}.Marshal(stream, msg)
		require.NoError(t, err)
		require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: itoa(ms) + "-0", Values: fields}).Err())
	}
	for n := int64(1); n <= 10; n++ {
		add("orders", base+n)
	}
	require.NoError(t, c.XGroupCreate(ctx, "orders", "billing", "0").Err())
	require.NoError(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "worker-dead", Streams: []string{"orders", ">"}, Count: 3, Block: -1}).Err())
	live, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "worker-live", Streams: []string{"orders", ">"}, Count: 2, Block: -1}).Result()
	require.NoError(t, err)
	for _, m := range live[0].Messages {
		require.NoError(t, c.XAck(ctx, "orders", "billing", m.ID).Err())
	}
	add(millrace.DeadLetterTopic("orders"), base+100)
	add(millrace.DeadLetterTopic("orders"), base+101)
	add("payments", base+1)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

const stableMetrics = `
# HELP millrace_dead_letters Entries in the topic's dead-letter stream.
# TYPE millrace_dead_letters gauge
millrace_dead_letters{topic="orders"} 2
millrace_dead_letters{topic="payments"} 0
# HELP millrace_group_consumers Consumers of the group.
# TYPE millrace_group_consumers gauge
millrace_group_consumers{group="billing",topic="orders"} 2
# HELP millrace_group_lag Entries of the stream the group has not read yet (Redis 7 lag, computed when Redis has none; a lower bound of 1000 when the backlog is longer and Redis has none).
# TYPE millrace_group_lag gauge
millrace_group_lag{group="billing",topic="orders"} 5
# HELP millrace_group_pending Entries delivered to the group and not acknowledged (PEL size).
# TYPE millrace_group_pending gauge
millrace_group_pending{group="billing",topic="orders"} 3
# HELP millrace_stream_length Entries in the topic's stream (XLEN).
# TYPE millrace_stream_length gauge
millrace_stream_length{topic="orders"} 10
millrace_stream_length{topic="payments"} 1
# HELP millrace_up 1 if the last scrape read every topic from Redis, 0 if it failed.
# TYPE millrace_up gauge
millrace_up 1
`

func TestCollector(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	topology(t, c)

	for _, tc := range []struct {
		name   string
		config millraceprom.Config
	}{
		{"discovered topics", millraceprom.Config{}},
		{"configured topics", millraceprom.Config{Topics: []string{"orders", "payments"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col := millraceprom.NewCollector(c, tc.config)
			require.NoError(t, testutil.CollectAndCompare(col, strings.NewReader(stableMetrics),
				"millrace_up", "millrace_stream_length", "millrace_dead_letters", "millrace_group_lag",
				"millrace_group_pending", "millrace_group_consumers"))
			problems, err := testutil.CollectAndLint(col)
			require.NoError(t, err)
			assert.Empty(t, problems)

			values := gather(t, col)
			hour := time.Hour.Seconds()
			assert.InDelta(t, hour, values[`millrace_group_oldest_pending_age_seconds{group="billing",topic="orders"}`], 60)
			assert.InDelta(t, hour, values[`millrace_group_oldest_undelivered_age_seconds{group="billing",topic="orders"}`], 60)
			assert.InDelta(t, hour, values[`millrace_stream_oldest_entry_age_seconds{topic="orders"}`], 60)
			assert.InDelta(t, hour, values[`millrace_stream_newest_entry_age_seconds{topic="orders"}`], 60)
			assert.Less(t, values[`millrace_group_consumer_min_idle_seconds{group="billing",topic="orders"}`], 60.0)
			assert.Equal(t, 10.0, values[`millrace_stream_entries_added_total{topic="orders"}`])
			assert.Equal(t, 5.0, values[`millrace_group_entries_read_total{group="billing",topic="orders"}`])
			_, perConsumer := values[`millrace_consumer_pending{consumer="worker-dead",group="billing",topic="orders"}`]
			assert.False(t, perConsumer, "per-consumer series are opt-in")
		})
	}

	t.Run("per consumer", func(t *testing.T) {
		col := millraceprom.NewCollector(c, millraceprom.Config{Topics: []string{"orders"}, PerConsumer: true, Namespace: "q"})
		values := gather(t, col)
		assert.Equal(t, 3.0, values[`q_consumer_pending{consumer="worker-dead",group="billing",topic="orders"}`])
		assert.Equal(t, 0.0, values[`q_consumer_pending{consumer="worker-live",group="billing",topic="orders"}`])
	})
}

// A scrape is one pipelined round trip once the script is loaded.
func TestCollector_OneRoundTripPerScrape(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	topology(t, c)
	var pipelines, singles atomic.Int64
	c.AddHook(countingHook{pipelines: &pipelines, singles: &singles})
	col := millraceprom.NewCollector(c, millraceprom.Config{Topics: []string{"orders", "payments", "missing"}})
	gather(t, col) // loads the script
	pipelines.Store(0)
	singles.Store(0)
	gather(t, col)
	assert.EqualValues(t, 1, pipelines.Load())
	assert.EqualValues(t, 0, singles.Load())
}

func TestCollector_RedisDown(t *testing.T) {
	o := &redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond}
	c := redis.NewClient(o)
	defer c.Close()
	col := millraceprom.NewCollector(c, millraceprom.Config{Timeout: time.Second})
	require.NoError(t, testutil.CollectAndCompare(col, strings.NewReader(`
# HELP millrace_up 1 if the last scrape read every topic from Redis, 0 if it failed.
# TYPE millrace_up gauge
millrace_up 0
`), "millrace_up", "millrace_stream_length"))
}

type countingHook struct{ pipelines, singles *atomic.Int64 }

func (h countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.singles.Add(1)
		return next(ctx, cmd)
	}
}
func (h countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		return next(ctx, cmds)
	}
}

// gather scrapes col and returns every sample as name{labels} -> value.
func gather(t *testing.T, col prom.Collector) map[string]float64 {
	t.Helper()
	reg := prom.NewPedanticRegistry()
	require.NoError(t, reg.Register(col))
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := f.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			if m.GetCounter() != nil {
				out[key] = m.GetCounter().GetValue()
			} else {
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// What a topic's ceiling cost, from a real Publisher: entries dropped
// before an abandoned group read them, messages refused on another topic;
// the abandoned group and one moved past the stream's end are flagged.
func TestCollector_Capacity(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	ctx := context.Background()
	require.NoError(t, c.XGroupCreateMkStream(ctx, "drop", "gone", "$").Err())
	require.NoError(t, c.XGroupCreateMkStream(ctx, "refuse", "gone", "$").Err())
	require.NoError(t, c.XGroupCreate(ctx, "refuse", "ahead", "$").Err())
	require.NoError(t, c.XGroupSetID(ctx, "refuse", "ahead", "99999999999999-0").Err())
	publish := func(topic string, r millrace.Retention, n int) error {
		pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{Retention: r}, watermill.NopLogger{})
		require.NoError(t, err)
		msgs := make([]*message.Message, n)
		for i := range msgs {
			msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("m"))
		}
		err = pub.Publish(topic, msgs...)
		require.NoError(t, pub.Close()) // its last trim round counts the drops
		return err
	}
	require.NoError(t, publish("drop", millrace.Retention{Ceiling: 100}, 1000))
	var length int64
	_, err := admin.New(c, admin.Options{}).PauseGroup(ctx, "refuse", "gone")
	require.NoError(t, err)
	require.NoError(t, publish("refuse", millrace.Retention{Ceiling: 100, Overflow: millrace.RefusePublish}, 100))
	require.ErrorIs(t, publish("refuse", millrace.Retention{Ceiling: 100, Overflow: millrace.RefusePublish}, 7), millrace.ErrTopicFull)
	length, err = c.XLen(ctx, "drop").Result()
	require.NoError(t, err)

	values := gather(t, millraceprom.NewCollector(c, millraceprom.Config{Topics: []string{"drop", "refuse"}, AbandonedAfter: time.Nanosecond}))
	assert.Equal(t, float64(1000-length), values[`millrace_group_dropped_entries_total{group="gone",topic="drop"}`])
	assert.Equal(t, 7.0, values[`millrace_stream_refused_total{topic="refuse"}`])
	assert.Equal(t, 1.0, values[`millrace_group_abandoned{group="gone",topic="drop"}`])
	assert.Equal(t, 0.0, values[`millrace_group_abandoned{group="gone",topic="refuse"}`], "paused: its backlog is meant")
	assert.Equal(t, 1.0, values[`millrace_group_paused{group="gone",topic="refuse"}`])
	assert.Equal(t, 0.0, values[`millrace_group_paused{group="gone",topic="drop"}`])
	assert.Equal(t, 1.0, values[`millrace_group_beyond_end{group="ahead",topic="refuse"}`])
	assert.Equal(t, 0.0, values[`millrace_group_beyond_end{group="gone",topic="refuse"}`])
	_, ok := values[`millrace_group_dropped_entries_total{group="gone",topic="refuse"}`]
	assert.False(t, ok, "nothing dropped: no series")
}
