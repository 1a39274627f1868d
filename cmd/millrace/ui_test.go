package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/redistest"
)

// TestUI_RefusesNonLoopbackWithoutAuth checks that `millrace ui` refuses to
// listen on an address that is not loopback without --auth, before it
// connects to Redis (the URL here has no server).
func TestUI_RefusesNonLoopbackWithoutAuth(t *testing.T) {
	t.Setenv(envAuth, "")
	for _, listen := range []string{"0.0.0.0:0", ":8080", "[::]:0", "192.0.2.1:8080"} {
		r := runCLI(context.Background(), "", "--url", "redis://127.0.0.1:1/0", "ui", "--listen", listen)
		assert.Equal(t, 2, r.code, listen)
		assert.Contains(t, r.stderr, "listening on other than loopback requires authentication", listen)
		assert.Contains(t, r.stderr, "pass --auth token:<secret> or basic:<user>:<password>", listen)
		assert.NotContains(t, r.stderr, "cannot connect", "refused before connecting")
	}
	r := runCLI(context.Background(), "", "--url", "redis://127.0.0.1:1/0", "ui", "--auth", "token:short")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--auth: invalid authentication")
	t.Setenv(envAuth, "pw-without-kind")
	r = runCLI(context.Background(), "", "--url", "redis://127.0.0.1:1/0", "ui")
	assert.Equal(t, 2, r.code, "the environment variable is parsed like the flag")
	assert.Contains(t, r.stderr, "--auth: invalid authentication")
	assert.NotContains(t, r.stderr, "pw-without-kind")
}

var servingURL = regexp.MustCompile(`msg="serving the console" url=(http://127\.0\.0\.1:\d+/)`)

// serveUI runs `millrace ui` with argv until the test ends and returns the
// console's URL and its log.
func serveUI(t *testing.T, argv ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- newApp(strings.NewReader(""), &stdout, &stderr).run(ctx, append(argv, "ui", "--listen", "127.0.0.1:0", "--interval", "100ms"))
	}()
	t.Cleanup(func() {
		cancel()
		assert.Equal(t, 0, <-done, stderr.String())
	})
	deadline := time.After(20 * time.Second)
	for {
		if m := servingURL.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], &stderr
		}
		select {
		case code := <-done:
			t.Fatalf("millrace ui exited with %d:\n%s", code, stderr.String())
		case <-deadline:
			t.Fatalf("millrace ui did not start:\n%s", stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	return string(body)
}

// waitTopic reads the overview after each sampling round, told by the
// console's event stream, until it lists topic.
func waitTopic(t *testing.T, url, topic string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"api/events", nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "data: ") {
			continue
		}
		if o := get(t, url+"api/overview"); strings.Contains(o, `"name":"`+topic+`"`) {
			return o
		}
	}
	t.Fatalf("the overview never listed %s (%v)", topic, sc.Err())
	return ""
}

// TestUI_URLForms serves the console from the CLI over a password-protected
// server and over Sentinel: the page names the deployment and neither page
// nor log shows the password.
func TestUI_URLForms(t *testing.T) {
	t.Setenv(envAuth, "")
	t.Run("password", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{Password: "topsecret"})
		fixture.Topology(t, srv.Client(t))
		url, log := serveUI(t, "--url", "redis://:topsecret@"+srv.Addr()+"/0")
		o := waitTopic(t, url, "orders")
		assert.Contains(t, o, `"deadLetters":3`)
		page := get(t, url)
		assert.Contains(t, page, "redis "+srv.Addr()+" db 0")
		assert.NotContains(t, page+o+log.String(), "topsecret")
	})
	t.Run("sentinel", func(t *testing.T) {
		st := redistest.StartSentinel(t, 1, 1)
		fixture.Topology(t, st.Client(t))
		url, log := serveUI(t, "--url", "redis-sentinel://"+strings.Join(st.SentinelAddrs(), ",")+"/"+st.MasterName)
		o := waitTopic(t, url, "orders")
		assert.Contains(t, o, `"name":"billing"`)
		assert.Contains(t, get(t, url), "sentinel "+st.MasterName+" via "+st.SentinelAddrs()[0])
		assert.Contains(t, get(t, url+"api/deadletters?topic=orders"), `"uuid":"dead-1"`)
		assert.Contains(t, log.String(), `redis="sentinel mymaster via`)
	})
}
