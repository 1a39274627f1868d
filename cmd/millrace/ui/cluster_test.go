package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/redistest"
)

// TestCluster_API runs the console's reads and actions on a 3-node Redis
// Cluster, with topics on different nodes.
func TestCluster_API(t *testing.T) {
	cluster := redistest.StartCluster(t, 3, 0)
	client := cluster.Client(t)
	topics := []string{"invoices", "orders", "payments"}
	masters := map[string]bool{}
	for _, topic := range topics {
		publish(t, client, topic, 3, 0)
		masters[cluster.MasterFor(t, topic).Addr()] = true
	}
	require.Len(t, masters, 3, "the topics are on three different masters")
	require.NoError(t, client.XGroupCreate(context.Background(), "orders", "billing", "0").Err())
	read(t, client, "orders", "billing", "worker-1", 2, 1)
	deadLetter(t, client, "orders", "dead-1", "declined")
	deadLetter(t, client, "payments", "dead-2", "declined")

	con := start(t, client, Config{}, nil)
	con.waitRound(t)

	var o overviewJSON
	getJSON(t, con, "/api/overview", &o)
	require.Empty(t, o.Error)
	var names []string
	for _, tp := range o.Topics {
		names = append(names, tp.Name)
	}
	assert.Equal(t, topics, names)
	orders := o.Topics[1]
	assert.EqualValues(t, 1, orders.DeadLetters)
	require.Len(t, orders.Groups, 1)
	assert.EqualValues(t, 1, orders.Groups[0].Pending)
	assert.EqualValues(t, 1, orders.Groups[0].Lag)

	var m struct {
		Messages []messageJSON            `json:"messages"`
		Pending  map[string][]pendingJSON `json:"pending"`
	}
	getJSON(t, con, "/api/messages?topic=orders", &m)
	assert.Len(t, m.Messages, 3)
	require.Len(t, m.Pending["billing"], 1)
	assert.Equal(t, "worker-1", m.Pending["billing"][0].Consumer)

	var dls struct {
		DeadLetters []messageJSON `json:"deadLetters"`
	}
	getJSON(t, con, "/api/deadletters?topic=payments", &dls)
	require.Len(t, dls.DeadLetters, 1)
	assert.Equal(t, "declined", dls.DeadLetters[0].Reason)

	for _, topic := range []string{"orders", "payments"} {
		code, body := con.post(t, "/api/replay", `{"topic":"`+topic+`","all":true}`)
		require.Equal(t, http.StatusOK, code, body)
		n, err := client.XLen(context.Background(), millrace.DeadLetterTopic(topic)).Result()
		require.NoError(t, err)
		assert.Zero(t, n, topic)
	}
	newest, err := admin.New(client, admin.Options{}).Messages(context.Background(), "payments", 1)
	require.NoError(t, err)
	assert.Equal(t, "dead-2", newest[0].UUID)

	code, body := con.post(t, "/api/group/reset", `{"topic":"orders","group":"billing","to":"$"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = con.post(t, "/api/group/prune", `{"topic":"orders","group":"billing","idle":"0s","dryRun":true}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"removed":[],"kept":[{"name":"worker-1","pending":1,"idleMs":0,"inactiveMs":-1}],"dryRun":true}`, zeroIdle(t, body))
}

// zeroIdle sets the idle times of a prune answer to 0, for comparison.
func zeroIdle(t *testing.T, body string) string {
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	for _, k := range v["kept"].([]any) {
		k.(map[string]any)["idleMs"] = 0
		k.(map[string]any)["inactiveMs"] = -1
	}
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return string(out)
}

func getJSON(t *testing.T, con *console, path string, v any) {
	t.Helper()
	code, body := con.do(t, http.MethodGet, path, "", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), v), body)
}
