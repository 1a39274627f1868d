package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/benchmarks/internal/harness"
	"github.com/millrace/millrace/benchmarks/internal/matrix"
	"github.com/millrace/millrace/benchmarks/internal/report"
)

// cell is one row of the matrix.
type cell = matrix.Cell

// Implementation sets of the cells.
var (
	redisImpls   = harness.Names // Millrace, peer, raw
	publishImpls = slices.Concat([]string{harness.Millrace}, harness.PublishNames, harness.Names[1:])
	latencyImpls = slices.Concat([]string{harness.Millrace, harness.MillracePlain}, harness.Names[1:])
	consumeImpls = append(slices.Clone(harness.Names), harness.MillraceDirect)
	routerImpls  = append(slices.Clone(consumeImpls), harness.GoChannel)
	groupImpls   = []string{harness.Millrace, harness.Peer} // Subscriber and group per topic
)

// bench holds what every cell needs.
type bench struct {
	opts     options
	admin    *redis.Client // for pre-fills' cleanup and INFO
	payloads map[int][]byte
	rep      *figures
	exe      string // this binary, re-executed for the peak-RSS figure
}

// cells lists the matrix selected by the options, in the order it runs.
func (b *bench) cells() []cell {
	cs := b.opts.ThroughputCells(b.publishCell, func(size, subs int) cell { return b.consumeCell(size, subs, 1) })
	if b.opts.Figures["busy"] {
		cs = append(cs, b.consumeCell(b.opts.Sizes[0], 1, b.opts.busyTopics))
	}
	if b.opts.Figures["latency"] {
		cs = append(cs, b.opts.LatencyCell(b.opts.addr, latencyImpls, b.rep.latency, b.rep.cpu, b.deleteImplTopic))
	}
	if b.opts.Figures["idle"] {
		for _, n := range b.opts.topics {
			cs = append(cs, b.idleCell(n, false))
			if n > 1 {
				cs = append(cs, b.idleCell(n, true))
			}
		}
	}
	if b.opts.Figures["delay"] {
		for _, d := range b.opts.delays {
			cs = append(cs, b.delayCell(d, false), b.delayCell(d, true))
		}
	}
	if b.opts.Figures["rss"] {
		cs = append(cs, b.rssCell())
	}
	return cs
}

func (b *bench) publishCell(size, pubs int) cell {
	row := fmt.Sprintf("%s, %d publisher%s", report.SizeLabel(size), pubs, report.Plural(pubs))
	return cell{Label: "publish " + row, Impls: publishImpls, Measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(topic)
		res, err := harness.Publish(ctx, impl, harness.PublishConfig{
			Addr: b.opts.addr, Topic: topic, Payload: b.payloads[size],
			N: b.opts.N, Publishers: pubs, Timeout: b.opts.Timeout,
		})
		if err != nil {
			return "", err
		}
		b.rep.publish.Add(row, impl.Name(), res.Rate())
		b.rep.cpu.Add("publish "+row, impl.Name(), micros(res.CPUPerMessage()))
		b.rep.serverCPU.Add("publish "+row, impl.Name(), micros(res.ServerCPUPerMessage()))
		return fmt.Sprintf("%s, %.1f µs/msg server CPU", throughputSummary(res), micros(res.ServerCPUPerMessage())), nil
	}}
}

// consumeCell drains a backlog of -n messages spread over topics topics
// with subs subscribers of one group, each reading every topic.
func (b *bench) consumeCell(size, subs, topics int) cell {
	row := fmt.Sprintf("%s, %d subscriber%s", report.SizeLabel(size), subs, report.Plural(subs))
	impls := consumeImpls
	if topics > 1 {
		row = fmt.Sprintf("%s, %d busy topics, 1 subscriber", report.SizeLabel(size), topics)
	} else if subs == 1 {
		impls = routerImpls // GoChannel has no groups: one subscriber only
	}
	return cell{Label: "consume " + row, Impls: impls, Measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(topic)
		res, err := harness.Consume(ctx, impl, harness.ConsumeConfig{
			Addr: b.opts.addr, Topic: topic, Group: harness.NewGroup(), Payload: b.payloads[size],
			N: b.opts.N, Topics: topics, Subscribers: subs, Timeout: b.opts.Timeout,
		})
		if err != nil {
			return "", err
		}
		b.rep.consume.Add(row, impl.Name(), res.Rate())
		b.rep.cpu.Add("consume "+row, impl.Name(), micros(res.CPUPerMessage()))
		if impl.Name() != harness.GoChannel {
			b.rep.serverCPU.Add("consume "+row, impl.Name(), micros(res.ServerCPUPerMessage()))
		}
		return fmt.Sprintf("%s, %.1f µs/msg server CPU", throughputSummary(res), micros(res.ServerCPUPerMessage())), nil
	}}
}

func (b *bench) rssCell() cell {
	label := fmt.Sprintf("peak RSS draining %d × %s", b.opts.rssN, report.SizeLabel(b.opts.rssSize))
	payload := harness.Payload(b.opts.rssSize)
	return cell{Label: label, Impls: redisImpls, Measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(topic)
		rep, err := harness.PeakRSSOfDrain(ctx, impl, harness.RSSConfig{
			ConsumeConfig: harness.ConsumeConfig{
				Addr: b.opts.addr, Topic: topic, Group: harness.NewGroup(), Payload: payload,
				N: b.opts.rssN, Subscribers: 1, Timeout: b.opts.Timeout,
			},
			Exe: b.exe,
		})
		if err != nil {
			return "", err
		}
		// The child's getrusage MaxRSS is not used: Linux carries the
		// parent's RSS at fork over the exec into it (signal->maxrss),
		// so it reads the same for every implementation. VmHWM is the
		// child's own address space only.
		b.rep.rss.Add("peak RSS (VmHWM)", impl.Name(), megabytes(rep.VmHWM))
		return fmt.Sprintf("VmHWM %.1f MB, drained in %s",
			megabytes(rep.VmHWM), time.Duration(rep.ElapsedNs).Round(time.Millisecond)), nil
	}}
}

// deleteImplTopic is deleteTopic for cells that delete by implementation.
func (b *bench) deleteImplTopic(_ harness.Impl, topic string) { b.deleteTopic(topic) }

// deleteTopic removes a run's streams (every topic named after topic), even
// after the run was cancelled.
func (b *bench) deleteTopic(topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	harness.DeleteTopic(ctx, b.admin, topic)
}

func throughputSummary(t harness.Throughput) string {
	return fmt.Sprintf("%s msg/s, %.1f µs/msg CPU (%s)",
		fmtRate(t.Rate()), micros(t.CPUPerMessage()), t.Elapsed.Round(time.Millisecond))
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func megabytes(b int64) float64      { return float64(b) / (1 << 20) }
