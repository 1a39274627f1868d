package chaos

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/faultproxy"
	"github.com/millrace/millrace/internal/redistest"
)

// endpoints is how a process of the run reaches Redis: through the
// sentinels, and to each Redis server through its fault proxy.
type endpoints struct {
	Sentinels  []string
	MasterName string
	// Proxies maps a Redis server's address, as the sentinels announce it,
	// to the address of its proxy.
	Proxies map[string]string
}

// options returns failover client options whose connections to Redis
// servers go through their proxies; connections to sentinels go direct.
func (e endpoints) options() *redis.FailoverOptions {
	proxies := e.Proxies
	return &redis.FailoverOptions{
		MasterName:    e.MasterName,
		SentinelAddrs: e.Sentinels,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if p, ok := proxies[addr]; ok {
				addr = p
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		PoolSize:              20,
		DialTimeout:           time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		ContextTimeoutEnabled: true,
	}
}

// topology is the Redis side of a run: a master, a replica, three sentinels
// and a proxy in front of each Redis server.
type topology struct {
	st      *redistest.Sentinel
	proxies map[string]*faultproxy.Proxy // by server address
	ep      endpoints
}

func startTopology(tb testing.TB) *topology {
	tb.Helper()
	st := redistest.StartSentinel(tb, 1, 3)
	tp := &topology{st: st, proxies: map[string]*faultproxy.Proxy{}}
	tp.ep = endpoints{Sentinels: st.SentinelAddrs(), MasterName: st.MasterName, Proxies: map[string]string{}}
	for _, s := range append([]*redistest.Server{st.Master}, st.Replicas...) {
		p, err := faultproxy.Start(s.Addr())
		if err != nil {
			tb.Fatalf("chaos: proxy for %s: %v", s.Addr(), err)
		}
		tb.Cleanup(p.Close)
		tp.proxies[s.Addr()] = p
		tp.ep.Proxies[s.Addr()] = p.Addr()
	}
	return tp
}

// masterProxy is the proxy in front of the current master.
func (tp *topology) masterProxy() *faultproxy.Proxy { return tp.proxies[tp.st.Master.Addr()] }

// announcedMaster asks one sentinel which master it announces; "" if it
// does not answer.
func (tp *topology) announcedMaster(i int) string {
	sc := redis.NewSentinelClient(&redis.Options{
		Addr: tp.ep.Sentinels[i], MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
	})
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	hp, err := sc.GetMasterAddrByName(ctx, tp.ep.MasterName).Result()
	if err != nil || len(hp) != 2 {
		return ""
	}
	return net.JoinHostPort(hp[0], hp[1])
}

// settled reports whether every sentinel announces st.Master.
func (tp *topology) settled() bool {
	for i := range tp.ep.Sentinels {
		if tp.announcedMaster(i) != tp.st.Master.Addr() {
			return false
		}
	}
	return true
}
