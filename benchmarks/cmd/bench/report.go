package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/matrix"
	"github.com/millrace/millrace/benchmarks/internal/report"
)

// Columns of the tables.
var (
	colMillrace  = report.Column{Key: harness.Millrace, Header: "Millrace"}
	colPeer      = report.Column{Key: harness.Peer, Header: "peer"}
	colRaw       = report.Column{Key: harness.Raw, Header: "raw"}
	colGoChannel = report.Column{Key: harness.GoChannel, Header: "GoChannel (Router ceiling)"}
	colDirect    = report.Column{Key: harness.MillraceDirect, Header: "Millrace, no Router"}
	colPlain     = report.Column{Key: harness.MillracePlain, Header: "Millrace PlainXAdd"}
	colWindow    = report.Column{Key: harness.MillraceIdempotent, Header: "Millrace Idempotency 10m"}
	// colDefault is Millrace in the tables that also have its other
	// configurations of publishing.
	colDefault = report.Column{Key: harness.Millrace, Header: "Millrace default (retry-safe)"}

	redisColumns   = []report.Column{colMillrace, colPeer, colRaw}
	publishColumns = []report.Column{colPlain, colDefault, colWindow, colPeer, colRaw}
	latencyColumns = []report.Column{colPlain, colDefault, colPeer, colRaw}
	serverColumns  = []report.Column{colPlain, colDefault, colWindow, colPeer, colRaw, colDirect}
	consumeColumns = []report.Column{colMillrace, colPeer, colRaw, colGoChannel, colDirect}
	allColumns     = []report.Column{colPlain, colDefault, colWindow, colPeer, colRaw, colGoChannel, colDirect}

	vsPeer = report.Ratio{Num: harness.Millrace, Den: harness.Peer, Header: "Millrace/peer"}
	vsRaw  = report.Ratio{Num: harness.Millrace, Den: harness.Raw, Header: "Millrace/raw"}
	// The configurations of publishing against PlainXAdd.
	defaultVsPlain = report.Ratio{Num: harness.Millrace, Den: harness.MillracePlain, Header: "default/plain"}
	windowVsPlain  = report.Ratio{Num: harness.MillraceIdempotent, Den: harness.MillracePlain, Header: "Idempotency/plain"}
	// Server CPU against raw go-redis's.
	defaultVsRaw = report.Ratio{Num: harness.Millrace, Den: harness.Raw, Header: "Millrace/raw"}
	windowVsRaw  = report.Ratio{Num: harness.MillraceIdempotent, Den: harness.Raw, Header: "Idempotency/raw"}
)

// Formats of the figures.
var (
	fmtRate   = report.Rate
	fmtMicros = report.Micros
	fmtMillis = report.Millis
	fmtMB     = report.MB
	fmtPerSec = report.PerSec
	fmtCount  = report.Count
)

// figures are every figure of a run.
type figures struct {
	publish, consume, cpu, serverCPU, latency, rss *report.Table
	idleConns, idlePool, idleCommands              *report.Table
	delay                                          *report.Distributions
	idleWindow                                     time.Duration // how long idle commands are counted
}

func newFigures(o options) *figures {
	return &figures{
		publish: &report.Table{
			Title: "Publish, msg/s (higher is better)", Format: fmtRate, Columns: publishColumns,
			Ratios: []report.Ratio{
				{Num: harness.Millrace, Den: harness.MillracePlain, Header: "default, % of plain", Percent: true},
				{Num: harness.MillraceIdempotent, Den: harness.MillracePlain, Header: "Idempotency, % of plain", Percent: true},
				{Num: harness.Peer, Den: harness.MillracePlain, Header: "peer/plain"},
				{Num: harness.Raw, Den: harness.MillracePlain, Header: "raw/plain"},
				vsPeer,
				{Num: harness.Millrace, Den: harness.Raw, Header: "Millrace, % of raw", Percent: true},
			},
		},
		consume: &report.Table{
			Title: "Consume, msg/s (higher is better)", Format: fmtRate, Columns: consumeColumns,
			Ratios: []report.Ratio{
				{Num: harness.Millrace, Den: harness.GoChannel, Header: "Millrace, % of GoChannel", Percent: true},
				vsPeer,
				{Num: harness.Millrace, Den: harness.Raw, Header: "Millrace, % of raw", Percent: true},
				{Num: harness.MillraceDirect, Den: harness.Raw, Header: "no Router, % of raw", Percent: true},
			},
		},
		cpu: &report.Table{
			Title: "Client CPU, µs/msg (lower is better)", Format: fmtMicros, Columns: allColumns,
			Ratios: []report.Ratio{defaultVsPlain, windowVsPlain, vsPeer},
		},
		serverCPU: &report.Table{
			Title: "Server CPU (redis-server), µs/msg (lower is better)", Format: fmtMicros, Columns: serverColumns,
			Ratios: []report.Ratio{defaultVsPlain, windowVsPlain, vsPeer, defaultVsRaw, windowVsRaw},
		},
		latency: &report.Table{
			Title: fmt.Sprintf("End-to-end latency at %d msg/s, ms (lower is better)", o.Rate), Format: fmtMillis, Columns: latencyColumns,
			Ratios: []report.Ratio{defaultVsPlain, vsPeer, vsRaw},
		},
		rss: &report.Table{
			Title:  fmt.Sprintf("Peak RSS draining a %d × %s backlog, MB (lower is better)", o.rssN, report.SizeLabel(o.rssSize)),
			Format: fmtMB, Columns: redisColumns, Ratios: []report.Ratio{vsPeer, vsRaw},
		},
		idleConns:    &report.Table{Title: "Idle: Redis connections held (connected_clients)", Format: fmtCount, Columns: redisColumns, Ratios: []report.Ratio{vsPeer}},
		idlePool:     &report.Table{Title: "Idle: client connections in use (PoolStats total − idle)", Format: fmtCount, Columns: redisColumns, Ratios: []report.Ratio{vsPeer}},
		idleCommands: &report.Table{Title: "Idle: Redis commands/s (lower is better)", Format: fmtPerSec, Columns: redisColumns, Ratios: []report.Ratio{vsPeer}},
		delay:        &report.Distributions{Title: "Millrace: lateness of delayed messages (handler time − due time), ms"},
		idleWindow:   o.idleDuration,
	}
}

// write prints the header, every table with samples, and the method notes.
func (r *figures) write(w io.Writer, m matrix.Machine, o options, h header) {
	fmt.Fprintf(w, "## Millrace vs watermill-redisstream vs raw go-redis\n\n")
	m.Write(w, h.started, h.args, "bench", "one redis-server on loopback, no persistence")
	for _, t := range []*report.Table{r.publish, r.consume, r.cpu, r.serverCPU, r.latency, r.rss, r.idleConns, r.idlePool, r.idleCommands} {
		t.Write(w)
	}
	r.delay.Write(w)
	writeTargets(w, r.targets())
	fmt.Fprintf(w, "Each cell is the median of %d run%s (idle: %d); implementations alternate run by run, in the order %s. ", o.Runs, report.Plural(o.Runs), o.idleRuns, strings.Join(o.Impls, ", "))
	fmt.Fprintf(w, "Messages: %d per throughput run, one random payload reused, ULID IDs, a fresh topic per run. ", o.N)
	fmt.Fprintf(w, "Publish: one shared publisher used by P goroutines, one message per Publish call (raw: pipelines of %d XADDs); Millrace in three configurations: default (retry-safe: one EVALSHA per topic and pipeline records the producer's sequence number with the XADDs), PlainXAdd (one plain XADD per message, never resent) and Idempotency{Window: 10m} (one script per topic and pipeline, a key per message UUID); elsewhere Millrace is the default. Server CPU: INFO cpu (used_cpu_user + used_cpu_sys) of redis-server before and after each publish and consume run, per message. ", o.rawBatch)
	fmt.Fprintf(w, "Consume: a pre-filled stream drained by S subscribers of one group through a Router whose handler acks, timed from Router start to the last message handled (raw: XREADGROUP COUNT 100 + one XACK per batch; GoChannel: Watermill's persistent in-memory GoChannel, pre-filled, through the same Router and handler, one subscriber only since it has no groups; no Router: Millrace's subscription channels read directly, each message acked). ")
	fmt.Fprintf(w, "Busy topics: the same backlog spread over %d topics, one subscriber reading them all (raw: one XREADGROUP over every stream). ", o.busyTopics)
	fmt.Fprintf(w, "CPU: getrusage user+sys of the benchmark process over the same span, per message. ")
	fmt.Fprintf(w, "Latency: 16 B messages at a fixed rate for %s, publish time in metadata, measured in the handler. ", o.LatencyDuration)
	fmt.Fprintf(w, "Peak RSS: a child process draining the backlog with one subscriber. ")
	fmt.Fprintf(w, "Idle: after one message per topic and %s of quiet, INFO over %s: commands from total_commands_processed (our first INFO subtracted; per command from commandstats), connections as connected_clients beyond those before the subscribers started, and the subscribers' client's PoolStats, whose pool holds 2 × topics + 64 connections at most (Millrace: go-redis's default, 10 per CPU; raw: XREADGROUP BLOCK 1s over every stream). Millrace's looks slower than the window are not in it: the delayed-message movers' safety looks (a script and its ZRANGE, every minute per topic or every n × 2 s with n topics on the client: about 1 command/s in all), per topic the claimer's look at a quiet group every 5–15 ClaimMinIdle (one XPENDING) and the pruner's every 15 minutes (a script, about 2 commands); over 1,000 topics about 1, 3.3 and 2.2 commands/s, all phased from each subscription's start (-idle-duration 65s counts them). ", o.idleSettle, o.idleDuration)
	fmt.Fprintf(w, "Delayed: %d topics read by one Subscriber each get one message delayed with delay.For, published at random times over %s, after %s without traffic (idle) or amid %d plain msg/s per topic (busy); samples pooled over the runs.\n", o.delayTopics, o.delaySpread, o.delayIdle, o.delayBusyRate)
	fmt.Fprintf(w, "Failed runs: %d.\n", h.failures)
}

// header is what the report says about the run itself.
type header struct {
	started  time.Time
	args     string
	failures int
}
