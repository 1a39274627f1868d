package ui

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/redistest"
)

// TestActions_API checks the actions' answers: resets to a time and to an
// ID, and the errors of bad requests and missing groups.
func TestActions_API(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	publish(t, client, "orders", 10, base.UnixMilli())
	require.NoError(t, client.XGroupCreate(ctx, "orders", "billing", "$").Err())
	con := start(t, client, Config{}, nil)
	a := admin.New(client, admin.Options{})
	lastDelivered := func() string {
		g, err := a.Group(ctx, "orders", "billing")
		require.NoError(t, err)
		return g.LastDeliveredID
	}

	at := base.Add(4 * time.Millisecond)
	code, body := con.post(t, "/api/group/reset", fmt.Sprintf(`{"topic":"orders","group":"billing","time":%q}`, at.Format(time.RFC3339Nano)))
	require.Equal(t, http.StatusOK, code, body)
	g, err := a.Group(ctx, "orders", "billing")
	require.NoError(t, err)
	assert.EqualValues(t, 6, g.Lag, "the group reads the entries added at or after the time: 4..9")

	id := fmt.Sprintf("%d-0", base.UnixMilli()+7)
	code, body = con.post(t, "/api/group/reset", fmt.Sprintf(`{"topic":"orders","group":"billing","to":%q}`, id))
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, id, lastDelivered())

	for _, c := range []struct {
		path, body string
		code       int
	}{
		{"/api/group/reset", `{"topic":"orders","group":"billing","to":"later"}`, http.StatusBadRequest},
		{"/api/group/reset", `{"topic":"orders","group":"billing","to":"0","time":"2024-01-01T00:00:00Z"}`, http.StatusBadRequest},
		{"/api/group/reset", `{"topic":"orders","group":"nobody","to":"0"}`, http.StatusNotFound},
		{"/api/group/delete", `{"topic":"orders","group":"nobody"}`, http.StatusNotFound},
		{"/api/group/prune", `{"topic":"orders","group":"billing","idle":"soon"}`, http.StatusBadRequest},
		{"/api/replay", `{"topic":"orders"}`, http.StatusBadRequest},
		{"/api/replay", `{"topic":"orders","all":true,"ids":["1-0"]}`, http.StatusBadRequest},
		{"/api/purge", `{"topic":"orders","ids":["1"]}`, http.StatusBadRequest},
		{"/api/replay", `{"topic":"","all":true}`, http.StatusBadRequest},
		{"/api/replay", `{"topic":"orders","all":true,"extra":1}`, http.StatusBadRequest},
	} {
		code, body := con.post(t, c.path, c.body)
		assert.Equal(t, c.code, code, "%s %s: %s", c.path, c.body, body)
	}
	assert.Equal(t, id, lastDelivered(), "no refused request moved the group")

	code, _ = con.do(t, http.MethodGet, "/api/deadletter?topic=orders&id=1-0", "", nil)
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = con.do(t, http.MethodGet, "/api/deadletter?topic=orders&id=x", "", nil)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = con.do(t, http.MethodGet, "/api/topic?topic=nothing", "", nil)
	assert.Equal(t, http.StatusNotFound, code)
}
