package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/matrix"
	"github.com/millrace/millrace/benchmarks/internal/report"
)

// chartImpls are the series of the chart, in the order of chartSeries.
var chartImpls = []string{harness.Millrace, harness.Peer, harness.Raw, harness.GoChannel, harness.MillraceDirect}

var chartSeries = []report.Series{
	{Name: "Millrace", Color: "#1f77b4"},
	{Name: "watermill-redisstream", Color: "#ff7f0e"},
	{Name: "raw go-redis", Color: "#7f7f7f"},
	{Name: "GoChannel (Router ceiling)", Color: "#2ca02c"},
	{Name: "Millrace, no Router", Color: "#aec7e8"},
}

// writeSVG draws throughput, latency and idle cost, one bar per
// implementation measured.
func (r *figures) writeSVG(path string, m matrix.Machine, h header) error {
	groups := func(t *report.Table, prefix string, format func(float64) string) []report.Group {
		var gs []report.Group
		for _, row := range t.Rows() {
			g := report.Group{Label: prefix + row, Format: format}
			for _, impl := range chartImpls {
				g.Values = append(g.Values, t.Median(row, impl))
			}
			gs = append(gs, g)
		}
		return gs
	}
	c := report.Chart{
		Title:  fmt.Sprintf("Millrace vs watermill-redisstream vs raw go-redis, Redis %s (make bench, %s)", m.Redis, h.started.UTC().Format("2006-01-02")),
		Series: chartSeries,
		Panels: []report.Panel{
			{Heading: "Throughput, msg/s (higher is better)", Groups: append(groups(r.publish, "Publish, ", report.Rate), groups(r.consume, "Consume, ", report.Rate)...)},
			{Heading: "Latency, ms (lower is better)", PerGroupScale: true, Groups: groups(r.latency, "", report.Millis)},
			{Heading: "Idle Redis commands/s (lower is better)", PerGroupScale: true, Groups: idleGroups(r.idleCommands)},
		},
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.WriteSVG(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// idleGroups are the idle rows of t without the per-command breakdown.
func idleGroups(t *report.Table) []report.Group {
	var gs []report.Group
	for _, row := range t.Rows() {
		if strings.HasPrefix(row, "· ") {
			continue
		}
		g := report.Group{Label: row, Format: report.PerSec}
		for _, impl := range chartImpls {
			g.Values = append(g.Values, t.Median(row, impl))
		}
		gs = append(gs, g)
	}
	return gs
}
