package prometheus_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/redistest"
	"github.com/millrace/millrace/partition"
	millraceprom "github.com/millrace/millrace/prometheus"
)

// recipe is what docs/autoscaling.md's triggers read for a group: KEDA's
// redis-streams trigger reads XINFO GROUPS lag (lagCount; go-redis gives -1
// for nil) and XPENDING's count (pendingEntriesCount); its prometheus
// trigger reads millrace_group_lag. unread is the truth the lag must match:
// the entries after the group's last-delivered-id, read in the same MULTI
// as XINFO GROUPS.
type recipe struct {
	redisLag, unread, pending int64
	exportedLag               float64
	exported                  bool // a millrace_group_lag series exists
}

func readRecipe(t *testing.T, c redis.UniversalClient, col *millraceprom.Collector, stream, group string) recipe {
	t.Helper()
	ctx := context.Background()
	var r recipe
	pipe := c.TxPipeline()
	infos := pipe.XInfoGroups(ctx, stream)
	all := pipe.XRange(ctx, stream, "-", "+")
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)
	found := false
	for _, g := range infos.Val() {
		if g.Name != group {
			continue
		}
		found = true
		r.redisLag, r.pending = g.Lag, g.Pending
		for _, e := range all.Val() {
			if entryid.Compare(e.ID, g.LastDeliveredID) > 0 {
				r.unread++
			}
		}
	}
	require.True(t, found, "group %s on %s", group, stream)
	r.exportedLag, r.exported = gather(t, col)[fmt.Sprintf(`millrace_group_lag{group=%q,topic=%q}`, group, stream)]
	return r
}

// TestAutoscalingFigures reads what the KEDA recipe of docs/autoscaling.md
// reads, in the states that matter to an autoscaler: the lag Redis reports
// and the exporter's are the unread entries in each, and the pending count
// is not the work waiting.
func TestAutoscalingFigures(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	ctx := context.Background()
	const topic, group = "jobs", "workers"
	col := millraceprom.NewCollector(c, millraceprom.Config{Topics: []string{topic}})
	pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{}, nil)
	require.NoError(t, err)
	defer pub.Close()
	subCfg := millrace.SubscriberConfig{
		ConsumerGroup: group, Prefetch: 5, MaxInFlight: 1,
		BlockTime: 100 * time.Millisecond, CloseTimeout: 300 * time.Millisecond,
	}

	// Before its group exists there is nothing to read: KEDA's
	// redis-streams scaler fails, the exporter has no series. Hence the
	// group is created before the first scale-up (here as an init job
	// would, with SubscribeInitialize).
	_, err = c.XInfoGroups(ctx, topic).Result()
	require.Error(t, err, "no stream, no group")
	_, exported := gather(t, col)[fmt.Sprintf(`millrace_group_lag{group=%q,topic=%q}`, group, topic)]
	assert.False(t, exported)
	init, err := millrace.NewSubscriber(c, subCfg, nil)
	require.NoError(t, err)
	require.NoError(t, init.SubscribeInitialize(topic))
	require.NoError(t, init.Close())

	idle := readRecipe(t, c, col, topic, group)
	assert.Equal(t, recipe{exported: true}, idle, "idle")

	for i := range 25 {
		require.NoError(t, pub.Publish(topic, message.NewMessage(fmt.Sprint(i), []byte("job"))))
	}
	backlog := readRecipe(t, c, col, topic, group)
	assert.Equal(t, recipe{redisLag: 25, unread: 25, exportedLag: 25, exported: true}, backlog, "backlog, no consumer")

	// A live subscriber whose one handler is busy has prefetched more:
	// they are pending, no longer in the lag. Pending counts entries no
	// handler works on.
	sub, err := millrace.NewSubscriber(c, subCfg, nil)
	require.NoError(t, err)
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	held := <-ch
	var prefetched recipe
	require.Eventually(t, func() bool {
		before := readRecipe(t, c, col, topic, group)
		time.Sleep(200 * time.Millisecond) // until the subscriber has filled what it holds
		prefetched = readRecipe(t, c, col, topic, group)
		return before == prefetched && prefetched.pending >= int64(subCfg.Prefetch)
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, prefetched.unread, prefetched.redisLag, "prefetched: Redis's lag")
	assert.EqualValues(t, prefetched.redisLag, prefetched.exportedLag, "prefetched: the exporter's lag")
	assert.EqualValues(t, 25, prefetched.redisLag+prefetched.pending, "nothing acknowledged: every entry is unread or pending")
	assert.Greater(t, prefetched.pending, int64(subCfg.MaxInFlight), "pending is inflated by Prefetch")
	t.Logf("prefetched: lag %d, pending %d with %d handler busy", prefetched.redisLag, prefetched.pending, subCfg.MaxInFlight)
	held.Ack()
	require.NoError(t, sub.Close())

	// After a reset: Redis's own lag, not nil, which KEDA would read as
	// no work.
	entries, err := c.XRange(ctx, topic, "-", "+").Result()
	require.NoError(t, err)
	a := admin.New(c, admin.Options{})
	require.NoError(t, a.ResetGroup(ctx, topic, group, entries[5].ID))
	reset := readRecipe(t, c, col, topic, group)
	assert.Equal(t, recipe{redisLag: 19, unread: 19, pending: prefetched.pending - 1, exportedLag: 19, exported: true}, reset, "after a reset")
	t.Logf("idle %+v; backlog %+v; prefetched %+v; after a reset %+v", idle, backlog, prefetched, reset)
}

// TestAutoscalingFigures_Partitioned: a partitioned topic's backlog is the
// sum of its partitions' lags (what the recipe's prometheus trigger sums;
// one redis-streams trigger reads one partition), and members beyond the
// number of partitions own none, hence maxReplicaCount at most the
// partitions.
func TestAutoscalingFigures_Partitioned(t *testing.T) {
	srv := redistest.StartFromEnv(t)
	c := srv.Client(t)
	ctx := context.Background()
	const topic, group, n = "orders", "workers", 4
	parts, err := partition.Topics(topic, n)
	require.NoError(t, err)
	col := millraceprom.NewCollector(c, millraceprom.Config{Topics: parts})
	subCfg := func(member string) partition.BalancedConfig {
		return partition.BalancedConfig{
			Topics: map[string]int{topic: n},
			Subscriber: millrace.SubscriberConfig{
				ConsumerGroup: group, ConsumerLease: 2 * time.Second,
				BlockTime: 100 * time.Millisecond, CloseTimeout: 300 * time.Millisecond,
			},
			Member:    member,
			Heartbeat: 100 * time.Millisecond,
		}
	}

	// The group is created on every partition before any member starts.
	init, err := partition.NewBalancedSubscriber(c, subCfg("init"), nil)
	require.NoError(t, err)
	require.NoError(t, init.SubscribeInitialize(topic))
	require.NoError(t, init.Close())

	raw, err := millrace.NewPublisher(c, millrace.PublisherConfig{}, nil)
	require.NoError(t, err)
	pub, err := partition.NewPublisher(raw, partition.Config{Topics: map[string]int{topic: n}})
	require.NoError(t, err)
	defer pub.Close()
	for i := range 40 {
		msg := message.NewMessage(fmt.Sprint(i), []byte("order"))
		msg.Metadata.Set(partition.MetadataKey, fmt.Sprintf("customer-%d", i))
		require.NoError(t, pub.Publish(topic, msg))
	}
	values := gather(t, col)
	var sumExported float64
	var sumRedis int64
	for p, pt := range parts {
		r := readRecipe(t, c, col, pt, group)
		assert.Equal(t, r.unread, r.redisLag, "partition %d: Redis's lag", p)
		length, err := c.XLen(ctx, pt).Result()
		require.NoError(t, err)
		assert.Equal(t, length, r.redisLag, "partition %d: nothing read yet", p)
		sumRedis += r.redisLag
		sumExported += values[fmt.Sprintf(`millrace_partition_lag{group=%q,partition="%d",topic=%q}`, group, p, topic)]
	}
	assert.EqualValues(t, 40, sumRedis)
	assert.EqualValues(t, 40, sumExported, "sum(millrace_partition_lag)")

	// One member more than partitions: it owns none.
	for i := range n + 1 {
		sub, err := partition.NewBalancedSubscriber(c, subCfg(fmt.Sprintf("m%d", i)), nil)
		require.NoError(t, err)
		defer sub.Close()
		_, err = sub.Subscribe(ctx, topic)
		require.NoError(t, err)
	}
	owners := map[string]bool{}
	require.Eventually(t, func() bool {
		values := gather(t, col)
		clear(owners)
		owned := 0
		for k := range values {
			if strings.HasPrefix(k, "millrace_partition_owner{") {
				owned++
				owners[k[strings.Index(k, `member="`):strings.Index(k, `",partition`)]] = true
			}
		}
		return values[fmt.Sprintf(`millrace_group_members{group=%q,topic=%q}`, group, topic)] == n+1 && owned == n && len(owners) == n
	}, 20*time.Second, 50*time.Millisecond, "%d members share %d partitions, one each: one member owns none", n+1, n)
}

// The metrics docs/autoscaling.md's queries read are the collector's.
func TestAutoscalingDocMetrics(t *testing.T) {
	doc, err := os.ReadFile("../docs/autoscaling.md")
	require.NoError(t, err)
	ch := make(chan *prom.Desc, 100)
	c := redis.NewClient(&redis.Options{})
	defer c.Close()
	millraceprom.NewCollector(c, millraceprom.Config{}).Describe(ch)
	close(ch)
	var described strings.Builder
	for d := range ch {
		described.WriteString(d.String())
	}
	names := regexp.MustCompile(`millrace_[a-z_]+`).FindAllString(string(doc), -1)
	require.NotEmpty(t, names)
	for _, name := range names {
		assert.Contains(t, described.String(), `fqName: "`+name+`"`, "docs/autoscaling.md names %s", name)
	}
}
