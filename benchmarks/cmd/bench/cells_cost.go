package main

import (
	"context"
	"fmt"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/report"
)

// idleCell measures the idle cost of n topics: read by one Subscriber in
// one group, or (perTopic) each by a Subscriber and group of its own over
// one shared client. Raw go-redis has the first shape only: one
// XREADGROUP over every stream.
func (b *bench) idleCell(n int, perTopic bool) cell {
	row := fmt.Sprintf("%d topic%s, one Subscriber", n, report.Plural(n))
	impls := redisImpls
	if perTopic {
		row = fmt.Sprintf("%d topics, a Subscriber and group per topic", n)
		impls = groupImpls
	}
	return cell{Label: "idle " + row, Impls: impls, Runs: b.opts.idleRuns, Measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(topic)
		rate, err := harness.Idle(ctx, impl, harness.IdleConfig{
			Addr: b.opts.addr, Topic: topic, Group: harness.NewGroup(), Topics: n, PerTopic: perTopic,
			Settle: b.opts.idleSettle, Duration: b.opts.idleDuration, Timeout: b.opts.Timeout,
		})
		if err != nil {
			return "", err
		}
		b.rep.idleCommands.Add(row, impl.Name(), rate.PerSecond)
		b.rep.idleConns.Add(row, impl.Name(), float64(rate.ServerConns))
		b.rep.idlePool.Add(row, impl.Name(), float64(rate.PoolConns-rate.PoolIdle))
		if n == 1 {
			for name, v := range rate.ByCommand {
				b.rep.idleCommands.Add("· "+name, impl.Name(), v)
			}
		}
		return fmt.Sprintf("%.2f commands/s, %d server connections, pool %d (%d idle): %s",
			rate.PerSecond, rate.ServerConns, rate.PoolConns, rate.PoolIdle, rate), nil
	}}
}

// delayCell measures how late messages delayed by d reach their handler in
// idle or busy topics. Only Millrace has delayed messages.
func (b *bench) delayCell(d time.Duration, busy bool) cell {
	state, rate := "idle topics", 0
	if busy {
		state, rate = fmt.Sprintf("busy topics (%d msg/s each)", b.opts.delayBusyRate), b.opts.delayBusyRate
	}
	row := fmt.Sprintf("delay %s, %s", d, state)
	return cell{Label: row, Impls: []string{harness.Millrace}, Measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(topic)
		late, err := harness.DelayedLateness(ctx, impl, harness.DelayConfig{
			Addr: b.opts.addr, Topic: topic, Group: harness.NewGroup(), Topics: b.opts.delayTopics,
			Delay: d, BusyRate: rate, Idle: b.opts.delayIdle, Spread: b.opts.delaySpread, Timeout: b.opts.Timeout,
		})
		if err != nil {
			return "", err
		}
		b.rep.delay.Add(row, late.Sorted...)
		s := late.Sorted
		return fmt.Sprintf("%d messages, lateness min %s, median %s, max %s",
			len(s), s[0], s[len(s)/2], s[len(s)-1]), nil
	}}
}
