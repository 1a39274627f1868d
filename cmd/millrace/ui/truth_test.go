package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/redistest"
)

// TestTopic_NewTopicAtOnce checks that a topic created after the console
// listed the topics is served at once, read from Redis, not 404 until the
// next discovery; and that a topic that does not exist still is 404.
func TestTopic_NewTopicAtOnce(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	require.NoError(t, client.FlushAll(context.Background()).Err())
	publish(t, client, "orders", 1, 0)
	con := start(t, client, Config{DiscoveryInterval: time.Hour}, nil)
	con.waitRound(t)

	publish(t, client, "fresh", 3, 0)
	require.NoError(t, client.XGroupCreate(context.Background(), "fresh", "billing", "0").Err())
	read(t, client, "fresh", "billing", "worker-1", 1, 0)
	code, body := con.do(t, http.MethodGet, "/api/topic?topic=fresh", "", nil)
	require.Equal(t, http.StatusOK, code, body)
	var got struct {
		Topic topicJSON `json:"topic"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.EqualValues(t, 3, got.Topic.Length)
	require.Len(t, got.Topic.Groups, 1)
	assert.EqualValues(t, 1, got.Topic.Groups[0].Pending)

	code, body = con.do(t, http.MethodGet, "/api/messages?topic=fresh", "", nil)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"consumer":"worker-1"`, "its pending entries are listed too")

	code, _ = con.do(t, http.MethodGet, "/api/topic?topic=nothing", "", nil)
	assert.Equal(t, http.StatusNotFound, code)

	// The next round lists the topics again: the overview shows it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body = con.do(t, http.MethodGet, "/api/overview", "", nil)
		if strings.Contains(body, `"name":"fresh"`) {
			break
		}
		require.True(t, time.Now().Before(deadline), "the overview did not list the new topic: %s", body)
		rounds, stop := con.sampler.subscribe()
		<-rounds
		stop()
	}

	// A console of fixed topics serves no other.
	fixed := start(t, client, Config{Topics: []string{"orders"}}, nil)
	fixed.waitRound(t)
	code, _ = fixed.do(t, http.MethodGet, "/api/topic?topic=fresh", "", nil)
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = fixed.do(t, http.MethodGet, "/api/counts?topic=fresh", "", nil)
	assert.Equal(t, http.StatusNotFound, code)
}

// TestPending_AgeBesideIdle checks that a pending entry handed over (here
// claimed, as Close hands entries over) shows its real age from its ID
// beside the idle time that the hand-over restarted.
func TestPending_AgeBesideIdle(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx := context.Background()
	old := time.Now().Add(-14 * time.Minute)
	publish(t, client, "orders", 1, old.UnixMilli())
	require.NoError(t, client.XGroupCreate(ctx, "orders", "billing", "0").Err())
	read(t, client, "orders", "billing", "worker-1", 1, 0)
	id := fmt.Sprintf("%d-0", old.UnixMilli())
	require.NoError(t, client.XClaim(ctx, &redis.XClaimArgs{Stream: "orders", Group: "billing", Consumer: "worker-2", Messages: []string{id}}).Err())
	con := start(t, client, Config{}, nil)
	con.waitRound(t)

	code, body := con.do(t, http.MethodGet, "/api/messages?topic=orders", "", nil)
	require.Equal(t, http.StatusOK, code, body)
	var got struct {
		Pending map[string][]pendingJSON `json:"pending"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Len(t, got.Pending["billing"], 1)
	p := got.Pending["billing"][0]
	assert.Equal(t, "worker-2", p.Consumer)
	assert.InDelta(t, (14 * time.Minute).Milliseconds(), p.Age, float64(time.Minute.Milliseconds()), "its age is from its ID")
	assert.Less(t, p.Idle, time.Minute.Milliseconds(), "the claim restarted its idle time")
}

// TestActions_NothingSelected checks that replay and purge without a
// selection say so, and the log line of each action says what it changed.
func TestActions_NothingSelected(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx := context.Background()
	publish(t, client, "orders", 5, 0)
	require.NoError(t, client.XGroupCreate(ctx, "orders", "billing", "0").Err())
	read(t, client, "orders", "billing", "worker-1", 2, 1)
	con := start(t, client, Config{}, nil)
	for _, path := range []string{"/api/replay", "/api/purge"} {
		code, body := con.post(t, path, `{"topic":"orders","ids":[]}`)
		assert.Equal(t, http.StatusBadRequest, code)
		assert.Contains(t, body, "no dead letter selected")
	}
	code, body := con.post(t, "/api/group/reset", `{"topic":"orders","group":"billing","to":"0"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = con.post(t, "/api/group/delete", `{"topic":"orders","group":"billing"}`)
	require.Equal(t, http.StatusOK, code, body)
	log := con.log.String()
	assert.Regexp(t, `msg="action done" action=/api/group/reset topic=orders group=billing from=\d+-\d+ lag_before=3 pending=1 to=0 now_at=0-0 lag_after=5`, log)
	assert.Regexp(t, `msg="action done" action=/api/group/delete topic=orders group=billing from=0-0 lag_before=5 pending=1 consumers=1`, log)
}
