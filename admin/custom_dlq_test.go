package admin_test

import (
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/redistest"
)

// Every method that touches dead letters (stats, list, get, replay, purge,
// and topic discovery) uses the dead-letter topic Options.DeadLetterTopic
// names. The default dead-letter stream "{orders}:dlq" holds the fixture's
// three dead letters as decoys: any method that read or changed it would
// fail the test. A name in the topic's Cluster slot and one outside it take
// different paths through the stats.
func TestOptions_DeadLetterTopic(t *testing.T) {
	t.Parallel()
	for name, deadLetterTopic := range map[string]func(string) string{
		"same slot":    func(topic string) string { return "{" + topic + "}:graveyard" },
		"another slot": func(topic string) string { return topic + "-graveyard" },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.StartFromEnv(t)
			c := srv.Client(t)
			fixture.Topology(t, c)
			custom := deadLetterTopic("orders")
			add := func(n int) {
				fixture.Add(t, c, custom, fixture.ID(n), fmt.Sprintf("grave-%d", n), `{"grave":true}`, message.Metadata{
					middleware.PoisonedTopicKey: "orders", middleware.ReasonForPoisonedKey: "custom",
				})
			}
			for n := 301; n <= 304; n++ {
				add(n)
			}
			opts := admin.Options{DeadLetterTopic: deadLetterTopic}
			a := admin.New(c, opts)
			ctx := testCtx(t)
			decoysUntouched := func() {
				t.Helper()
				assert.EqualValues(t, 3, xlen(t, c, "{orders}:dlq"), "the default dead-letter stream is left alone")
			}

			// Stats, by the script and by plain commands.
			for _, a := range []*admin.Admin{a, admin.New(noScriptClient(t, srv), opts)} {
				stats, err := a.Stats(ctx, "orders", "refunds")
				require.NoError(t, err)
				assert.Equal(t, custom, stats[0].DeadLetterTopic)
				assert.EqualValues(t, 4, stats[0].DeadLetters)
				assert.EqualValues(t, 10, stats[0].Length)
				assert.Equal(t, deadLetterTopic("refunds"), stats[1].DeadLetterTopic)
				assert.Zero(t, stats[1].DeadLetters, "refunds has dead letters under the default name only")
			}

			// The custom dead-letter stream is not listed as a topic.
			topics, err := a.Topics(ctx)
			require.NoError(t, err)
			assert.Equal(t, []string{"orders", "payments", "refunds"}, topics)

			// List and get.
			letters, err := a.DeadLetters(ctx, "orders", admin.DeadLetterQuery{})
			require.NoError(t, err)
			var uuids []string
			for _, d := range letters {
				uuids = append(uuids, d.UUID)
			}
			assert.Equal(t, []string{"grave-301", "grave-302", "grave-303", "grave-304"}, uuids)
			d, err := a.DeadLetter(ctx, "orders", fixture.ID(302))
			require.NoError(t, err)
			assert.Equal(t, "grave-302", d.UUID)
			assert.Equal(t, "custom", d.Reason)
			_, err = a.DeadLetter(ctx, "orders", fixture.ID(101))
			require.ErrorIs(t, err, admin.ErrNoSuchDeadLetter, "a dead letter under the default name is not found")

			// Purge by ID: the decoy's ID is not in the custom stream.
			n, err := a.PurgeDeadLetters(ctx, "orders", admin.PurgeOptions{IDs: []string{fixture.ID(301), fixture.ID(101)}})
			require.NoError(t, err)
			assert.EqualValues(t, 1, n)
			decoysUntouched()

			// Replay by ID, then the rest.
			res, err := a.ReplayDeadLetters(ctx, "orders", admin.ReplayOptions{IDs: []string{fixture.ID(302), fixture.ID(102)}})
			require.NoError(t, err)
			require.Len(t, res.Replayed, 1)
			assert.Equal(t, "grave-302", res.Replayed[0].UUID)
			assert.Equal(t, []string{fixture.ID(102)}, res.Missing)
			res, err = a.ReplayDeadLetters(ctx, "orders", admin.ReplayOptions{})
			require.NoError(t, err)
			require.Len(t, res.Replayed, 2)
			assert.Equal(t, []string{"grave-303", "grave-304"}, []string{res.Replayed[0].UUID, res.Replayed[1].UUID})
			assert.EqualValues(t, 13, xlen(t, c, "orders"))
			assert.Zero(t, xlen(t, c, custom))
			decoysUntouched()

			// Purge everything.
			add(305)
			n, err = a.PurgeDeadLetters(ctx, "orders", admin.PurgeOptions{})
			require.NoError(t, err)
			assert.EqualValues(t, 1, n)
			assert.Zero(t, xlen(t, c, custom))
			decoysUntouched()
		})
	}
}
