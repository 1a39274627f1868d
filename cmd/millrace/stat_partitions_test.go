package main

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/fixture"
)

var volatileExpiry = regexp.MustCompile(`"expires_in_ms": \d+`)

// stat shows a partitioned topic per partition, with owners and members:
// found when the topic's own stream does not exist, or named with
// --partitions.
func TestStatPartitioned(t *testing.T) {
	e := newEnv(t)
	fixture.Partitioned(t, e.client)
	golden(t, "stat-partitioned", normalize(e.ok("stat", "shipments"), false))
	golden(t, "stat-partitioned.json", volatileExpiry.ReplaceAllString(
		normalize(e.ok("stat", "shipments", "--json"), false), `"expires_in_ms": "<volatile>"`))
	assert.Contains(t, e.ok("stat", "shipments", "--partitions", "2"), "Partitions    2 ({shipments#0} to {shipments#1})")

	// A topic with a stream of its own is shown as it is, unless asked.
	assert.Contains(t, e.ok("stat", "orders"), "Stream        10 entries")
	r := e.run("stat", "orders", "--partitions", "2")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Partitions    2 ({orders#0} to {orders#1})")
	assert.Contains(t, e.ok("stat", "refunds"), "none (the topic's stream does not exist)", "no partitions either")
}
