package main

import (
	"fmt"
	"strings"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/matrix"
	"github.com/millrace/millrace/benchmarks/internal/report"
)

// chartImpls are the series of the chart, in the order of chartSeries.
var chartImpls = []string{
	harness.Millrace, harness.MillracePlain, harness.MillraceIdempotent,
	harness.Peer, harness.Raw, harness.GoChannel, harness.MillraceDirect,
}

var chartSeries = []report.Series{
	{Name: "Millrace", Color: "#1f77b4"},
	{Name: "Millrace PlainXAdd", Color: "#17becf"},
	{Name: "Millrace Idempotency 10m", Color: "#9467bd"},
	{Name: "watermill-redisstream", Color: "#ff7f0e"},
	{Name: "raw go-redis", Color: "#7f7f7f"},
	{Name: "GoChannel (Router ceiling)", Color: "#2ca02c"},
	{Name: "Millrace, no Router", Color: "#aec7e8"},
}

// writeSVG draws throughput, latency and idle cost, one bar per
// implementation measured.
func (r *figures) writeSVG(path string, m matrix.Machine, h header) error {
	groups := func(t *report.Table, prefix string, format func(float64) string) []report.Group {
		return report.Groups(t, prefix, chartImpls, format, nil)
	}
	perCommand := func(row string) bool { return strings.HasPrefix(row, "· ") }
	c := report.Chart{
		Title:  fmt.Sprintf("Millrace vs watermill-redisstream vs raw go-redis, Redis %s (make bench, %s)", m.Redis, h.started.UTC().Format("2006-01-02")),
		Series: chartSeries,
		Panels: []report.Panel{
			{Heading: "Throughput, msg/s (higher is better)", Groups: append(groups(r.publish, "Publish, ", report.Rate), groups(r.consume, "Consume, ", report.Rate)...)},
			{Heading: "redis-server CPU, µs/msg (lower is better)", PerGroupScale: true, Groups: groups(r.serverCPU, "", report.Micros)},
			{Heading: "Latency, ms (lower is better)", PerGroupScale: true, Groups: groups(r.latency, "", report.Millis)},
			{Heading: "Idle Redis commands/s (lower is better)", PerGroupScale: true, Groups: report.Groups(r.idleCommands, "", chartImpls, report.PerSec, perCommand)},
		},
	}
	return c.WriteSVGFile(path)
}
