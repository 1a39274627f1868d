package main

import (
	"fmt"
	"net"
	"net/url"
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
func parseURL(raw string) (target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return target{}, fmt.Errorf("empty URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "redis://" + raw
	}
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
			return target{}, fmt.Errorf("invalid URL %s: empty host", redact(raw))
		}
	}

	switch scheme {
	case "unix":
		o, err := redis.ParseURL(raw)
		if err != nil {
			return target{}, fmt.Errorf("invalid URL %s: %w", redact(raw), err)
		}
		return target{kind: kindSingle, single: o}, nil
	case "redis", "rediss":
		if len(hosts) == 1 {
			o, err := redis.ParseURL(raw)
			if err != nil {
				return target{}, fmt.Errorf("invalid URL %s: %w", redact(raw), err)
			}
			return target{kind: kindSingle, single: o}, nil
		}
		return parseCluster(scheme, userinfo, hosts, tail, raw)
	case "redis-cluster", "rediss-cluster":
		return parseCluster(strings.TrimSuffix(scheme, "-cluster"), userinfo, hosts, tail, raw)
	case "redis-sentinel", "rediss-sentinel":
		return parseSentinel(strings.TrimSuffix(scheme, "-sentinel"), userinfo, hosts, tail, raw)
	}
	return target{}, fmt.Errorf("invalid URL %s: unknown scheme %q (want redis, rediss, unix, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster)", redact(raw), scheme)
}

func parseCluster(scheme, userinfo string, hosts []string, tail, raw string) (target, error) {
	u, err := url.Parse(scheme + "://" + userinfo + withPort(hosts[0], "6379") + tail)
	if err != nil {
		return target{}, fmt.Errorf("invalid URL %s: %w", redact(raw), err)
	}
	if strings.Trim(u.Path, "/") != "" {
		return target{}, fmt.Errorf("invalid URL %s: a Cluster has no database number", redact(raw))
	}
	u.Path = ""
	q := u.Query()
	for _, h := range hosts[1:] {
		q.Add("addr", withPort(h, "6379"))
	}
	u.RawQuery = q.Encode()
	o, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return target{}, fmt.Errorf("invalid URL %s: %w", redact(raw), err)
	}
	return target{kind: kindCluster, cluster: o}, nil
}

func parseSentinel(scheme, userinfo string, hosts []string, tail, raw string) (target, error) {
	u, err := url.Parse(scheme + "://" + withPort(hosts[0], "26379") + tail)
	if err != nil {
		return target{}, fmt.Errorf("invalid URL %s: %w", redact(raw), err)
	}
	parts := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	if len(parts) == 0 || len(parts) > 2 {
		return target{}, fmt.Errorf("invalid URL %s: want redis-sentinel://host:26379[,host:26379...]/master-name[/db]", redact(raw))
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
			return target{}, fmt.Errorf("invalid URL %s: %w", redact(raw), err)
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
		return target{}, fmt.Errorf("invalid URL %s: %w", redact(raw), err)
	}
	return target{kind: kindSentinel, sentinel: o}, nil
}

func withPort(host, port string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// redact hides the passwords of a URL for messages: the password of its
// userinfo and every query parameter whose name holds "password"
// (sentinel_password).
func redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		params := strings.Split(query, "&")
		for k, p := range params {
			if name, _, ok := strings.Cut(p, "="); ok && strings.Contains(strings.ToLower(name), "password") {
				params[k] = name + "=xxxxx"
			}
		}
		query = "?" + strings.Join(params, "&")
	}
	authority := rest
	if i := strings.IndexAny(rest, "/#"); i >= 0 {
		authority = rest[:i]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		if user, _, hasPw := strings.Cut(authority[:at], ":"); hasPw {
			rest = user + ":xxxxx" + rest[at:]
		}
	}
	return scheme + "://" + rest + query
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
