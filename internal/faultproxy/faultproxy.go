// Package faultproxy is a TCP proxy on 127.0.0.1 that tests put between
// Redis clients and a Redis server to cut connections, refuse new ones,
// swallow them, or lose the reply to one command after Redis ran it.
package faultproxy

import (
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// Mode is what a Proxy does with a new connection.
type Mode int

const (
	// Forward relays the connection to the target.
	Forward Mode = iota
	// Reject accepts the connection and closes it at once: a server that is
	// down behind a load balancer (the client sees EOF).
	Reject
	// Blackhole accepts the connection, reads and discards what the client
	// sends and never answers: a hung server or a lost network path.
	Blackhole
)

// Proxy relays TCP connections from a loopback port to a target. It can cut
// live connections (both sides closed at once, as when a NAT, load balancer
// or network failure drops them) and switch what it does with new ones.
// Its methods are safe for concurrent use.
type Proxy struct {
	ln net.Listener

	mu     sync.Mutex
	mode   Mode
	target string
	conns  map[*conn]struct{}
	cuts   int
	// cutAlls counts CutAll calls: a connection accepted before one and
	// tracked after it (its dial to the target was under way) is cut too.
	cutAlls int
	closed  bool

	armed atomic.Pointer[arming] // set by LoseReply until a command matches

	wg sync.WaitGroup
}

// conn is one client connection and, when forwarding, its connection to the
// target.
type conn struct {
	client, server net.Conn
	once           sync.Once

	// lose is the reply to drop, set by the command relay before it passes
	// the matched command on, so always before that reply can arrive.
	lose atomic.Pointer[lostReply]

	// busy counts the commands passed on whose whole reply has not yet been
	// passed back: the command relay adds 1 before it passes a command on,
	// the reply relay subtracts once the reply is written to the client.
	// Each relay adds keep at most once, when replies stop pairing with
	// commands; closing the connection sets closedMark. So busy is 0 only
	// while the connection is idle, and a command relay that gets a negative
	// sum passes nothing more on.
	busy atomic.Int64
}

// Values added to conn.busy; see there.
const (
	keep       = 1 << 40
	closedMark = -1 << 62
)

// arming is one LoseReply call.
type arming struct {
	match func(args []string) bool
	done  chan struct{}
}

// lostReply is the reply of the index-th command (from 1) of a connection.
type lostReply struct {
	index int64
	done  chan struct{}
}

func (c *conn) close() {
	c.once.Do(func() {
		c.busy.Store(closedMark)
		c.client.Close()
		if c.server != nil {
			c.server.Close()
		}
	})
}

// Start listens on a free loopback port and relays to target until Close.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, conns: map[*conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where clients connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget makes the connections accepted from now on go to addr; live
// ones keep their server, as after a failover or restart behind a stable
// address (a virtual IP, a DNS name).
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// SetMode changes what happens to new connections; live ones are kept.
// Default: Forward.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

// CutRandom closes one live connection chosen with rng, both sides; false
// when there is none.
func (p *Proxy) CutRandom(rng *rand.Rand) bool {
	p.mu.Lock()
	if len(p.conns) == 0 {
		p.mu.Unlock()
		return false
	}
	n := rng.IntN(len(p.conns))
	var victim *conn
	for c := range p.conns {
		if n == 0 {
			victim = c
			break
		}
		n--
	}
	p.cuts++
	p.mu.Unlock()
	victim.close()
	return true
}

// CutAll closes every live connection and returns how many there were.
func (p *Proxy) CutAll() int {
	p.mu.Lock()
	all := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		all = append(all, c)
	}
	p.cuts += len(all)
	p.cutAlls++
	p.mu.Unlock()
	for _, c := range all {
		c.close()
	}
	return len(all)
}

// CutIdle closes, both sides, every forwarded connection with no command in
// flight (each command passed on has had its whole reply passed back), as a
// NAT or load balancer drops idle connections, and returns how many it
// closed. Connections whose replies do not pair with commands (see
// LoseReply) are never idle. A command the proxy starts reading from a
// connection that CutIdle has picked is not passed on.
func (p *Proxy) CutIdle() int {
	p.mu.Lock()
	var idle []*conn
	for c := range p.conns {
		if c.server != nil && c.busy.CompareAndSwap(0, closedMark) {
			idle = append(idle, c)
		}
	}
	p.cuts += len(idle)
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	return len(idle)
}

// LoseReply arms the proxy: the next command, on any forwarded connection,
// for which match returns true is passed on to Redis, and once Redis's whole
// reply to it has arrived the proxy cuts that connection (both sides)
// instead of passing that reply on. Replies to earlier commands on the
// connection reach the client; the lost reply and anything after it do not.
// Commands the client wrote after the matched one (the rest of a pipeline)
// are still passed on if they reached the proxy before the cut, so Redis may
// have run them too.
//
// match gets the command's arguments, name first; it may be called from
// several connections at once. The returned channel is closed once the
// connection is cut; it stays open if the connection ends first, or if
// LoseReply is called again before a command matched, which replaces this
// arming. Cuts does not count this cut.
//
// Replies are paired with commands by counting them (RESP2 or RESP3; push
// messages are not replies), so connections that sent SUBSCRIBE and its
// kin, MONITOR, SYNC, PSYNC or CLIENT REPLY are never matched, nor are
// connections whose traffic is not RESP.
func (p *Proxy) LoseReply(match func(args []string) bool) <-chan struct{} {
	a := &arming{match: match, done: make(chan struct{})}
	p.armed.Store(a)
	return a.done
}

// Command returns a matcher for LoseReply that accepts the command name
// followed by the arguments sub, compared case-insensitively, e.g.
// Command("XADD") or Command("CLIENT", "UNBLOCK").
func Command(name string, sub ...string) func(args []string) bool {
	want := append([]string{name}, sub...)
	return func(args []string) bool {
		if len(args) < len(want) {
			return false
		}
		for i, w := range want {
			if !strings.EqualFold(args[i], w) {
				return false
			}
		}
		return true
	}
}

// Cuts returns how many connections CutRandom, CutAll and CutIdle have
// closed.
func (p *Proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// Close stops accepting, closes every connection and waits for every
// goroutine of the proxy. It is idempotent.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.CutAll()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode, target, cutAlls := p.mode, p.target, p.cutAlls
		p.mu.Unlock()
		switch mode {
		case Reject:
			client.Close()
		case Blackhole:
			c := &conn{client: client}
			p.track(c)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer p.untrack(c)
				_, _ = io.Copy(io.Discard, client)
			}()
		default:
			p.wg.Add(1)
			go p.forward(client, target, cutAlls)
		}
	}
}

func (p *Proxy) forward(client net.Conn, target string, cutAlls int) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", target)
	if err != nil {
		client.Close()
		return
	}
	c := &conn{client: client, server: server}
	p.track(c)
	defer p.untrack(c)
	p.mu.Lock()
	missed := p.cutAlls != cutAlls
	p.mu.Unlock()
	if missed {
		c.close()
		return
	}
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() {
		defer pipes.Done()
		p.relayCommands(c)
		c.close()
	}()
	go func() {
		defer pipes.Done()
		relayReplies(c)
		c.close()
	}()
	pipes.Wait()
}

// track records c as live; after Close, it closes c instead.
func (p *Proxy) track(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.close()
		return
	}
	p.conns[c] = struct{}{}
}

func (p *Proxy) untrack(c *conn) {
	c.close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
