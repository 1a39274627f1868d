// Package ui is Millrace's web console, served by `millrace ui`: every
// topic with its length, groups, lag, pending entries, dead letters and
// rates, charts of the last minutes, the newest messages, the dead letters
// to open, replay or purge, and consumer groups to reset, delete or prune.
//
// One sampling loop per server reads the figures of every topic each
// Interval ([admin.Admin.Stats]: one pipelined round trip, and one more for
// the groups' pause states) and keeps a
// bounded history for the charts; pages are told of each round over
// server-sent events and read the figures from memory, so open tabs cost
// Redis nothing. Lists (messages, pending entries, dead letters) are read
// from Redis when a page opens or asks again.
//
// Safety: actions are same-origin JSON POSTs carrying a per-server CSRF
// token; ReadOnly hides them in the pages and refuses them on the server;
// an address that is not loopback needs an Auth; every action is logged.
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/admin"
)

// Defaults of [Config].
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultInterval          = 2 * time.Second
	DefaultHistory           = 15 * time.Minute
	DefaultDiscoveryInterval = 30 * time.Second
	DefaultTimeout           = 10 * time.Second
)

// overviewSpan is how much history the overview's small charts show.
const overviewSpan = 5 * time.Minute

// Config configures a [Server]. The zero value serves every topic on
// 127.0.0.1:8080 with actions enabled and no authentication.
type Config struct {
	// Listen is the address ListenAndServe serves on. Default:
	// 127.0.0.1:8080. An address that is not loopback requires Auth.
	Listen string
	// ReadOnly hides every action in the pages and refuses it on the
	// server. Default: off.
	ReadOnly bool
	// Auth is how people sign in. Default: none (loopback only).
	Auth Auth
	// Target describes the Redis deployment in the page header, e.g.
	// "redis 127.0.0.1:6379 db 0". It must hold no secret: it is shown and
	// logged as is.
	Target string
	// Topics are the topics shown. Default: every topic in the database,
	// listed with SCAN ... TYPE stream at most once per DiscoveryInterval.
	Topics []string
	// Interval is the time between two sampling rounds. Default: 2s.
	Interval time.Duration
	// History is how long the charts look back; the sampler keeps
	// History/Interval rounds. Default: 15m.
	History time.Duration
	// DiscoveryInterval is how long a list of discovered topics is reused.
	// Default: 30s.
	DiscoveryInterval time.Duration
	// Timeout bounds the Redis calls of a round or a request. Default: 10s.
	Timeout time.Duration
	// Thresholds say which figures the pages flag as problems.
	Thresholds Thresholds
	// Logger receives the actions, refused requests and Redis errors.
	// Default: slog.Default().
	Logger *slog.Logger
	// AdminOptions configure the admin.Admin the console works through.
	AdminOptions admin.Options
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.History <= 0 {
		c.History = DefaultHistory
	}
	if c.DiscoveryInterval <= 0 {
		c.DiscoveryInterval = DefaultDiscoveryInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Thresholds.setDefaults()
}

// Validate checks a Config after defaults: the listen address against
// Auth ([ErrAuthRequired]) and the history against the interval.
func (c Config) Validate() error {
	if err := CheckListen(c.Listen, c.Auth); err != nil {
		return err
	}
	if c.History < c.Interval {
		return fmt.Errorf("history %s is shorter than the interval %s", c.History, c.Interval)
	}
	return nil
}

// Server is the console over one Redis client. It borrows the client and
// never closes it.
type Server struct {
	cfg     Config
	admin   *admin.Admin
	sampler *sampler
	log     *slog.Logger
	csrf    string
	signin  *signinGuard
	pages   *template.Template
	static  fs.FS

	// Set by Serve from the listener.
	port     string
	loopback bool
	done     chan struct{} // closed when Serve returns: ends event streams
}

//go:embed assets
var assets embed.FS

// New returns a Server over client, or the error of cfg.Validate.
func New(client redis.UniversalClient, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	pages, err := template.ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, err
	}
	a := admin.New(client, cfg.AdminOptions)
	return &Server{
		cfg: cfg, admin: a, sampler: newSampler(a, cfg, cfg.Logger), log: cfg.Logger,
		csrf: newToken(), signin: newSigninGuard(cfg.Logger), pages: pages, static: static, done: make(chan struct{}),
	}, nil
}

// ListenAndServe listens on Config.Listen and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve runs the sampling loop and serves on ln until ctx ends, then shuts
// down within 5 seconds. It closes ln. A listener that is not on loopback
// needs Config.Auth ([ErrAuthRequired]). A Server serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	addr := ln.Addr().String()
	if err := CheckListen(addr, s.cfg.Auth); err != nil {
		ln.Close()
		return err
	}
	_, s.port, _ = net.SplitHostPort(addr)
	s.loopback = IsLoopback(addr)
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}

	sctx, stopSampler := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { defer close(sampled); s.sampler.run(sctx) }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("serving the console", "url", "http://"+addr+"/", "redis", s.cfg.Target,
		"read_only", s.cfg.ReadOnly, "auth", s.cfg.Auth.String(), "interval", s.cfg.Interval)

	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	close(s.done)
	stopSampler()
	<-sampled
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shut); serr != nil && err == nil {
		err = serr
	}
	if err == nil {
		err = <-errc
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// handler is the console's HTTP handler: pages, assets, the JSON API and
// the event stream, behind the security headers, the host check and Auth.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(s.static)))
	mux.HandleFunc("GET /api/overview", s.getOverview)
	mux.HandleFunc("GET /api/topic", s.getTopic)
	mux.HandleFunc("GET /api/counts", s.getCounts)
	mux.HandleFunc("GET /api/messages", s.getMessages)
	mux.HandleFunc("GET /api/deadletters", s.getDeadLetters)
	mux.HandleFunc("GET /api/deadletter", s.getDeadLetter)
	mux.HandleFunc("GET /api/pending", s.getPendingEntry)
	mux.HandleFunc("GET /api/browse", s.getBrowse)
	mux.HandleFunc("GET /api/replaygroups", s.getReplayGroups)
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("/api/replay", s.action(s.replay))
	mux.HandleFunc("/api/purge", s.action(s.purge))
	mux.HandleFunc("/api/group/reset", s.action(s.resetGroup))
	mux.HandleFunc("/api/group/delete", s.action(s.deleteGroup))
	mux.HandleFunc("/api/group/prune", s.action(s.pruneGroup))
	mux.HandleFunc("/api/group/pause", s.action(s.pauseGroup))
	mux.HandleFunc("/api/group/resume", s.action(s.resumeGroup))
	mux.HandleFunc("/api/topic/delete", s.action(s.deleteTopic))
	return securityHeaders(s.checkHost(s.require(mux)))
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	data := struct {
		CSRF, Target, Auth string
		ReadOnly           bool
	}{s.csrf, s.cfg.Target, s.cfg.Auth.String(), s.cfg.ReadOnly}
	if err := s.pages.ExecuteTemplate(w, "index.html", data); err != nil {
		s.log.Warn("cannot render the page", "err", err)
	}
}
