package millrace_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// The README: "the Subscribers over a client listen on one Pub/Sub
// connection for all their topics" (the announcements of delayed
// messages). Two Subscribers over one client, ten topics each.
func TestClaims_DelayedAnnouncementsOnePubSubConnection(t *testing.T) {
	// It counts the server's clients: a server of its own, even when
	// REDIS_URL is set.
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	e := &env{srv: srv, client: srv.Client(t)}
	client := namedClient(t, e, "announcements")
	channels := map[string]bool{}
	for s := range 2 {
		sub, err := millrace.NewSubscriber(client, groupConfig("g"+strconv.Itoa(s)), testLogger)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sub.Close()) })
		for range 10 {
			topic := newTopic()
			subscribe(t, sub, topic)
			channels[millrace.DelayedKey(topic)] = true
		}
	}

	ctx := ctxTimeout(t, 30*time.Second)
	var subscribers []string
	require.Eventually(t, func() bool {
		list, err := e.client.ClientList(ctx).Result()
		require.NoError(t, err)
		subscribers = subscribers[:0]
		for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
			if strings.Contains(line, " name=announcements ") && !strings.Contains(line, " sub=0 ") {
				subscribers = append(subscribers, line)
			}
		}
		return len(subscribers) == 1 && strings.Contains(subscribers[0], " sub=20 ")
	}, 10*time.Second, 20*time.Millisecond, "one connection of the client subscribed to the 20 channels: %q", subscribers)

	names := make([]string, 0, len(channels))
	for ch := range channels {
		names = append(names, ch)
	}
	counts, err := e.client.PubSubNumSub(ctx, names...).Result()
	require.NoError(t, err)
	for _, ch := range names {
		assert.EqualValues(t, 1, counts[ch], "%s has one listener", ch)
	}
}
