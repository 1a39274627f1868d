package main

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/keys"
)

// The handler's last error is printed by `dlq show` (and in its JSON), and
// by `pending` for the entries that have one.
func TestLastErrorShown(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fixture.Add(t, e.client, millrace.DeadLetterTopic("orders"), fixture.ID(104), "dead-4", `{"order":54}`, message.Metadata{
		middleware.ReasonForPoisonedKey:       "delivered 4 times, more than MaxDeliveries 3",
		middleware.PoisonedTopicKey:           "orders",
		millrace.MetadataDeadLetterGroup:      "billing",
		millrace.MetadataDeadLetterConsumer:   "worker-dead",
		millrace.MetadataDeadLetterEntryID:    fixture.ID(54),
		millrace.MetadataDeadLetterDeliveries: "4",
		millrace.MetadataLastError:            "payment declined: card expired",
	})
	e.goldenBoth("dlq-show-last-error", "dlq", "show", "orders", fixture.ID(104))

	require.NoError(t, e.client.Set(ctx, keys.LastError("orders", "billing", fixture.ID(2)), "timeout after 30s calling the bank", 0).Err())
	e.goldenBoth("pending-last-error", "pending", "orders", "billing")
}

// `group pause` and `group resume` say what they changed and refuse a group
// that does not exist.
func TestGroupPauseResume(t *testing.T) {
	e := newEnv(t)
	golden(t, "group-pause.json", e.ok("group", "pause", "orders", "billing", "--json"))
	e.ok("group", "resume", "orders", "billing")
	golden(t, "group-pause", e.ok("group", "pause", "orders", "billing"))
	golden(t, "group-pause-again", e.ok("group", "pause", "orders", "billing"))
	n, err := e.client.XLen(context.Background(), keys.Paused("orders", "billing")).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 3, n, "paused, resumed, paused: the second pause wrote nothing")
	golden(t, "group-resume", e.ok("group", "resume", "orders", "billing"))
	golden(t, "group-resume-again", e.ok("group", "resume", "orders", "billing"))
	fixture.Partitioned(t, e.client)
	golden(t, "group-pause-partitioned", e.ok("group", "pause", "shipments", "billing"))
	r := e.run("group", "pause", "orders", "nosuch")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no such consumer group")
}

// `dlq replay --group` names the one group that sees the messages, writes
// it on the replayed entries, and refuses a group the topic does not have;
// without it the replay names every group.
func TestDLQReplayGroup(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	golden(t, "dlq-replay-all-dry-run", e.ok("dlq", "replay", "orders", "--dry-run"))
	golden(t, "dlq-replay-group-dry-run", e.ok("dlq", "replay", "orders", "--group", "billing", "--dry-run"))
	r := e.run("dlq", "replay", "orders", "--group", "nosuch")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "no such consumer group")

	golden(t, "dlq-replay-group.json", normalize(e.ok("dlq", "replay", "orders", "--group", "billing", "--id", fixture.ID(101), "--json"), false))
	entries, err := e.client.XRange(ctx, "orders", "-", "+").Result()
	require.NoError(t, err)
	back, err := millrace.DefaultMarshaler{}.Unmarshal(entries[len(entries)-1].Values)
	require.NoError(t, err)
	assert.Equal(t, "dead-1", back.UUID)
	assert.Equal(t, "billing", back.Metadata.Get(millrace.MetadataReplayGroup))
}
