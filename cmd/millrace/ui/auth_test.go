package ui

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/redistest"
)

func TestCheckListen(t *testing.T) {
	for addr, loopback := range map[string]bool{
		"127.0.0.1:8080": true, "127.1.2.3:80": true, "localhost:8080": true, "[::1]:8080": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "192.168.1.10:8080": false, "console.example:8080": false,
	} {
		assert.Equal(t, loopback, IsLoopback(addr), addr)
		err := CheckListen(addr, Auth{})
		if loopback {
			assert.NoError(t, err, addr)
		} else {
			assert.ErrorIs(t, err, ErrAuthRequired, addr)
		}
		token, err := ParseAuth("token:0123456789abcdef")
		require.NoError(t, err)
		assert.NoError(t, CheckListen(addr, token), addr)
	}
	_, err := New(nil, Config{Listen: "0.0.0.0:8080"})
	assert.ErrorIs(t, err, ErrAuthRequired, "New refuses it too")
}

func TestParseAuth(t *testing.T) {
	a, err := ParseAuth("basic:alice:s3cr:et-long-enough")
	require.NoError(t, err)
	assert.Equal(t, "basic (user alice)", a.String())
	assert.Equal(t, "s3cr:et-long-enough", a.secret)
	a, err = ParseAuth("token:0123456789abcdef")
	require.NoError(t, err)
	assert.Equal(t, "token", a.String(), "the secret is never in the description")
	for _, bad := range []string{"", "alice:pw", "token:short", "basic:alice", "basic::pw", "basic:alice:"} {
		_, err := ParseAuth(bad)
		assert.True(t, errors.Is(err, ErrInvalidAuth), bad)
	}
}

func TestAuth_Basic(t *testing.T) {
	auth, err := ParseAuth("basic:alice:s3cret-s3cret")
	require.NoError(t, err)
	con := start(t, redistest.StartFromEnv(t).Client(t), Config{Auth: auth}, nil)

	res, err := http.Get(con.url + "/api/overview")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, res.Header.Get("WWW-Authenticate"), "Basic")

	for pw, code := range map[string]int{"wrong": http.StatusUnauthorized, "s3cret-s3cret": http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, con.url+"/api/overview", nil)
		req.SetBasicAuth("alice", pw)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, code, res.StatusCode, pw)
	}
	assert.NotContains(t, con.log.String(), "s3cret-s3cret")
}

func TestAuth_Token(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	auth, err := ParseAuth("token:" + secret)
	require.NoError(t, err)
	con := start(t, redistest.StartFromEnv(t).Client(t), Config{Auth: auth}, nil)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// A page without a session gets the sign-in form.
	code, page := con.do(t, http.MethodGet, "/", "", nil)
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, page, `<form method="post" action="/login">`)
	code, _ = con.do(t, http.MethodGet, "/assets/style.css", "", nil)
	assert.Equal(t, http.StatusOK, code, "the sign-in page's style needs no session")

	res, err := noRedirect.PostForm(con.url+"/login", url.Values{"token": {"wrong-wrong-wrong-wrong"}})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Empty(t, res.Cookies())

	res, err = noRedirect.PostForm(con.url+"/login", url.Values{"token": {secret}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Len(t, res.Cookies(), 1)
	cookie := res.Cookies()[0]
	assert.True(t, cookie.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, cookie.SameSite)
	assert.NotContains(t, cookie.Value, secret, "the cookie holds a hash, not the token")

	code, _ = con.do(t, http.MethodGet, "/api/overview", "", map[string]string{"Cookie": cookie.Name + "=" + cookie.Value})
	assert.Equal(t, http.StatusOK, code, "the session cookie signs in")
	code, _ = con.do(t, http.MethodGet, "/api/overview", "", map[string]string{"Authorization": "Bearer " + secret})
	assert.Equal(t, http.StatusOK, code, "so does a bearer token")
	code, _ = con.do(t, http.MethodGet, "/api/overview", "", map[string]string{"Authorization": "Bearer " + strings.ToUpper(secret)})
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.NotContains(t, con.log.String(), secret)
}
