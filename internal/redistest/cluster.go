package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster whose nodes are Servers, so each can be
// restarted, killed or frozen; a node keeps its identity in nodes.conf in
// its Dir and rejoins after Restart or StartAgain.
type Cluster struct {
	Nodes []*Server // masters first, as passed to redis-cli --cluster create; roles change on failover
}

// StartCluster starts masters*(1+replicasPerMaster) nodes, joins them with
// redis-cli (valkey-cli) --cluster create (which spreads the 16384 slots
// over the masters and assigns the replicas), and waits until the cluster
// is healthy (see WaitHealthy). Redis needs at least 3 masters.
func StartCluster(tb testing.TB, masters, replicasPerMaster int) *Cluster {
	tb.Helper()
	if masters < 3 || replicasPerMaster < 0 {
		tb.Fatalf("redistest: a Redis Cluster needs at least 3 masters and 0 or more replicas, got %d and %d", masters, replicasPerMaster)
	}
	c := &Cluster{}
	for range masters * (1 + replicasPerMaster) {
		// A short node timeout lets tests that kill or freeze a master see
		// a replica take over within seconds; validity factor 0 lets any
		// replica take over however long its link was down.
		n := newServer(tb, false, Options{Config: []string{
			"cluster-enabled yes",
			"cluster-config-file nodes.conf",
			"cluster-node-timeout 3000",
			"cluster-replica-validity-factor 0",
		}})
		n.start(tb, true)
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPerMaster), "--cluster-yes")
	if out, err := run(append([]string{c.Nodes[0].cli}, args...)...); err != nil {
		tb.Fatalf("redistest: %s %v: %v\n%s", c.Nodes[0].cli, args, err, out)
	}
	c.WaitHealthy(tb)
	return c
}

// WaitHealthy waits until every node reports cluster_state:ok with all
// 16384 slots served, knows all the other nodes with its cluster-bus link
// to each up (what carries PUBLISH to the other nodes), and every replica
// has its link to its master up. Call it after a failover or a restart before
// relying on the cluster again; it fails the test if any node is down.
func (c *Cluster) WaitHealthy(tb testing.TB) {
	tb.Helper()
	clients := make([]*redis.Client, len(c.Nodes))
	for i, n := range c.Nodes {
		clients[i] = redis.NewClient(probeOptions(n))
		defer clients[i].Close()
	}
	err := waitFor(func() error {
		for i, cl := range clients {
			if err := nodeHealthy(cl, len(c.Nodes)); err != nil {
				return fmt.Errorf("node %s: %w", c.Nodes[i].Addr(), err)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("redistest: cluster not healthy: %v", err)
	}
}

func nodeHealthy(c *redis.Client, nodes int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return err
	}
	for field, want := range map[string]string{
		"cluster_state":       "ok",
		"cluster_slots_ok":    "16384",
		"cluster_known_nodes": strconv.Itoa(nodes),
	} {
		if got := infoField(info, field); got != want {
			return fmt.Errorf("%s is %q, want %q", field, got, want)
		}
	}
	nodesList, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(nodesList), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && !strings.Contains(f[2], "myself") && f[7] != "connected" {
			return fmt.Errorf("cluster bus link to %s is %s", f[1], f[7])
		}
	}
	repl, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	if infoField(repl, "role") == "slave" && infoField(repl, "master_link_status") != "up" {
		return fmt.Errorf("replica link to master is %q", infoField(repl, "master_link_status"))
	}
	return nil
}

// Addrs returns the "127.0.0.1:port" of every node, in Nodes order.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Options returns fresh cluster client options with the same pool size and
// timeouts as Server.Options.
func (c *Cluster) Options() *redis.ClusterOptions {
	o := c.Nodes[0].options()
	return &redis.ClusterOptions{
		Addrs:                 c.Addrs(),
		PoolSize:              o.PoolSize,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		ContextTimeoutEnabled: o.ContextTimeoutEnabled,
	}
}

// Client returns a new cluster client, closed when the test ends.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cl := redis.NewClusterClient(c.Options())
	tb.Cleanup(func() { cl.Close() })
	return cl
}

// MasterFor returns the node that currently serves the slot of key, as the
// first reachable node sees it (CLUSTER KEYSLOT, CLUSTER SLOTS).
func (c *Cluster) MasterFor(tb testing.TB, key string) *Server {
	tb.Helper()
	var lastErr error
	for _, n := range c.Nodes {
		addr, err := slotOwner(n, key)
		if err != nil {
			lastErr = err
			continue
		}
		for _, m := range c.Nodes {
			if m.Addr() == addr {
				return m
			}
		}
		tb.Fatalf("redistest: slot of %q is served by %s, which is not a node of this cluster", key, addr)
	}
	tb.Fatalf("redistest: no node could tell who serves %q: %v", key, lastErr)
	return nil
}

// slotOwner asks n for the address of the master serving key's slot.
func slotOwner(n *Server, key string) (string, error) {
	cl := redis.NewClient(probeOptions(n))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	slot, err := cl.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	// CLUSTER SLOTS lists the current master of each range first, also
	// right after a failover, which is what the tests need to know.
	//lint:ignore SA1019 CLUSTER SLOTS is deprecated but served by every Redis 7.
	ranges, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, r := range ranges {
		if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr, nil
		}
	}
	return "", fmt.Errorf("%s: no master for slot %d", n.Addr(), slot)
}
