// Package redistest starts real redis-server, Redis Cluster and Redis
// Sentinel processes for tests, or their Valkey counterparts
// (valkey-server, valkey-sentinel) when REDISTEST_SERVER=valkey (see
// ServerEnv).
//
// Every process listens on a free 127.0.0.1 port and keeps its redis.conf,
// AOF, pidfile and log in a temp dir of the test. It runs daemonized, so that
// restart.sh (see Server.RestartCommand) can start it again from a command
// that exits, and it is killed when the test ends, passed or not.
//
// The package needs Linux (/proc) and the Debian packages redis-server,
// redis-tools and, for Sentinel, redis-sentinel; or, with
// REDISTEST_SERVER=valkey, valkey-server and valkey-sentinel from Debian 12's
// bookworm-backports (valkey-tools comes with them).
package redistest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// File names inside a server's dir.
const (
	confFile    = "redis.conf"
	pidFile     = "redis.pid"
	logFile     = "redis.log"
	restartFile = "restart.sh"
)

// Options configure a standalone server. The zero value gives a server with
// AOF on, appendfsync always (every acknowledged write survives SIGKILL), no
// RDB snapshots and no password.
type Options struct {
	NoAOF    bool     // disable appendonly: nothing survives a restart
	Config   []string // extra redis.conf lines, e.g. "maxmemory-policy allkeys-lru"; they come last, so they override the defaults above
	Password string   // requirepass (default user)
	TLS      bool     // serve TLS only (port 0, tls-port) with a CA and certificate generated for this server; clients need Options for the CA
}

// Server is one redis-server or redis-sentinel process (valkey-server or
// valkey-sentinel with REDISTEST_SERVER=valkey), or, from StartFromEnv, an
// external server given by REDIS_URL.
type Server struct {
	tb       testing.TB // the test that started the server; methods without a tb report to it
	external string     // REDIS_URL of a server that is not ours, "" otherwise
	opts     Options
	bin      string // absolute path of redis-server or redis-sentinel (valkey-*)
	cli      string // absolute path of redis-cli (valkey-cli), used by restart.sh
	dir      string // symlinks resolved, so it matches /proc/pid/cwd
	addr     string
	ca       *x509.CertPool // CA of the server certificate when opts.TLS
	sentinel bool           // a redis-sentinel: no AOF, no password, no TLS
}

// Start starts a redis-server (valkey-server with REDISTEST_SERVER=valkey)
// with opts and stops it when the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := newServer(tb, false, opts)
	s.start(tb, false)
	return s
}

// StartFromEnv returns a Server for the external server at REDIS_URL when
// that variable is set, and otherwise starts one with Start(tb, Options{}).
// An external server is only pointed at: Stop leaves it alone, RestartCommand
// is nil, and Restart, StartAgain, Kill, Freeze and Thaw skip the test.
func StartFromEnv(tb testing.TB) *Server {
	tb.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		return Start(tb, Options{})
	}
	o, err := redis.ParseURL(u)
	if err != nil {
		tb.Fatalf("redistest: REDIS_URL: %v", err)
	}
	return &Server{tb: tb, external: u, addr: o.Addr}
}

// newServer prepares the temp dir (and TLS files) of a server, or with
// sentinel of a sentinel, of the kind ServerEnv chooses, and registers its
// Stop; the caller sets any remaining fields and calls start.
func newServer(tb testing.TB, sentinel bool, opts Options) *Server {
	tb.Helper()
	f := currentFlavor(tb)
	bin, hint := f.server, f.serverHint
	if sentinel {
		bin, hint = f.sentinel, f.sentinelHint
	}
	binPath, err := exec.LookPath(bin)
	if err != nil {
		tb.Fatalf("redistest: %s", hint)
	}
	cli, err := exec.LookPath(f.cli)
	if err != nil {
		tb.Fatalf("redistest: %s", f.cliHint)
	}
	announce(f, binPath)
	// TempDir registers its removal before Stop is registered below, so
	// Stop (cleanups run last-in first-out) kills the server first.
	dir, err := filepath.EvalSymlinks(tb.TempDir())
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	s := &Server{tb: tb, opts: opts, bin: binPath, cli: cli, dir: dir, sentinel: sentinel}
	if opts.TLS {
		ca, err := newCA()
		if err == nil {
			err = ca.writeServerFiles(dir)
		}
		if err != nil {
			tb.Fatalf("redistest: TLS files: %v", err)
		}
		s.ca = ca.pool()
	}
	tb.Cleanup(s.Stop)
	return s
}

// start writes the config and restart.sh for a free port and starts the
// server, retrying with another port if the chosen one was taken meanwhile.
// clusterBus also reserves port+10000.
func (s *Server) start(tb testing.TB, clusterBus bool) {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(tb, clusterBus)
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		os.Remove(s.path(logFile)) // holds the bind error of a failed attempt
		s.writeFile(tb, confFile, s.config(port))
		s.writeFile(tb, restartFile, s.restartScript(port))
		// The foreground redis-server exits as soon as the daemon forked;
		// config errors come out here, later ones only in the log.
		if out, err := run(s.bin, s.path(confFile)); err != nil {
			s.fatalf(tb, "start %s: %v\n%s", s.bin, err, out)
		}
		err := s.waitReady()
		if err == nil {
			return
		}
		log, _ := os.ReadFile(s.path(logFile))
		if !strings.Contains(string(log), "Address already in use") || attempt == maxStartAttempts {
			s.fatalf(tb, "start %s: %v", s.addr, err)
		}
	}
}

// config returns the redis.conf of the server on port.
func (s *Server) config(port int) string {
	lines := []string{
		"bind 127.0.0.1",
		"dir " + strconv.Quote(s.dir),
		"daemonize yes",
		"pidfile " + strconv.Quote(s.path(pidFile)),
		"logfile " + strconv.Quote(s.path(logFile)),
	}
	switch {
	case s.sentinel:
		lines = append(lines, "port "+strconv.Itoa(port))
	case s.opts.TLS:
		lines = append(lines,
			"port 0",
			"tls-port "+strconv.Itoa(port),
			"tls-cert-file "+strconv.Quote(s.path(serverCertFile)),
			"tls-key-file "+strconv.Quote(s.path(serverKeyFile)),
			"tls-ca-cert-file "+strconv.Quote(s.path(caCertFile)),
			"tls-auth-clients no",
		)
	default:
		lines = append(lines, "port "+strconv.Itoa(port))
	}
	if !s.sentinel {
		// No RDB snapshots; and a master starts a replica's full sync at
		// once instead of waiting 5 s for more replicas to join it.
		lines = append(lines, `save ""`, "repl-diskless-sync-delay 0")
		if s.opts.NoAOF {
			lines = append(lines, "appendonly no")
		} else {
			lines = append(lines, "appendonly yes", "appendfsync always")
		}
	}
	if s.opts.Password != "" {
		lines = append(lines, "requirepass "+strconv.Quote(s.opts.Password))
	}
	lines = append(lines, s.opts.Config...)
	return strings.Join(lines, "\n") + "\n"
}

// restartScript returns restart.sh for the server on port. It is the only
// code path that restarts a server: Restart and StartAgain run it too.
func (s *Server) restartScript(port int) string {
	// timeout: redis-cli has no reply timeout, and a frozen server (or a
	// stranger that took the port) accepts the connection but never answers.
	ping := "timeout 1 " + shellQuote(s.cli) + " -h 127.0.0.1 -p " + strconv.Itoa(port)
	if s.opts.TLS {
		ping += " --tls --cacert " + caCertFile
	}
	if s.opts.Password != "" {
		ping = "REDISCLI_AUTH=" + shellQuote(s.opts.Password) + " " + ping
	}
	return fmt.Sprintf(`#!/bin/sh
# Written by redistest. Restarts the Redis process of this directory the way
# a service manager would: a running process gets SIGTERM, which Redis handles
# like SHUTDOWN (the AOF is flushed); once it has exited, the same binary
# starts again with the same config. Exits 0 as soon as PING answers PONG,
# which Redis only does after loading its data, or 1 if a step takes more
# than %[1]d s.
cd %[2]s || exit 1
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
fail() { echo "restart.sh: $*, see %[3]s" >&2; exit 1; }
deadline=$(($(date +%%s) + %[1]d))
tick() { [ "$(date +%%s)" -lt "$deadline" ] && sleep 0.05; }
if [ -s %[4]s ]; then
	pid=$(cat %[4]s)
	kill -CONT "$pid" 2>/dev/null
	kill -TERM "$pid" 2>/dev/null
	while alive "$pid"; do tick || fail "pid $pid did not exit"; done
	rm -f %[4]s
fi
%[5]s %[6]s || exit 1
deadline=$(($(date +%%s) + %[1]d))
until [ "$(%[7]s ping 2>/dev/null)" = PONG ]; do tick || fail "no PONG on port %[8]d"; done
`, int(waitTimeout/time.Second), shellQuote(s.dir), s.path(logFile), pidFile, shellQuote(s.bin), confFile, ping, port)
}

func (s *Server) writeFile(tb testing.TB, name, content string) {
	tb.Helper()
	if err := os.WriteFile(s.path(name), []byte(content), 0o600); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }

// waitReady waits until the server answers PING. Redis refuses PING with
// LOADING while it reads its AOF, so PONG also means the data is loaded.
func (s *Server) waitReady() error {
	c := redis.NewClient(probeOptions(s))
	defer c.Close()
	return waitFor(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		// Redis chdirs into s.dir before daemonizing, so once the
		// foreground redis-server has returned, no process in s.dir
		// means the daemon died (e.g. its port was taken).
		if len(procsIn(s.dir)) == 0 {
			return stopWaiting{fmt.Errorf("process exited (last PING: %w)", err)}
		}
		return fmt.Errorf("PING %s: %w", s.addr, err)
	})
}

// fatalf fails the test with the tail of the server log appended.
func (s *Server) fatalf(tb testing.TB, format string, args ...any) {
	tb.Helper()
	tb.Fatalf("redistest: %s\n--- tail of %s ---\n%s", fmt.Sprintf(format, args...), s.path(logFile), logTail(s.path(logFile)))
}

// skipExternal skips the test when s is an external server.
func (s *Server) skipExternal(tb testing.TB) {
	tb.Helper()
	if s.external != "" {
		tb.Skip("redistest: not restartable: REDIS_URL points at an external server")
	}
}

// Addr returns "127.0.0.1:port" (for an external server, the host:port of
// REDIS_URL).
func (s *Server) Addr() string { return s.addr }

// URL returns a redis:// URL for the server, or rediss:// with TLS. The URL
// cannot carry the test CA, so for TLS use Options instead of
// redis.ParseURL(URL()).
func (s *Server) URL() string {
	if s.external != "" {
		return s.external
	}
	u := url.URL{Scheme: "redis", Host: s.addr, Path: "/0"}
	if s.opts.TLS {
		u.Scheme = "rediss"
	}
	if s.opts.Password != "" {
		u.User = url.UserPassword("", s.opts.Password)
	}
	return u.String()
}

// Dir returns the temp dir holding the config, AOF, pidfile, log and
// restart.sh; "" for an external server.
func (s *Server) Dir() string { return s.dir }

// Options returns fresh client options for s: password, TLS config trusting
// the test CA, PoolSize 100, short dial/read/write timeouts, and
// ContextTimeoutEnabled so a test's ctx deadline also bounds network reads.
func (s *Server) Options(tb testing.TB) *redis.Options {
	tb.Helper()
	return s.options()
}

func (s *Server) options() *redis.Options {
	if s.external != "" {
		o, _ := redis.ParseURL(s.external) // validated by StartFromEnv
		o.PoolSize = 100
		return o
	}
	o := &redis.Options{
		Addr:                  s.addr,
		Password:              s.opts.Password,
		PoolSize:              100,
		DialTimeout:           2 * time.Second,
		ReadTimeout:           3 * time.Second,
		WriteTimeout:          3 * time.Second,
		ContextTimeoutEnabled: true,
	}
	if s.opts.TLS {
		o.TLSConfig = &tls.Config{RootCAs: s.ca, MinVersion: tls.VersionTLS12}
	}
	return o
}

// probeOptions are client options for short readiness probes of s.
func probeOptions(s *Server) *redis.Options {
	o := s.options()
	o.PoolSize, o.MaxRetries, o.DialerRetries = 1, -1, 1
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = time.Second, time.Second, time.Second
	return o
}

// Client returns a new client on s, closed when the test ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(s.Options(tb))
	tb.Cleanup(func() { c.Close() })
	return c
}

// Version returns the server's own version: the valkey_version of a Valkey
// server, e.g. "8.0.1", otherwise the redis_version, e.g. "7.0.15". (Valkey
// also reports a redis_version, "7.2.4", the Redis it is compatible with.)
func (s *Server) Version(tb testing.TB) string {
	tb.Helper()
	info := s.serverInfo(tb)
	if v := infoField(info, "valkey_version"); v != "" {
		return v
	}
	return infoField(info, "redis_version")
}

// Product returns "Valkey" for a Valkey server (its INFO has
// valkey_version), otherwise "Redis".
func (s *Server) Product(tb testing.TB) string {
	tb.Helper()
	if infoField(s.serverInfo(tb), "valkey_version") != "" {
		return "Valkey"
	}
	return "Redis"
}

// serverInfo is the server's INFO server.
func (s *Server) serverInfo(tb testing.TB) string {
	tb.Helper()
	c := redis.NewClient(s.Options(tb))
	defer c.Close()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		tb.Fatalf("redistest: INFO server on %s: %v", s.addr, err)
	}
	return info
}

// infoField returns the value of field in an INFO reply, "" if absent.
func infoField(info, field string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
