package millrace_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/redistest"
)

// capacityCeiling is the ceiling of the capacity tests; they publish ten
// times as much.
const capacityCeiling = 1000

// A group that never reads, while ten times the ceiling is published to its
// topic with the default overflow (DropOldest): the stream stays at the
// ceiling (Redis trims whole nodes: at most 100 more entries), Redis's
// memory stays bounded, the other topic and the topic's live group keep
// working, and what the abandoned group lost is counted exactly, logged,
// and its lag is right again.
func TestCapacity_AbandonedGroupDropsOldest(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	client := srv.Client(t)
	ctx := context.Background()
	e := &env{srv: srv, client: client}
	topic, other := newTopic(), newTopic()
	logs := &captureLogger{}
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{
		Retention:    millrace.Retention{Ceiling: capacityCeiling},
		TrimInterval: 50 * time.Millisecond,
	}, logs)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })

	require.NoError(t, client.XGroupCreateMkStream(ctx, topic, "abandoned", "$").Err())
	live := subscribe(t, e.subscriber(t, groupConfig("live")), topic)
	otherCh := subscribe(t, e.subscriber(t, groupConfig("live")), other)

	payload := strings.Repeat("x", 1024)
	var atCeiling, peak int64
	for batch := range 10 * capacityCeiling / 100 {
		msgs := make([]*message.Message, 100)
		for i := range msgs {
			msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(payload))
		}
		require.NoError(t, pub.Publish(topic, msgs...), "batch %d", batch)
		for range msgs {
			receive(t, live).Ack()
		}
		n := xlen(t, client, topic)
		require.LessOrEqual(t, n, int64(capacityCeiling+100), "after batch %d", batch)
		used := usedMemory(t, client)
		if batch == capacityCeiling/100-1 {
			atCeiling = used
		}
		peak = max(peak, used)

		// The other topic works all along.
		sent := publish(t, pub, other, strconv.Itoa(batch))
		m := receive(t, otherCh)
		assert.Equal(t, sent[0].UUID, m.UUID)
		m.Ack()
	}
	// Nine ceilings of 1 KB entries more would be over 9 MB.
	assert.Less(t, peak-atCeiling, int64(2<<20), "memory grew by %d bytes past the ceiling", peak-atCeiling)

	added := int64(10 * capacityCeiling)
	require.Eventually(t, func() bool {
		return dropped(t, client, topic, "abandoned") == added-xlen(t, client, topic)
	}, 10*time.Second, 20*time.Millisecond, "dropped %d of %d, stream holds %d",
		dropped(t, client, topic, "abandoned"), added, xlen(t, client, topic))
	t.Logf("published %d, stream holds %d, dropped for the abandoned group %d; used_memory %d at the ceiling, peak %d (+%d)",
		added, xlen(t, client, topic), dropped(t, client, topic, "abandoned"), atCeiling, peak, peak-atCeiling)
	assert.Zero(t, dropped(t, client, topic, "live"), "the live group read everything")
	g, ok := groupInfo(t, client, topic, "abandoned")
	require.True(t, ok)
	assert.Equal(t, xlen(t, client, topic), g.Lag, "the abandoned group's lag is what the stream holds")
	assert.True(t, logs.logged("Dropped entries the group had not read", "group:abandoned", "topic:"+topic))
	assert.False(t, logs.logged("group:live"))

	// What the group still reads is the newest entries, none twice.
	got, err := client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "abandoned", Consumer: "c", Streams: []string{topic, ">"}, Count: 2 * capacityCeiling}).Result()
	require.NoError(t, err)
	assert.Len(t, got[0].Messages, int(xlen(t, client, topic)))
}

// With RefusePublish the stream keeps every unacknowledged entry up to the
// ceiling exactly; a Publish past it fails with ErrTopicFull and adds none
// of its messages, which are counted; other topics keep working; deleting
// the abandoned group makes room again.
func TestCapacity_AbandonedGroupRefusesPublish(t *testing.T) {
	t.Parallel()
	for _, idempotent := range []bool{false, true} {
		t.Run("idempotent="+strconv.FormatBool(idempotent), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			topic, other := newTopic(), newTopic()
			cfg := millrace.PublisherConfig{
				Retention:    millrace.Retention{Ceiling: capacityCeiling, Overflow: millrace.RefusePublish},
				TrimInterval: 50 * time.Millisecond,
			}
			if idempotent {
				cfg.Idempotency = millrace.Idempotency{Window: time.Minute}
			}
			pub := e.publisher(t, cfg)
			require.NoError(t, e.client.XGroupCreateMkStream(ctx, topic, "abandoned", "$").Err())
			otherCh := subscribe(t, e.subscriber(t, groupConfig("live")), other)

			refused := 0
			for batch := range 10 * capacityCeiling / 100 {
				msgs := make([]*message.Message, 100)
				for i := range msgs {
					msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("m"))
				}
				err := pub.Publish(topic, msgs...)
				if batch < capacityCeiling/100 {
					require.NoError(t, err, "batch %d", batch)
				} else {
					require.ErrorIs(t, err, millrace.ErrTopicFull, "batch %d", batch)
					refused += len(msgs)
				}
				require.LessOrEqual(t, xlen(t, e.client, topic), int64(capacityCeiling))
			}
			assert.EqualValues(t, capacityCeiling, xlen(t, e.client, topic), "nothing unacknowledged was trimmed")
			n, err := e.client.HGet(ctx, keys.Overflow(topic), keys.OverflowRefused).Int()
			require.NoError(t, err)
			assert.Equal(t, refused, n)
			assert.Zero(t, dropped(t, e.client, topic, "abandoned"))

			sent := publish(t, pub, other, "still works")
			m := receive(t, otherCh)
			assert.Equal(t, sent[0].UUID, m.UUID)
			m.Ack()

			// The one command that frees the topic: delete the group.
			require.NoError(t, e.client.XGroupDestroy(ctx, topic, "abandoned").Err())
			require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("after"))))
		})
	}
}

func TestCapacity_Validate(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]millrace.PublisherConfig{
		"negative ceiling":        {Retention: millrace.Retention{Ceiling: -2}},
		"ceiling and MaxLen":      {Retention: millrace.Retention{MaxLen: 10, Ceiling: 5}},
		"ceiling and KeepAll":     {Retention: millrace.Retention{KeepAll: true, Ceiling: 5}},
		"refuse and MaxAge alone": {Retention: millrace.Retention{MaxAge: time.Hour, Overflow: millrace.RefusePublish}},
		"unknown overflow":        {Retention: millrace.Retention{Overflow: 7}},
		"refuse and PlainXAdd":    {PlainXAdd: true, Retention: millrace.Retention{Overflow: millrace.RefusePublish}},
		"topic's refuse and PlainXAdd": {PlainXAdd: true, TopicRetention: map[string]millrace.Retention{
			"t": {KeepUnacked: true, Overflow: millrace.RefusePublish},
		}},
	} {
		assert.Error(t, cfg.Validate(), name)
	}
	for name, cfg := range map[string]millrace.PublisherConfig{
		"ceiling alone means the default retention": {Retention: millrace.Retention{Ceiling: 5}},
		"no ceiling":              {Retention: millrace.Retention{KeepUnacked: true, Ceiling: millrace.NoCeiling}},
		"refuse with the default": {Retention: millrace.Retention{Overflow: millrace.RefusePublish}},
		"drop with PlainXAdd":     {PlainXAdd: true, Retention: millrace.Retention{Ceiling: 5}},
	} {
		assert.NoError(t, cfg.Validate(), name)
	}
}

// dropped is the count of entries of topic the ceiling dropped before group
// read them.
func dropped(t *testing.T, c redis.UniversalClient, topic, group string) int64 {
	t.Helper()
	n, err := c.HGet(context.Background(), keys.Overflow(topic), keys.OverflowDropped+group).Int64()
	if err == redis.Nil {
		return 0
	}
	require.NoError(t, err)
	return n
}
