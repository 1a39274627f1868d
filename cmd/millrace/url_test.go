package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/entryid"
)

func TestParseURL(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		for _, raw := range []string{"redis://u:p@h:6380/2", "h:6380", "rediss://h:6380/0", "unix:///tmp/r.sock?db=3"} {
			tg, err := parseURL(raw)
			require.NoError(t, err, raw)
			assert.Equal(t, kindSingle, tg.kind, raw)
		}
		tg, _ := parseURL("redis://u:p@h:6380/2")
		assert.Equal(t, "h:6380", tg.single.Addr)
		assert.Equal(t, "u", tg.single.Username)
		assert.Equal(t, "p", tg.single.Password)
		assert.Equal(t, 2, tg.single.DB)
		tg, _ = parseURL("rediss://h:6380/0")
		assert.NotNil(t, tg.single.TLSConfig)
		tg, _ = parseURL("unix:///tmp/r.sock?db=3")
		assert.Equal(t, "unix", tg.single.Network)
		assert.Equal(t, 3, tg.single.DB)
	})
	t.Run("sentinel", func(t *testing.T) {
		tg, err := parseURL("redis-sentinel://app:secret@s1:26379,s2,[::1]:26380/mymaster/3?sentinel_password=sp&dial_timeout=2s")
		require.NoError(t, err)
		require.Equal(t, kindSentinel, tg.kind)
		o := tg.sentinel
		assert.Equal(t, "mymaster", o.MasterName)
		assert.Equal(t, []string{"s1:26379", "s2:26379", "[::1]:26380"}, o.SentinelAddrs)
		assert.Equal(t, "app", o.Username)
		assert.Equal(t, "secret", o.Password)
		assert.Equal(t, "sp", o.SentinelPassword)
		assert.Equal(t, 3, o.DB)
		assert.Nil(t, o.TLSConfig)
		assert.Equal(t, "2s", o.DialTimeout.String())

		tg, err = parseURL("rediss-sentinel://s1/m")
		require.NoError(t, err)
		assert.NotNil(t, tg.sentinel.TLSConfig)
		assert.Equal(t, "m", tg.sentinel.MasterName)
		assert.Equal(t, 0, tg.sentinel.DB)

		_, err = parseURL("redis-sentinel://s1:26379")
		assert.ErrorContains(t, err, "master-name")
	})
	t.Run("cluster", func(t *testing.T) {
		for _, raw := range []string{"redis-cluster://u:p@n1:7000,n2:7001,n3", "redis://u:p@n1:7000,n2:7001,n3"} {
			tg, err := parseURL(raw)
			require.NoError(t, err, raw)
			require.Equal(t, kindCluster, tg.kind)
			assert.Equal(t, []string{"n1:7000", "n2:7001", "n3:6379"}, tg.cluster.Addrs)
			assert.Equal(t, "u", tg.cluster.Username)
			assert.Equal(t, "p", tg.cluster.Password)
		}
		tg, err := parseURL("rediss-cluster://n1:7000")
		require.NoError(t, err)
		assert.NotNil(t, tg.cluster.TLSConfig)
		_, err = parseURL("redis-cluster://n1:7000/2")
		assert.ErrorContains(t, err, "no database")
	})
	t.Run("errors", func(t *testing.T) {
		for _, raw := range []string{"", "ftp://h", "redis://h1,,h2", "redis://u:topsecret@h:1/x"} {
			_, err := parseURL(raw)
			require.Error(t, err, raw)
			assert.NotContains(t, err.Error(), "topsecret")
		}
	})
}

// TestURLErrorsHideCredentials: no error of a bad URL shows its password,
// whatever is wrong with it, from parseURL nor from a command (stat, ui).
func TestURLErrorsHideCredentials(t *testing.T) {
	const pw = "S3cretPassw0rd"
	for raw, want := range map[string]string{
		"redis://:" + pw + "!x@127.0.0.1:notaport/0": `invalid URL redis://:xxxxx@127.0.0.1:notaport/0: invalid port ":notaport" after host`,
		"redis://:S3cret Passw0rd@127.0.0.1:6379/0":  `invalid URL redis://:xxxxx@127.0.0.1:6379/0: net/url: invalid userinfo`,
		"redis://:" + pw + "%zz@127.0.0.1:6379/0":    `invalid URL redis://:xxxxx@127.0.0.1:6379/0: cannot parse it; write a password's special characters %-escaped`,
		"redis://u:S3cret/Passw0rd@h:1/0":            `invalid URL redis://u:xxxxx@h:1/0: cannot parse it;`,
		"redis://u:S3cret#Passw0rd@h:1/0":            `invalid URL redis://u:xxxxx@h:1/0: cannot parse it;`,
		"redis://u:S3cret?Passw0rd@h:1/0":            `invalid URL redis://u:xxxxx@h:1/0: cannot parse it;`,
		"u:" + pw + "@h:x":                           `invalid URL redis://u:xxxxx@h:x: invalid port ":x" after host`,
		"redis://u:" + pw + "@h:1/0?password=" + pw:  `invalid URL redis://u:xxxxx@h:1/0?password=xxxxx: redis: unexpected option: password`,
		"redis://u:" + pw + "@h:1/0/x":               `invalid URL redis://u:xxxxx@h:1/0/x: redis: invalid URL path: /0/x`,
		"redis-sentinel://u:" + pw + "@h1:x/m":       `invalid URL redis-sentinel://u:xxxxx@h1:x/m: invalid port ":x" after host`,
		"redis-sentinel://u:" + pw + "%zz@h1/m":      `invalid URL redis-sentinel://u:xxxxx@h1/m: cannot parse it;`,
		"redis-sentinel://u:" + pw + "@h1":           `invalid URL redis-sentinel://u:xxxxx@h1: want redis-sentinel://`,
		"redis-cluster://u:" + pw + "%zz@h1,h2":      `invalid URL redis-cluster://u:xxxxx@h1,h2: cannot parse it;`,
		"redis-cluster://u:" + pw + "@h1,h2/3":       `invalid URL redis-cluster://u:xxxxx@h1,h2/3: a Cluster has no database number`,
		"redis://u:" + pw + "@h1,,h2":                `invalid URL redis://u:xxxxx@h1,,h2: empty host`,
		"ftp://u:" + pw + "@h":                       `invalid URL ftp://u:xxxxx@h: unknown scheme "ftp"`,
		"redis://u:S3c@" + pw + "@h:x/0":             `invalid URL redis://u:xxxxx@h:x/0: invalid port ":x" after host`,
	} {
		_, err := parseURL(raw)
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), want, raw)
		assert.NotContains(t, err.Error(), "S3cret", raw)
		assert.NotContains(t, err.Error(), "Passw0rd", raw)
		for _, cmd := range [][]string{{"stat", "orders"}, {"ui"}} {
			r := runCLI(context.Background(), "", append([]string{"--url", raw}, cmd...)...)
			assert.Equal(t, 2, r.code, raw)
			assert.Contains(t, r.stderr, "millrace: --url: "+want, raw)
			assert.NotContains(t, r.stdout+r.stderr, "S3cret", raw)
			assert.NotContains(t, r.stdout+r.stderr, "Passw0rd", raw)
		}
	}
	// REDIS_URL is checked the same way.
	t.Setenv("REDIS_URL", "redis://:"+pw+"%zz@127.0.0.1:6379/0")
	r := runCLI(context.Background(), "", "stat", "orders")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "invalid URL redis://:xxxxx@127.0.0.1:6379/0")
	assert.NotContains(t, r.stderr, "S3cret")
}

func TestParsePosition(t *testing.T) {
	now := mustTime(t, "2024-05-01T12:00:00Z")
	for in, want := range map[string]string{
		"oldest":               "0 (oldest)",
		"0":                    "0 (oldest)",
		"$":                    "$ (newest)",
		"newest":               "$ (newest)",
		"1700000000000-5":      "1700000000000-5",
		"1700000000000":        "2023-11-14T22:13:20Z",
		"2024-05-01T11:00:00Z": "2024-05-01T11:00:00Z",
		"15m":                  "2024-05-01T11:45:00Z",
		"2d":                   "2024-04-29T12:00:00Z",
	} {
		p, err := parsePosition(in, now, true)
		require.NoError(t, err, in)
		assert.Equal(t, want, p.String(), in)
	}
	_, err := parsePosition("$", now, false)
	assert.Error(t, err)
	_, err = parsePosition("soon", now, true)
	assert.Error(t, err)
	p, _ := parsePosition("1700000000000", now, false)
	assert.Equal(t, "1700000000000-0", p.minID())
	assert.Equal(t, "1699999999999-18446744073709551615", entryid.Before(p.t))
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[string]string{"0s": "0ms", "850ms": "850ms", "42s": "42s", "185s": "3m05s", "7810s": "2h10m", "97h": "4d01h"} {
		assert.Equal(t, want, humanDuration(mustDuration(t, d)), d)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	require.NoError(t, err)
	return d
}

func TestRedact(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://h:6379/0":        "redis://h:6379/0",
		"redis://u@h:6379":        "redis://u@h:6379",
		"redis://u:topsecret@h/0": "redis://u:xxxxx@h/0",
		"redis://:topsecret@h:1":  "redis://:xxxxx@h:1",
		"h:6379":                  "h:6379",
		"redis-sentinel://app:topsecret@s1,s2/m/1?sentinel_password=topsecret&dial_timeout=2s": "redis-sentinel://app:xxxxx@s1,s2/m/1?sentinel_password=xxxxx&dial_timeout=2s",
		"redis://h/0?password=topsecret": "redis://h/0?password=xxxxx",
		"redis://u:top secret@h/0":       "redis://u:xxxxx@h/0",
		"redis://u:top/secret@h/0":       "redis://u:xxxxx@h/0",
		"redis://u:top@secret@h/0":       "redis://u:xxxxx@h/0",
		"redis://u:top%zzsecret@h/0":     "redis://u:xxxxx@h/0",
		"u:topsecret@h:1":                "u:xxxxx@h:1",
	} {
		got := redact(raw)
		assert.Equal(t, want, got, raw)
		assert.NotContains(t, got, "topsecret")
	}
}

func TestTargetDescribe(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://u:topsecret@h:6380/2": "redis h:6380 db 2",
		"rediss://h:6380/0":            "redis h:6380 db 0 (TLS)",
		"unix:///tmp/r.sock?db=3":      "redis unix:/tmp/r.sock db 3",
		"redis-sentinel://a:topsecret@s1,s2:26380/mymaster/1?sentinel_password=topsecret": "sentinel mymaster via s1:26379,s2:26380 db 1",
		"redis-cluster://u:topsecret@n1:7000,n2:7001":                                     "cluster n1:7000,n2:7001",
	} {
		tg, err := parseURL(raw)
		require.NoError(t, err, raw)
		assert.Equal(t, want, tg.describe(), raw)
	}
}
