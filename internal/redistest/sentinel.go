package redistest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel is a master with replicas, monitored by redis-sentinel processes
// (valkey-sentinel with REDISTEST_SERVER=valkey) under the name MasterName.
// After Failover, Master and Replicas describe the new roles.
type Sentinel struct {
	Master     *Server
	Replicas   []*Server
	Sentinels  []*Server
	MasterName string
}

// StartSentinel starts a master, replicas replicating it (replicaof) and
// sentinels monitoring it with quorum 2 (1 with a single sentinel),
// down-after-milliseconds 1000 and failover-timeout 5000. It returns once
// every replica is in sync and every sentinel knows all replicas and all
// other sentinels, so a failover can start at once.
func StartSentinel(tb testing.TB, replicas, sentinels int) *Sentinel {
	tb.Helper()
	if sentinels < 1 {
		tb.Fatalf("redistest: StartSentinel needs at least 1 sentinel, got %d", sentinels)
	}
	st := &Sentinel{Master: Start(tb, Options{}), MasterName: "mymaster"}
	masterPort := strings.TrimPrefix(st.Master.Addr(), "127.0.0.1:")
	for range replicas {
		st.Replicas = append(st.Replicas, Start(tb, Options{Config: []string{"replicaof 127.0.0.1 " + masterPort}}))
	}
	st.waitReplicasSynced(tb)
	for range sentinels {
		s := newServer(tb, true, Options{Config: []string{
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %s %d", st.MasterName, masterPort, min(2, sentinels)),
			"sentinel down-after-milliseconds " + st.MasterName + " 1000",
			"sentinel failover-timeout " + st.MasterName + " 5000",
		}})
		s.start(tb, false)
		st.Sentinels = append(st.Sentinels, s)
	}
	st.waitSentinelsAgree(tb)
	return st
}

// SentinelAddrs returns the "127.0.0.1:port" of every sentinel.
func (st *Sentinel) SentinelAddrs() []string {
	addrs := make([]string, len(st.Sentinels))
	for i, s := range st.Sentinels {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Options returns fresh failover client options with the same pool size and
// timeouts as Server.Options.
func (st *Sentinel) Options() *redis.FailoverOptions {
	o := st.Master.options()
	return &redis.FailoverOptions{
		MasterName:            st.MasterName,
		SentinelAddrs:         st.SentinelAddrs(),
		PoolSize:              o.PoolSize,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		ContextTimeoutEnabled: o.ContextTimeoutEnabled,
	}
}

// Client returns a new failover client (redis.NewFailoverClient) that follows
// the master the sentinels announce, closed when the test ends.
func (st *Sentinel) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewFailoverClient(st.Options())
	tb.Cleanup(func() { c.Close() })
	return c
}

// CurrentMaster returns the master address that the first reachable sentinel
// gives for MasterName (SENTINEL get-master-addr-by-name).
func (st *Sentinel) CurrentMaster(tb testing.TB) string {
	tb.Helper()
	var lastErr error
	for _, s := range st.Sentinels {
		addr, err := masterAddr(s, st.MasterName)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	tb.Fatalf("redistest: no sentinel knows the master of %s: %v", st.MasterName, lastErr)
	return ""
}

// Failover forces a failover with SENTINEL FAILOVER and waits until every
// sentinel announces a new master, that master accepts writes, and every
// other running server, the old master included, replicates it with its
// link up. Sentinel itself turns a reachable old master (or one thawed after
// an earlier Failover) into a replica only about ten seconds later; Failover
// does it at once with REPLICAOF, as Sentinel will, so that no client keeps
// writing to a stale master meanwhile. Killed or frozen servers are left as
// they are.
func (st *Sentinel) Failover(tb testing.TB) {
	tb.Helper()
	old := st.CurrentMaster(tb)
	sc := redis.NewSentinelClient(probeOptions(st.Sentinels[0]))
	defer sc.Close()
	// SENTINEL FAILOVER is refused (NOGOODSLAVE, INPROG) until the sentinel
	// has fresh INFO from a replica and no other failover runs.
	err := waitFor(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := sc.Failover(ctx, st.MasterName).Err()
		if err != nil && !redis.HasErrorPrefix(err, "NOGOODSLAVE") && !redis.HasErrorPrefix(err, "INPROG") {
			return stopWaiting{err}
		}
		return err
	})
	if err != nil {
		tb.Fatalf("redistest: SENTINEL FAILOVER %s: %v", st.MasterName, err)
	}
	st.AwaitFailover(tb, old)
}

// AwaitFailover waits until every sentinel announces a master other than
// old, after a failover that the sentinels started on their own (the master
// at old was killed, or frozen for longer than down-after-milliseconds) or
// that SENTINEL FAILOVER started, and then sets up the roles as Failover
// does: Master is the new master, old is among Replicas, and every running
// server replicates the new master. A killed or frozen old master is left as
// it is; Rejoin brings it back.
func (st *Sentinel) AwaitFailover(tb testing.TB, old string) {
	tb.Helper()
	var newAddr string
	err := waitFor(func() error {
		newAddr = ""
		for _, s := range st.Sentinels {
			addr, err := masterAddr(s, st.MasterName)
			if err != nil {
				return err
			}
			if addr == old {
				return fmt.Errorf("sentinel %s still announces %s", s.Addr(), old)
			}
			if newAddr != "" && addr != newAddr {
				return fmt.Errorf("sentinels disagree: %s and %s", newAddr, addr)
			}
			newAddr = addr
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("redistest: failover of %s: %v", st.MasterName, err)
	}
	st.setMaster(tb, newAddr)
	st.demoteStaleMasters(tb)
	st.waitReplicasSynced(tb)
	st.waitSentinelsAgree(tb)
}

// Rejoin brings s, a server of the setup, back into it: it starts s
// again if it was killed (from its AOF, as a master at first), makes it a
// replica of Master if it acts as a master (an old master killed or frozen
// during a failover), and waits until it is in sync and every sentinel sees
// it as a healthy replica.
func (st *Sentinel) Rejoin(tb testing.TB, s *Server) {
	tb.Helper()
	if s.Pid() == 0 {
		s.StartAgain(tb)
	}
	st.demoteStaleMasters(tb)
	st.waitReplicasSynced(tb)
	st.waitSentinelsAgree(tb)
}

// setMaster makes the server at addr st.Master, and the others Replicas, and
// waits until it accepts writes.
func (st *Sentinel) setMaster(tb testing.TB, addr string) {
	tb.Helper()
	all := append([]*Server{st.Master}, st.Replicas...)
	st.Master, st.Replicas = nil, nil
	for _, s := range all {
		if s.Addr() == addr {
			st.Master = s
		} else {
			st.Replicas = append(st.Replicas, s)
		}
	}
	if st.Master == nil {
		tb.Fatalf("redistest: sentinels announce %s, which is not a server of this setup", addr)
	}
	c := redis.NewClient(probeOptions(st.Master))
	defer c.Close()
	err := waitFor(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		// DEL is a write command, refused with READONLY by a replica, but
		// deleting a key that does not exist leaves no trace in the data.
		return c.Del(ctx, "redistest:no-such-key").Err()
	})
	if err != nil {
		tb.Fatalf("redistest: new master %s does not accept writes: %v", addr, err)
	}
}

// demoteStaleMasters makes every running server of Replicas that still
// acts as a master, such as the old master, a replica of st.Master.
func (st *Sentinel) demoteStaleMasters(tb testing.TB) {
	tb.Helper()
	host, port, _ := net.SplitHostPort(st.Master.Addr())
	for _, s := range st.Replicas {
		if !s.running() {
			continue
		}
		c := redis.NewClient(probeOptions(s))
		defer c.Close()
		ctx := context.Background()
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && infoField(info, "role") == "master" {
			err = c.ReplicaOf(ctx, host, port).Err()
		}
		if err != nil {
			tb.Fatalf("redistest: demote %s: %v", s.Addr(), err)
		}
	}
}

// waitReplicasSynced waits until every running (not killed, not frozen)
// replica replicates st.Master with its link up.
func (st *Sentinel) waitReplicasSynced(tb testing.TB) {
	tb.Helper()
	masterPort := strings.TrimPrefix(st.Master.Addr(), "127.0.0.1:")
	for _, r := range st.Replicas {
		if !r.running() {
			continue
		}
		c := redis.NewClient(probeOptions(r))
		defer c.Close()
		err := waitFor(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			info, err := c.Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			if infoField(info, "master_port") != masterPort || infoField(info, "master_link_status") != "up" {
				return fmt.Errorf("role %s, master_port %s, link %s",
					infoField(info, "role"), infoField(info, "master_port"), infoField(info, "master_link_status"))
			}
			return nil
		})
		if err != nil {
			r.fatalf(tb, "replica %s not in sync with %s: %v", r.Addr(), st.Master.Addr(), err)
		}
	}
}

// waitSentinelsAgree waits until every sentinel announces st.Master, sees
// every running replica as reachable and not down, and knows every other
// sentinel.
func (st *Sentinel) waitSentinelsAgree(tb testing.TB) {
	tb.Helper()
	running := 0
	for _, r := range st.Replicas {
		if r.running() {
			running++
		}
	}
	for _, s := range st.Sentinels {
		sc := redis.NewSentinelClient(probeOptions(s))
		defer sc.Close()
		err := waitFor(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			addr, err := masterAddr(s, st.MasterName)
			if err != nil {
				return err
			}
			if addr != st.Master.Addr() {
				return fmt.Errorf("announces master %s, want %s", addr, st.Master.Addr())
			}
			replicas, err := sc.Replicas(ctx, st.MasterName).Result()
			if err != nil {
				return err
			}
			healthy := 0
			for _, r := range replicas {
				// Not master-link-status: a sentinel refreshes it only
				// every 10 s; waitReplicasSynced asks the replicas.
				if !strings.Contains(r["flags"], "down") && !strings.Contains(r["flags"], "disconnected") {
					healthy++
				}
			}
			if healthy != running {
				return fmt.Errorf("sees %d healthy replicas, want %d: %v", healthy, running, replicas)
			}
			others, err := sc.Sentinels(ctx, st.MasterName).Result()
			if err != nil {
				return err
			}
			if len(others) != len(st.Sentinels)-1 {
				return fmt.Errorf("knows %d other sentinels, want %d", len(others), len(st.Sentinels)-1)
			}
			return nil
		})
		if err != nil {
			s.fatalf(tb, "sentinel %s: %v", s.Addr(), err)
		}
	}
}

// masterAddr asks sentinel s for the address of the master called name.
func masterAddr(s *Server, name string) (string, error) {
	sc := redis.NewSentinelClient(probeOptions(s))
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	hp, err := sc.GetMasterAddrByName(ctx, name).Result()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("SENTINEL get-master-addr-by-name %s: %v", name, hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}
