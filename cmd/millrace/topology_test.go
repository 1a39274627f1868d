package main

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/fixture"
	"github.com/millrace/millrace/internal/redistest"
)

// The commands work on Redis Cluster through a redis-cluster:// URL: topics
// are found on every master, a topic and its dead letters share a slot, and
// the scripts (stats, replay, prune) run on the right node.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster")
	}
	cl := redistest.StartCluster(t, 3, 0)
	c := cl.Client(t)
	fixture.Topology(t, c)
	url := "redis-cluster://" + strings.Join(cl.Addrs(), ",")
	run := func(argv ...string) result {
		t.Helper()
		r := runCLI(context.Background(), "", append([]string{"--url", url}, argv...)...)
		require.Equal(t, 0, r.code, "millrace %v\n%s%s", argv, r.stdout, r.stderr)
		return r
	}
	golden(t, "cluster-topics", run("topics").stdout)
	golden(t, "cluster-stat", run("stat", "orders").stdout)
	assert.Contains(t, run("doctor").stdout, "cluster      OK      cluster_state ok; 3 topic(s), each with its dead-letter stream in its slot")
	assert.Contains(t, run("dlq", "replay", "orders").stdout, "Replayed 3 dead letter(s) of topic orders.")
	assert.Contains(t, run("consumers", "prune", "orders", "billing", "--idle", "1ms").stdout, "Kept worker-dead")
	n, err := c.XLen(context.Background(), "orders").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 13, n)

	// A dead-letter stream of another layout is flagged.
	require.NoError(t, c.XAdd(context.Background(), &redis.XAddArgs{Stream: "orders:dlq", Values: []interface{}{"f", "v"}}).Err())
	r := runCLI(context.Background(), "", "--url", url, "doctor")
	assert.Contains(t, r.stdout, "outside their topic's slot: orders:dlq")
}

// A redis-sentinel:// URL reaches the master the sentinels name.
func TestSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis Sentinel")
	}
	st := redistest.StartSentinel(t, 0, 1)
	c := st.Client(t)
	fixture.Topology(t, c)
	url := "redis-sentinel://" + strings.Join(st.SentinelAddrs(), ",") + "/" + st.MasterName + "/0"
	r := runCLI(context.Background(), "", "--url", url, "stat", "orders")
	require.Equal(t, 0, r.code, r.stderr)
	golden(t, "sentinel-stat", r.stdout)
}
