package millrace_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
)

// A running subscriber removes consumers of its group that have been idle
// past PruneConsumersAfter and hold nothing, and keeps those that hold
// pending entries however idle they are.
func TestSubscriber_PrunesIdleConsumersWithoutPending(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	topic := newTopic()
	const group = "g"
	require.NoError(t, e.client.XGroupCreateMkStream(ctx, topic, group, "0").Err())
	require.NoError(t, e.client.XGroupCreateConsumer(ctx, topic, group, "ghost").Err())
	publish(t, e.publisher(t, millrace.PublisherConfig{}), topic, "held")
	require.Len(t, readAs(t, e.client, topic, group, "holder", 1), 1)

	cfg := groupConfig(group)
	cfg.ClaimMinIdle = time.Hour // the holder keeps its entry
	cfg.PruneConsumersAfter = 200 * time.Millisecond
	sub := e.subscriber(t, cfg)
	_, err := sub.Subscribe(ctxTimeout(t, time.Minute), topic)
	require.NoError(t, err)

	consumers := func() map[string]int64 {
		list, err := e.client.XInfoConsumers(ctx, topic, group).Result()
		require.NoError(t, err)
		byName := map[string]int64{}
		for _, c := range list {
			byName[c.Name] = c.Pending
		}
		return byName
	}
	require.Eventually(t, func() bool { _, ok := consumers()["ghost"]; return !ok }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, int64(1), consumers()["holder"], "a consumer holding an entry is never removed")
}
