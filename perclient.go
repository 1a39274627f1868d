package millrace

import (
	"sync"

	"github.com/redis/go-redis/v9"
)

// singleNode reports whether client talks to one node (standalone or
// Sentinel), where one command may use keys of any topic; on Cluster (and
// a Ring) keys of one command must share a slot.
func singleNode(client redis.UniversalClient) bool {
	_, ok := client.(*redis.Client)
	return ok
}

// perClient holds one V per Redis client, shared by every Subscriber over
// that client: made by the first acquire, stopped by the last release.
type perClient[V any] struct {
	mu sync.Mutex
	m  map[redis.UniversalClient]*counted[V]
}

type counted[V any] struct {
	v    V
	refs int
}

// acquire returns the client's V, made with newV at the first call. Every
// acquire is paired with a release.
func (p *perClient[V]) acquire(client redis.UniversalClient, newV func() V) V {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.m[client]
	if c == nil {
		if p.m == nil {
			p.m = map[redis.UniversalClient]*counted[V]{}
		}
		c = &counted[V]{v: newV()}
		p.m[client] = c
	}
	c.refs++
	return c.v
}

// release drops one reference to the client's V and, after the last,
// calls stop (outside the lock, so stop may wait).
func (p *perClient[V]) release(client redis.UniversalClient, stop func(V)) {
	p.mu.Lock()
	c := p.m[client]
	c.refs--
	last := c.refs == 0
	if last {
		delete(p.m, client)
	}
	p.mu.Unlock()
	if last {
		stop(c.v)
	}
}
