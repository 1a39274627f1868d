package millrace_test

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// proxyMode is what a faultProxy does with a new connection.
type proxyMode int

const (
	// proxyForward relays the connection to the target.
	proxyForward proxyMode = iota
	// proxyReject accepts the connection and closes it at once: a server
	// that is down behind a load balancer (the client sees EOF).
	proxyReject
	// proxyBlackhole accepts the connection, reads and discards what the
	// client sends and never answers: a hung server or a lost network path.
	proxyBlackhole
)

// faultProxy is a TCP proxy on 127.0.0.1 between Redis clients and a Redis
// server. It can cut live connections (both sides closed at once, as when a
// NAT, load balancer or network failure drops them) and switch what it does
// with new ones. Its goroutines all end when the test does.
type faultProxy struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	mode   proxyMode
	conns  map[*proxyConn]struct{}
	cuts   int
	closed bool

	wg sync.WaitGroup
}

// proxyConn is one client connection and, when forwarding, its connection
// to the target.
type proxyConn struct {
	client, server net.Conn
	once           sync.Once
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		c.client.Close()
		if c.server != nil {
			c.server.Close()
		}
	})
}

// startFaultProxy listens on a free loopback port and relays to target
// until the test ends.
func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &faultProxy{target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is where clients connect.
func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

// setMode changes what happens to new connections; live ones are kept.
func (p *faultProxy) setMode(m proxyMode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

// cutRandom closes one live connection chosen at random, both sides; false
// when there is none.
func (p *faultProxy) cutRandom(rng *rand.Rand) bool {
	p.mu.Lock()
	if len(p.conns) == 0 {
		p.mu.Unlock()
		return false
	}
	n := rng.IntN(len(p.conns))
	var victim *proxyConn
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

// cutAll closes every live connection.
func (p *faultProxy) cutAll() {
	p.mu.Lock()
	all := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		all = append(all, c)
	}
	p.cuts += len(all)
	p.mu.Unlock()
	for _, c := range all {
		c.close()
	}
}

func (p *faultProxy) cutCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// close stops accepting, closes every connection and waits for every
// goroutine of the proxy.
func (p *faultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cutAll()
	p.wg.Wait()
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		switch mode {
		case proxyReject:
			conn.Close()
		case proxyBlackhole:
			c := &proxyConn{client: conn}
			p.track(c)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer p.untrack(c)
				_, _ = io.Copy(io.Discard, conn)
			}()
		default:
			p.wg.Add(1)
			go p.forward(conn)
		}
	}
}

func (p *faultProxy) forward(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	c := &proxyConn{client: client, server: server}
	p.track(c)
	defer p.untrack(c)
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() {
		defer pipes.Done()
		_, _ = io.Copy(server, client)
		c.close()
	}()
	go func() {
		defer pipes.Done()
		_, _ = io.Copy(client, server)
		c.close()
	}()
	pipes.Wait()
}

// track records c as live; after close, it closes c instead.
func (p *faultProxy) track(c *proxyConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.close()
		return
	}
	p.conns[c] = struct{}{}
}

func (p *faultProxy) untrack(c *proxyConn) {
	c.close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
