package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// URL forms accepted by --url, in the help text.
const urlHelp = `Connection URL forms (--url or REDIS_URL):
  redis://[user:password@]host:6379[/db]              one server
  rediss://[user:password@]host:6380[/db]             one server over TLS
  unix:///path/to/redis.sock[?db=0]                   one server over a Unix socket
  redis-sentinel://[user:password@]host:26379[,host2:26379...]/master-name[/db]
                                                      Sentinel; user:password are the
                                                      data nodes'; sentinel_username and
                                                      sentinel_password query parameters
                                                      authenticate to the sentinels
  rediss-sentinel://...                               the same over TLS
  redis-cluster://[user:password@]host:7000[,host2:7001...]
                                                      Cluster (one or more seed nodes)
  rediss-cluster://...                                the same over TLS
  redis://host:7000,host2:7001                        Cluster too: several addresses
Query parameters of go-redis (dial_timeout=3s, skip_verify=true, protocol=2, ...)
work in every form.`

// connKind is the kind of deployment a URL names.
type connKind string

const (
	kindSingle   connKind = "single"
	kindSentinel connKind = "sentinel"
	kindCluster  connKind = "cluster"
)

// target is a parsed --url: exactly one of the options is set.
type target struct {
	kind     connKind
	single   *redis.Options
	sentinel *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

func (t target) client() redis.UniversalClient {
	switch t.kind {
	case kindSentinel:
		return redis.NewFailoverClient(t.sentinel)
	case kindCluster:
		return redis.NewClusterClient(t.cluster)
	}
	return redis.NewClient(t.single)
}

// parseURL parses the --url forms of urlHelp. The Sentinel and Cluster forms
// with several hosts are rewritten into go-redis's own URL forms (extra
// hosts as addr= query parameters) and parsed by go-redis.
//
// No error it returns holds a credential of raw: the URL is shown redacted
// and the parser's own words are dropped when they quote a part of a
// password (see urlError).
func parseURL(raw string) (target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return target{}, fmt.Errorf("empty URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "redis://" + raw
	}
	t, err := parseFullURL(raw)
	if err != nil {
		return target{}, urlError(raw, err)
	}
	return t, nil
}

func parseFullURL(raw string) (target, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	scheme = strings.ToLower(scheme)
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	userinfo, hostlist := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hostlist = authority[:i+1], authority[i+1:]
	}
	hosts := strings.Split(hostlist, ",")
	for _, h := range hosts {
		if h == "" && scheme != "unix" {
			return target{}, fmt.Errorf("empty host")
		}
	}

	switch scheme {
	case "unix":
		o, err := redis.ParseURL(raw)
		if err != nil {
			return target{}, err
		}
		return target{kind: kindSingle, single: o}, nil
	case "redis", "rediss":
		if len(hosts) == 1 {
			o, err := redis.ParseURL(raw)
			if err != nil {
				return target{}, err
			}
			return target{kind: kindSingle, single: o}, nil
		}
		return parseCluster(scheme, userinfo, hosts, tail)
	case "redis-cluster", "rediss-cluster":
		return parseCluster(strings.TrimSuffix(scheme, "-cluster"), userinfo, hosts, tail)
	case "redis-sentinel", "rediss-sentinel":
		return parseSentinel(strings.TrimSuffix(scheme, "-sentinel"), userinfo, hosts, tail)
	}
	return target{}, fmt.Errorf("unknown scheme %q (want redis, rediss, unix, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster)", scheme)
}

func parseCluster(scheme, userinfo string, hosts []string, tail string) (target, error) {
	u, err := url.Parse(scheme + "://" + userinfo + withPort(hosts[0], "6379") + tail)
	if err != nil {
		return target{}, err
	}
	if strings.Trim(u.Path, "/") != "" {
		return target{}, fmt.Errorf("a Cluster has no database number")
	}
	u.Path = ""
	q := u.Query()
	for _, h := range hosts[1:] {
		q.Add("addr", withPort(h, "6379"))
	}
	u.RawQuery = q.Encode()
	o, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return target{}, err
	}
	return target{kind: kindCluster, cluster: o}, nil
}

func parseSentinel(scheme, userinfo string, hosts []string, tail string) (target, error) {
	u, err := url.Parse(scheme + "://" + withPort(hosts[0], "26379") + tail)
	if err != nil {
		return target{}, err
	}
	parts := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	if len(parts) == 0 || len(parts) > 2 {
		return target{}, fmt.Errorf("want redis-sentinel://host:26379[,host:26379...]/master-name[/db]")
	}
	u.Path = ""
	if len(parts) == 2 {
		u.Path = "/" + parts[1]
	}
	q := u.Query()
	q.Set("master_name", parts[0])
	for _, h := range hosts[1:] {
		q.Add("addr", withPort(h, "26379"))
	}
	// The URL's user and password are the data nodes'; go-redis reads the
	// userinfo as the sentinels' and username/password parameters as the
	// data nodes'.
	if userinfo != "" {
		ui, err := url.Parse("redis://" + userinfo + "x")
		if err != nil {
			return target{}, err
		}
		if name := ui.User.Username(); name != "" {
			q.Set("username", name)
		}
		if pw, ok := ui.User.Password(); ok {
			q.Set("password", pw)
		}
	}
	su, sp := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	if su != "" || sp != "" {
		u.User = url.UserPassword(su, sp)
	}
	u.RawQuery = q.Encode()
	o, err := redis.ParseFailoverURL(u.String())
	if err != nil {
		return target{}, err
	}
	return target{kind: kindSentinel, sentinel: o}, nil
}

func withPort(host, port string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// redact hides the credentials of a URL for messages: everything between
// the user name and the last '@' (the password, however it is written:
// with a space, an '@', a '/' or a bad %-escape in it), and every query
// parameter whose name holds "password" (sentinel_password). A URL with
// '@' in a query parameter may lose more than its password; never less.
func redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	}
	if user, pw, ok := splitSecret(rest); ok && pw != "" {
		rest = user + ":xxxxx" + rest[len(user)+1+len(pw):]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		params := strings.Split(rest[i+1:], "&")
		for k, p := range params {
			if name, _, ok := strings.Cut(p, "="); ok && strings.Contains(strings.ToLower(name), "password") {
				params[k] = name + "=xxxxx"
			}
		}
		rest = rest[:i+1] + strings.Join(params, "&")
	}
	if scheme == "" {
		return rest
	}
	return scheme + "://" + rest
}

// splitSecret finds the user and password at the start of rest (a URL
// without its scheme): the userinfo ends at the last '@', the user at its
// first ':'. ok is false when rest has no '@' or the userinfo no ':'.
func splitSecret(rest string) (user, password string, ok bool) {
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return "", "", false
	}
	user, password, ok = strings.Cut(rest[:at], ":")
	return user, password, ok
}

// secrets are the credentials a URL may carry, as written in it: the
// password of its userinfo (see splitSecret) and the values of its
// password query parameters.
func secrets(raw string) []string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		rest = raw
	}
	var out []string
	if _, pw, ok := splitSecret(rest); ok && pw != "" {
		out = append(out, pw)
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		for _, p := range strings.Split(rest[i+1:], "&") {
			if name, v, ok := strings.Cut(p, "="); ok && v != "" && strings.Contains(strings.ToLower(name), "password") {
				out = append(out, v)
			}
		}
	}
	return out
}

// urlError is the error of parsing raw: the URL redacted, then the
// parser's reason. net/url's errors quote the URL, so only their reason is
// kept; a reason that still quotes a piece of a credential ("invalid port
// \":s3c\"" for a password with a '/', "invalid URL escape \"%zz\"") is
// replaced by a hint that says what to check, without it.
func urlError(raw string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	reason := err.Error()
	for _, s := range secrets(raw) {
		if leaks(reason, s) {
			reason = "cannot parse it; write a password's special characters %-escaped (space %20, / %2F, ? %3F, # %23, @ %40, % %25)"
			break
		}
	}
	return fmt.Errorf("invalid URL %s: %s", redact(raw), reason)
}

// quoted are the double-quoted pieces of a parser's message.
var quoted = regexp.MustCompile(`"[^"]*"`)

// leaks reports whether text holds secret, or quotes a piece of it.
func leaks(text, secret string) bool {
	if strings.Contains(text, secret) {
		return true
	}
	for _, q := range quoted.FindAllString(text, -1) {
		if q, err := strconv.Unquote(q); err == nil {
			if q = strings.Trim(q, ":@/"); q != "" && strings.Contains(secret, q) {
				return true
			}
		}
	}
	return false
}

// describe names the deployment a target connects to, without any
// credential: "redis 127.0.0.1:6379 db 0", "sentinel mymaster via
// s1:26379,s2:26379 db 0", "cluster n1:7000,n2:7001". TLS adds "(TLS)".
func (t target) describe() string {
	tls := func(on bool) string {
		if on {
			return " (TLS)"
		}
		return ""
	}
	switch t.kind {
	case kindSentinel:
		o := t.sentinel
		return fmt.Sprintf("sentinel %s via %s db %d%s", o.MasterName, strings.Join(o.SentinelAddrs, ","), o.DB, tls(o.TLSConfig != nil))
	case kindCluster:
		o := t.cluster
		return fmt.Sprintf("cluster %s%s", strings.Join(o.Addrs, ","), tls(o.TLSConfig != nil))
	}
	o := t.single
	addr := o.Addr
	if o.Network == "unix" {
		addr = "unix:" + addr
	}
	return fmt.Sprintf("redis %s db %d%s", addr, o.DB, tls(o.TLSConfig != nil))
}
