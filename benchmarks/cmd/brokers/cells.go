package main

import (
	"context"
	"fmt"
	"time"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/matrix"
	"github.com/millrace/millrace/benchmarks/internal/report"
)

// cells lists the per-implementation matrix selected by the options, in
// the order it runs.
func (b *brokers) cells() []matrix.Cell {
	var cs []matrix.Cell
	if b.opts.Figures["idle"] {
		cs = append(cs, b.idleCell())
	}
	cs = append(cs, b.opts.ThroughputCells(b.publishCell, b.consumeCell)...)
	if b.opts.Figures["latency"] {
		cs = append(cs, b.opts.LatencyCell(b.redis.Addr, nil, b.rep.latency, b.rep.clientCPU, b.deleteTopic))
	}
	return cs
}

// idleCell measures the CPU of one idle subscription, client and broker.
func (b *brokers) idleCell() matrix.Cell {
	return matrix.Cell{Label: "idle subscription", Runs: 1, Measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(impl, topic)
		_, pids := b.brokerOf(impl)
		cpu, err := harness.IdleSubscriptionCPU(ctx, impl, harness.IdleCPUConfig{
			Addr: b.redis.Addr, Topic: topic, Group: harness.NewGroup(), Broker: pids,
			Settle: b.opts.settle, Window: b.opts.window, Timeout: b.opts.Timeout,
		})
		if err != nil {
			return "", err
		}
		b.rep.idle.Add("broker CPU, ms/s", impl.Name(), millis(cpu.Broker))
		b.rep.idle.Add("client CPU, ms/s", impl.Name(), millis(cpu.Client))
		return fmt.Sprintf("broker %s/s, client %s/s", cpu.Broker, cpu.Client), nil
	}}
}

func (b *brokers) publishCell(size, pubs int) matrix.Cell {
	row := fmt.Sprintf("%s, %d publisher%s", report.SizeLabel(size), pubs, report.Plural(pubs))
	return matrix.Cell{Label: "publish " + row, Measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(impl, topic)
		var res harness.Throughput
		broker, err := b.brokerCPU(impl, func() (err error) {
			res, err = harness.Publish(ctx, impl, harness.PublishConfig{
				Addr: b.redis.Addr, Topic: topic, Payload: b.payloads[size],
				N: b.opts.N, Publishers: pubs, Timeout: b.opts.Timeout,
			})
			return err
		})
		if err != nil {
			return "", err
		}
		return b.recordThroughput(b.rep.publish, "publish "+row, row, impl, res, broker), nil
	}}
}

func (b *brokers) consumeCell(size, subs int) matrix.Cell {
	row := fmt.Sprintf("%s, %d subscriber%s", report.SizeLabel(size), subs, report.Plural(subs))
	return matrix.Cell{Label: "consume " + row, Measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(impl, topic)
		cfg := harness.ConsumeConfig{
			Addr: b.redis.Addr, Topic: topic, Group: harness.NewGroup(), Payload: b.payloads[size],
			N: b.opts.N, Subscribers: subs, Timeout: b.opts.Timeout,
		}
		pctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
		defer cancel()
		if err := harness.Prefill(pctx, b.admin, impl, topic, cfg.Payload, cfg.N); err != nil {
			return "", err
		}
		var res harness.Throughput
		broker, err := b.brokerCPU(impl, func() (err error) {
			res, err = harness.Drain(ctx, impl, cfg)
			return err
		})
		if err != nil {
			return "", err
		}
		return b.recordThroughput(b.rep.consume, "consume "+row, row, impl, res, broker), nil
	}}
}

// brokerCPU runs f and returns the CPU impl's broker used meanwhile.
func (b *brokers) brokerCPU(impl harness.Impl, f func() error) (time.Duration, error) {
	_, pids := b.brokerOf(impl)
	before, err := harness.TreeStats(pids...)
	if err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	after, err := harness.TreeStats(pids...)
	return after.CPU - before.CPU, err
}

// recordThroughput adds a throughput run to table and the CPU tables and
// returns its summary.
func (b *brokers) recordThroughput(table interface{ Add(string, string, float64) }, cpuRow, row string, impl harness.Impl, res harness.Throughput, broker time.Duration) string {
	brokerPerMsg := broker / time.Duration(res.N)
	table.Add(row, impl.Name(), res.Rate())
	b.rep.clientCPU.Add(cpuRow, impl.Name(), micros(res.CPUPerMessage()))
	b.rep.brokerCPU.Add(cpuRow, impl.Name(), micros(brokerPerMsg))
	return fmt.Sprintf("%.0f msg/s, CPU per message: client %.1f µs, broker %.1f µs (%s)",
		res.Rate(), micros(res.CPUPerMessage()), micros(brokerPerMsg), res.Elapsed.Round(time.Millisecond))
}
