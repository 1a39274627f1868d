package ui

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// TestActions_Guarded checks that an action runs only as a same-origin
// JSON POST with the CSRF token, and that the console answers only to
// loopback names.
func TestActions_Guarded(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	id := deadLetter(t, client, "orders", "dead-1", "declined")
	con := start(t, client, Config{Target: "test"}, nil)
	body := `{"topic":"orders","ids":["` + id + `"]}`
	json := "application/json"

	for _, c := range []struct {
		name   string
		method string
		header map[string]string
		code   int
	}{
		{"no token", http.MethodPost, map[string]string{"Content-Type": json}, http.StatusForbidden},
		{"wrong token", http.MethodPost, map[string]string{"Content-Type": json, csrfHeader: "0123"}, http.StatusForbidden},
		{"cross-site", http.MethodPost, map[string]string{"Content-Type": json, csrfHeader: con.csrf, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"other origin", http.MethodPost, map[string]string{"Content-Type": json, csrfHeader: con.csrf, "Origin": "http://evil.example"}, http.StatusForbidden},
		{"form post", http.MethodPost, map[string]string{"Content-Type": "application/x-www-form-urlencoded", csrfHeader: con.csrf}, http.StatusUnsupportedMediaType},
		{"GET", http.MethodGet, map[string]string{csrfHeader: con.csrf}, http.StatusMethodNotAllowed},
		{"rebound host", http.MethodPost, map[string]string{"Content-Type": json, csrfHeader: con.csrf, "Host": "evil.example:80"}, http.StatusMisdirectedRequest},
	} {
		code, _ := con.do(t, c.method, "/api/replay", body, c.header)
		assert.Equal(t, c.code, code, c.name)
	}
	n, err := client.XLen(context.Background(), millrace.DeadLetterTopic("orders")).Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "no refused request replayed anything")

	code, _ := con.do(t, http.MethodGet, "/", "", map[string]string{"Host": "evil.example"})
	assert.Equal(t, http.StatusMisdirectedRequest, code, "a page asked for by another name is refused")

	// The same request with the token, from the console's own origin, runs.
	code, out := con.do(t, http.MethodPost, "/api/replay", body, map[string]string{
		"Content-Type": json, csrfHeader: con.csrf, "Origin": con.url, "Sec-Fetch-Site": "same-origin",
	})
	require.Equal(t, http.StatusOK, code, out)
	assert.Contains(t, out, `"deadLetterId":"`+id+`"`)
	n, err = client.XLen(context.Background(), millrace.DeadLetterTopic("orders")).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}

// TestPages_Headers checks the headers every answer carries and that the
// page holds its CSRF token.
func TestPages_Headers(t *testing.T) {
	client := redistest.StartFromEnv(t).Client(t)
	con := start(t, client, Config{Target: "redis 127.0.0.1:1 db 0"}, nil)
	res, err := http.Get(con.url + "/")
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'none'; script-src 'self'")
	assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
	assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	_, page := con.do(t, http.MethodGet, "/", "", nil)
	assert.Contains(t, page, `<meta name="millrace-csrf" content="`+con.csrf+`">`)
	assert.Contains(t, page, "redis 127.0.0.1:1 db 0")
	assert.NotContains(t, page, "http://", "nothing is loaded from elsewhere")
	for _, asset := range []string{"/assets/style.css", "/assets/js/main.js", "/assets/js/chart.js"} {
		code, _ := con.do(t, http.MethodGet, asset, "", nil)
		assert.Equal(t, http.StatusOK, code, asset)
	}
}
