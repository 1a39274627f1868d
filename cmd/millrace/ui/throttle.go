package ui

import (
	"log/slog"
	"math"
	"net"
	"sync"
	"time"
)

// Sign-in throttling: each client address may send signinBurst wrong
// credentials at once, then one per signinRefill. Past that, every request
// of the address that carries credentials is refused with 429 before they
// are checked, so that guessing gets nowhere; a request without
// credentials still gets the sign-in form.
const (
	signinBurst  = 5
	signinRefill = 10 * time.Second
	// signinLogEvery is how often the wrong attempts of a throttled
	// address are logged, counted.
	signinLogEvery = time.Minute
	// signinClients caps the addresses tracked.
	signinClients = 10000
)

// signinGuard counts wrong credentials per client address (the IP of the
// connection: behind a proxy, every client shares the proxy's).
type signinGuard struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*signinClient
}

type signinClient struct {
	allowance float64 // wrong attempts left now
	at        time.Time
	wrong     int // wrong or throttled attempts not logged yet
	loggedAt  time.Time
}

func newSigninGuard(log *slog.Logger) *signinGuard {
	return &signinGuard{log: log, now: time.Now, clients: map[string]*signinClient{}}
}

func clientIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// client returns the state of ip with its allowance refilled to now.
func (g *signinGuard) client(ip string, now time.Time) *signinClient {
	c, ok := g.clients[ip]
	if !ok {
		if len(g.clients) >= signinClients {
			g.sweep(now)
		}
		c = &signinClient{allowance: signinBurst, at: now}
		g.clients[ip] = c
		return c
	}
	c.allowance = math.Min(signinBurst, c.allowance+now.Sub(c.at).Seconds()/signinRefill.Seconds())
	c.at = now
	return c
}

// sweep forgets the addresses whose allowance is whole again, or any one
// when none is.
func (g *signinGuard) sweep(now time.Time) {
	for ip, c := range g.clients {
		if c.allowance+now.Sub(c.at).Seconds()/signinRefill.Seconds() >= signinBurst && c.wrong == 0 {
			delete(g.clients, ip)
		}
	}
	for ip := range g.clients {
		if len(g.clients) < signinClients {
			return
		}
		delete(g.clients, ip)
	}
}

// allow reports whether credentials of remote may be checked now, and
// else how long until they may.
func (g *signinGuard) allow(remote, path string) (time.Duration, bool) {
	ip := clientIP(remote)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.clients[ip]; !ok {
		return 0, true
	}
	c := g.client(ip, now)
	if c.allowance >= 1 {
		return 0, true
	}
	c.wrong++
	g.logThrottled(ip, c, now, path)
	return time.Duration((1 - c.allowance) * float64(signinRefill)), false
}

// wrong counts wrong credentials of remote: logged each until the address
// is throttled, then counted once a minute.
func (g *signinGuard) wrong(remote, path, what string) {
	ip := clientIP(remote)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.client(ip, now)
	c.allowance = math.Max(c.allowance-1, 0)
	if c.allowance >= 1 {
		attrs := []any{"remote", remote, "path", path}
		if c.wrong > 0 { // throttled attempts not logged yet
			attrs = append(attrs, "refused_before", c.wrong)
			c.wrong = 0
		}
		g.log.Warn("sign-in refused: wrong "+what, attrs...)
		return
	}
	c.wrong++
	g.logThrottled(ip, c, now, path)
}

func (g *signinGuard) logThrottled(ip string, c *signinClient, now time.Time, path string) {
	if !c.loggedAt.IsZero() && now.Sub(c.loggedAt) < signinLogEvery {
		return
	}
	g.log.Warn("sign-in throttled: too many wrong credentials from one address", "client", ip, "path", path,
		"refused_since_last_line", c.wrong, "allowed", "one attempt per "+signinRefill.String())
	c.wrong, c.loggedAt = 0, now
}

// signedIn forgets the wrong attempts of remote.
func (g *signinGuard) signedIn(remote string) {
	g.mu.Lock()
	delete(g.clients, clientIP(remote))
	g.mu.Unlock()
}
