package main

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/matrix"
	"github.com/millrace/millrace/benchmarks/internal/report"
)

// Rows of the broker table.
const (
	rowStartUp = "start-up, ms"
	rowRSSIdle = "RSS idle, MB"
	rowCPUIdle = "CPU idle, no client, ms/s"
)

// Columns and ratios of the tables.
var (
	implColumns = []report.Column{
		{Key: harness.Millrace, Header: "Millrace on Redis (AOF everysec)"},
		{Key: harness.AMQPDefault, Header: "AMQP, NewDurableQueueConfig"},
		{Key: harness.AMQPTuned, Header: "AMQP, tuned"},
	}
	implRatios = []report.Ratio{
		{Num: harness.Millrace, Den: harness.AMQPDefault, Header: "Millrace/AMQP defaults"},
		{Num: harness.Millrace, Den: harness.AMQPTuned, Header: "Millrace/AMQP tuned"},
	}
)

// figures are every figure of a run.
type figures struct {
	publish, consume, latency, clientCPU, brokerCPU, idle *report.Table
	broker                                                *report.Table
	rowBacklog                                            string
}

func newFigures(o options) *figures {
	table := func(title string, format func(float64) string) *report.Table {
		return &report.Table{Title: title, Format: format, Columns: implColumns, Ratios: implRatios}
	}
	return &figures{
		publish:   table("Publish, msg/s (higher is better)", report.Rate),
		consume:   table("Consume through a Router, msg/s (higher is better)", report.Rate),
		latency:   table(fmt.Sprintf("End-to-end latency at %d msg/s, ms (lower is better)", o.Rate), report.Millis),
		clientCPU: table("Client CPU, µs/msg (lower is better)", report.Micros),
		brokerCPU: table("Broker CPU, µs/msg (lower is better)", report.Micros),
		idle:      table("One idle subscription, CPU (lower is better)", report.Millis),
		broker: &report.Table{
			Title: "Broker (lower is better)", Format: report.Tenths,
			Columns: []report.Column{{Key: brokerRedis, Header: "Redis"}, {Key: brokerRabbitMQ, Header: "RabbitMQ"}},
			Ratios:  []report.Ratio{{Num: brokerRabbitMQ, Den: brokerRedis, Header: "RabbitMQ/Redis"}},
		},
		rowBacklog: fmt.Sprintf("RSS holding %s × %s, MB", report.GroupThousands(int64(o.backlogN)), report.SizeLabel(o.backlogSize)),
	}
}

// header is what the report says about the run itself.
type header struct {
	started  time.Time
	args     string
	rabbitmq string // version, "" without RabbitMQ
	failures int
}

// write prints the header, every table with samples, and the method notes.
func (r *figures) write(w io.Writer, m matrix.Machine, o options, h header) {
	fmt.Fprintf(w, "## Millrace on Redis vs Watermill's AMQP adapter on RabbitMQ\n\n")
	servers := "one redis-server on loopback, appendonly yes, appendfsync everysec"
	if h.rabbitmq != "" {
		servers += "; RabbitMQ " + h.rabbitmq + ", one node on loopback, no plugins, default configuration"
	}
	m.Write(w, h.started, h.args, "brokers", servers)
	for _, t := range []*report.Table{r.publish, r.consume, r.latency, r.clientCPU, r.brokerCPU, r.idle, r.broker} {
		t.Write(w)
	}
	fmt.Fprintf(w, "Each cell is the median of %d run%s (idle subscription: 1; broker rows: one measurement, start-up over %d starts); implementations alternate run by run. ", o.Runs, report.Plural(o.Runs), o.startups)
	fmt.Fprintf(w, "Messages: %d per throughput run, one random payload reused, ULID IDs, a fresh topic (stream, or durable queue) per run. ", o.N)
	fmt.Fprintf(w, "Publish: one shared publisher used by P goroutines, one message per Publish call. ")
	fmt.Fprintf(w, "Consume: a pre-filled backlog drained through a Router whose handler acks, by S subscribers of one consumer group (AMQP: S competing consumers of the topic's queue). ")
	fmt.Fprintf(w, "AMQP defaults: NewDurableQueueConfig (a channel opened per Publish, no publisher confirms, prefetch 1); tuned: the same with a pool of 64 channels, publisher confirms and prefetch 100. ")
	fmt.Fprintf(w, "Client CPU: getrusage of this process; broker CPU and RSS: /proc of the broker's processes (Redis: redis-server; RabbitMQ: the rabbitmq-server script, beam.smp and its helpers, and epmd). ")
	fmt.Fprintf(w, "Start-up: from starting the process to the first answer (Redis: PING; RabbitMQ: a completed AMQP handshake; epmd, started before it, excluded). ")
	fmt.Fprintf(w, "Idle: after %s of quiet, CPU over %s. Backlog: %d × %s messages published with confirms (Redis: pipelined XADDs of Millrace's entries), RSS after %s.\n", o.settle, o.window, o.backlogN, report.SizeLabel(o.backlogSize), o.settle)
	fmt.Fprintf(w, "Failed runs: %d.\n", h.failures)
}

// chart colours of Millrace and the two AMQP configurations.
var chartSeries = []report.Series{
	{Name: "Millrace on Redis (AOF everysec)", Color: "#1f77b4"},
	{Name: "Watermill AMQP, NewDurableQueueConfig", Color: "#d62728"},
	{Name: "Watermill AMQP, tuned", Color: "#ff9896"},
}

// writeSVG draws the throughput, latency and broker figures.
func (r *figures) writeSVG(path string, m matrix.Machine, h header) error {
	impls := []string{harness.Millrace, harness.AMQPDefault, harness.AMQPTuned}
	groups := func(t *report.Table, prefix string, format func(float64) string) []report.Group {
		return report.Groups(t, prefix, impls, format, nil)
	}
	var brokerGroups []report.Group
	for _, row := range r.broker.Rows() {
		// The RabbitMQ bar stands beside the defaults' colour: both AMQP
		// configurations run on the same broker.
		brokerGroups = append(brokerGroups, report.Group{
			Label:  row,
			Values: []float64{r.broker.Median(row, brokerRedis), r.broker.Median(row, brokerRabbitMQ), math.NaN()},
			Format: report.Tenths,
		})
	}
	c := report.Chart{
		Title:  fmt.Sprintf("Millrace on Redis %s vs Watermill AMQP on RabbitMQ %s (make bench-brokers, %s)", m.Redis, h.rabbitmq, h.started.UTC().Format("2006-01-02")),
		Series: chartSeries,
		Panels: []report.Panel{
			{Heading: "Throughput, msg/s (higher is better)", Groups: append(groups(r.publish, "Publish, ", report.Rate), groups(r.consume, "Consume, ", report.Rate)...)},
			{Heading: "Latency at 1,000 msg/s, ms (lower is better)", PerGroupScale: true, Groups: groups(r.latency, "", report.Millis)},
			{Heading: "Broker: Redis (blue) and RabbitMQ (red), lower is better", PerGroupScale: true, Groups: brokerGroups},
		},
	}
	return c.WriteSVGFile(path)
}
