package ui

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/redistest"
)

// TestAuth_ThrottlesWrongTokens sends 300 wrong bearer tokens as fast as
// it can: after 5, the address gets 429 before any check, also with the
// right token; the log names the address in a few lines, never 300.
func TestAuth_ThrottlesWrongTokens(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	auth, err := ParseAuth("token:" + secret)
	require.NoError(t, err)
	con := start(t, redistest.StartFromEnv(t).Client(t), Config{Auth: auth}, nil)

	codes := map[int]int{}
	for range 300 {
		code, _ := con.do(t, http.MethodGet, "/api/overview", "", map[string]string{"Authorization": "Bearer wrong-wrong-wrong-wrong"})
		codes[code]++
	}
	assert.Equal(t, map[int]int{http.StatusUnauthorized: signinBurst, http.StatusTooManyRequests: 300 - signinBurst}, codes)

	req, _ := http.NewRequest(http.MethodGet, con.url+"/api/overview", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode, "a throttled address is not checked, so guessing gets nowhere")
	assert.NotEmpty(t, res.Header.Get("Retry-After"))

	code, page := con.do(t, http.MethodGet, "/", "", nil)
	assert.Equal(t, http.StatusUnauthorized, code, "without credentials the sign-in form still shows")
	assert.Contains(t, page, `action="/login"`)

	log := con.log.String()
	assert.Equal(t, signinBurst-1, strings.Count(log, `msg="sign-in refused: wrong bearer token" remote=127.0.0.1:`), log)
	assert.Equal(t, 1, strings.Count(log, `msg="sign-in throttled: too many wrong credentials from one address" client=127.0.0.1`), log)
	assert.LessOrEqual(t, strings.Count(log, "\n"), 10, "300 attempts, a few lines")
	assert.NotContains(t, log, secret)
}

// TestSigninGuard_Refills checks the allowance over time with a fake clock:
// one attempt per signinRefill once throttled, a line a minute, and a
// successful sign-in forgetting the address.
func TestSigninGuard_Refills(t *testing.T) {
	logs := &logBuffer{}
	g := newSigninGuard(slog.New(slog.NewTextHandler(logs, nil)))
	var now atomic.Int64
	base := time.Unix(1700000000, 0)
	g.now = func() time.Time { return base.Add(time.Duration(now.Load())) }
	const ip = "192.0.2.7:5000"
	for range signinBurst {
		_, ok := g.allow(ip, "/")
		require.True(t, ok)
		g.wrong(ip, "/", "bearer token")
	}
	wait, ok := g.allow(ip, "/")
	require.False(t, ok)
	assert.Equal(t, signinRefill, wait)
	now.Add(int64(signinRefill))
	_, ok = g.allow("192.0.2.7:6000", "/")
	assert.True(t, ok, "one attempt per refill, from any port of the address")
	g.wrong(ip, "/", "bearer token")
	_, ok = g.allow(ip, "/")
	assert.False(t, ok)
	assert.Equal(t, 1, strings.Count(logs.String(), "sign-in throttled"), "one line a minute")
	now.Add(int64(time.Minute))
	_, ok = g.allow(ip, "/")
	require.True(t, ok)
	g.wrong(ip, "/", "bearer token")
	assert.Contains(t, logs.String(), "refused_before=3", "the attempts held back are counted")
	g.signedIn(ip)
	_, ok = g.allow(ip, "/")
	assert.True(t, ok)
	assert.Empty(t, g.clients)
}

func TestParseAuth_RefusesWeakPasswords(t *testing.T) {
	_, err := ParseAuth("basic:admin:x")
	require.ErrorIs(t, err, ErrInvalidAuth)
	assert.EqualError(t, err, "invalid authentication: the password is 1 characters, a password must be at least 12")
	_, err = ParseAuth("basic:admin:elevenchars")
	assert.ErrorIs(t, err, ErrInvalidAuth)
	_, err = ParseAuth("basic:admin:twelve-chars")
	assert.NoError(t, err)
}

// TestRedisLogger checks go-redis's lines through the console's logger: in
// its format, one per period, the others counted.
func TestRedisLogger(t *testing.T) {
	logs := &logBuffer{}
	l := NewRedisLogger(slog.New(slog.NewTextHandler(logs, nil)), 10*time.Second)
	var now atomic.Int64
	base := time.Unix(1700000000, 0)
	l.now = func() time.Time { return base.Add(time.Duration(now.Load())) }
	for k := range 30 {
		l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s\n", k, "connection refused")
		now.Add(int64(300 * time.Millisecond)) // 30 lines in 9s
	}
	now.Add(int64(2 * time.Second))
	l.Printf(context.Background(), "redis: connection pool: failed to dial")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 2, logs.String())
	assert.Contains(t, lines[0], `level=WARN msg=go-redis line="redis: connection pool: failed to dial after 0 attempts: connection refused"`)
	assert.Contains(t, lines[1], "held_back=29 over=10s")
}
