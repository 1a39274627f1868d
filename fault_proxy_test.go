package millrace_test

import (
	"math/rand/v2"
	"testing"

	"github.com/millrace/millrace/internal/faultproxy"
)

// proxyMode is what a faultProxy does with a new connection.
type proxyMode = faultproxy.Mode

const (
	proxyForward   = faultproxy.Forward
	proxyReject    = faultproxy.Reject
	proxyBlackhole = faultproxy.Blackhole
)

// faultProxy is a TCP proxy on 127.0.0.1 between Redis clients and a Redis
// server (internal/faultproxy). Its goroutines all end when the test does.
type faultProxy struct{ *faultproxy.Proxy }

// startFaultProxy listens on a free loopback port and relays to target
// until the test ends.
func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	t.Cleanup(p.Close)
	return &faultProxy{p}
}

func (p *faultProxy) setMode(m proxyMode)           { p.SetMode(m) }
func (p *faultProxy) cutRandom(rng *rand.Rand) bool { return p.CutRandom(rng) }
func (p *faultProxy) cutCount() int                 { return p.Cuts() }
