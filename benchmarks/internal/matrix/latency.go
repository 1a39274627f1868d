package matrix

import (
	"context"
	"fmt"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/report"
)

// LatencyCell is the latency figure of the implementations impls (nil:
// all): 16 B messages at -rate for -latency-duration through one
// subscriber, over the Redis server at addr. It records the percentiles in
// latency and the client CPU per message in cpu, and deletes each run's
// topic with deleteTopic.
func (c Common) LatencyCell(addr string, impls []string, latency, cpu *report.Table, deleteTopic func(harness.Impl, string)) Cell {
	label := fmt.Sprintf("latency at %d msg/s, 16 B, 1 subscriber", c.Rate)
	return Cell{Label: label, Impls: impls, Measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer deleteTopic(impl, topic)
		lat, err := harness.Latency(ctx, impl, harness.LatencyConfig{
			Addr: addr, Topic: topic, Group: harness.NewGroup(), Payload: harness.Payload(16),
			Rate: c.Rate, Duration: c.LatencyDuration, Timeout: c.Timeout,
		})
		if err != nil {
			return "", err
		}
		for _, p := range report.Percentiles {
			latency.Add(report.PercentileRow(p), impl.Name(), lat.P(p).Seconds()*1000)
		}
		perMsg := lat.CPUPerMessage().Seconds() * 1e6
		cpu.Add(fmt.Sprintf("latency at %d msg/s (publish and consume)", c.Rate), impl.Name(), perMsg)
		return fmt.Sprintf("%d messages, p50 %s, p99 %s, p99.9 %s, %.1f µs/msg CPU",
			len(lat.Sorted), lat.P(50), lat.P(99), lat.P(99.9), perMsg), nil
	}}
}
