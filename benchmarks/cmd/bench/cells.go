package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/benchmarks/internal/harness"
)

// cell is one row of the matrix, measured runs times per implementation it
// applies to. measure records its samples in the report and returns a
// one-line summary for the progress log.
type cell struct {
	label   string
	impls   []string // the implementations it measures; nil means all
	runs    int      // runs per implementation; 0 means -runs
	measure func(ctx context.Context, impl harness.Impl) (string, error)
}

// applies reports whether c measures the implementation called name.
func (c cell) applies(name string) bool { return c.impls == nil || slices.Contains(c.impls, name) }

// Implementation sets of the cells.
var (
	redisImpls   = harness.Names // Millrace, peer, raw
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
	var cs []cell
	if b.opts.figures["publish"] {
		for _, size := range b.opts.sizes {
			for _, p := range b.opts.pubs {
				cs = append(cs, b.publishCell(size, p))
			}
		}
	}
	if b.opts.figures["consume"] {
		for _, size := range b.opts.sizes {
			for _, s := range b.opts.subs {
				cs = append(cs, b.consumeCell(size, s, 1))
			}
		}
	}
	if b.opts.figures["busy"] {
		cs = append(cs, b.consumeCell(b.opts.sizes[0], 1, b.opts.busyTopics))
	}
	if b.opts.figures["latency"] {
		cs = append(cs, b.latencyCell())
	}
	if b.opts.figures["idle"] {
		for _, n := range b.opts.topics {
			cs = append(cs, b.idleCell(n, false))
			if n > 1 {
				cs = append(cs, b.idleCell(n, true))
			}
		}
	}
	if b.opts.figures["delay"] {
		for _, d := range b.opts.delays {
			cs = append(cs, b.delayCell(d, false), b.delayCell(d, true))
		}
	}
	if b.opts.figures["rss"] {
		cs = append(cs, b.rssCell())
	}
	return cs
}

func (b *bench) publishCell(size, pubs int) cell {
	row := fmt.Sprintf("%s, %d publisher%s", sizeLabel(size), pubs, plural(pubs))
	return cell{label: "publish " + row, impls: redisImpls, measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(topic)
		res, err := harness.Publish(ctx, impl, harness.PublishConfig{
			Addr: b.opts.addr, Topic: topic, Payload: b.payloads[size],
			N: b.opts.n, Publishers: pubs, Timeout: b.opts.timeout,
		})
		if err != nil {
			return "", err
		}
		b.rep.publish.Add(row, impl.Name(), res.Rate())
		b.rep.cpu.Add("publish "+row, impl.Name(), micros(res.CPUPerMessage()))
		return throughputSummary(res), nil
	}}
}

// consumeCell drains a backlog of -n messages spread over topics topics
// with subs subscribers of one group, each reading every topic.
func (b *bench) consumeCell(size, subs, topics int) cell {
	row := fmt.Sprintf("%s, %d subscriber%s", sizeLabel(size), subs, plural(subs))
	impls := consumeImpls
	if topics > 1 {
		row = fmt.Sprintf("%s, %d busy topics, 1 subscriber", sizeLabel(size), topics)
	} else if subs == 1 {
		impls = routerImpls // GoChannel has no groups: one subscriber only
	}
	return cell{label: "consume " + row, impls: impls, measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(topic)
		res, err := harness.Consume(ctx, impl, harness.ConsumeConfig{
			Addr: b.opts.addr, Topic: topic, Group: harness.NewGroup(), Payload: b.payloads[size],
			N: b.opts.n, Topics: topics, Subscribers: subs, Timeout: b.opts.timeout,
		})
		if err != nil {
			return "", err
		}
		b.rep.consume.Add(row, impl.Name(), res.Rate())
		b.rep.cpu.Add("consume "+row, impl.Name(), micros(res.CPUPerMessage()))
		return throughputSummary(res), nil
	}}
}

func (b *bench) latencyCell() cell {
	label := fmt.Sprintf("latency at %d msg/s, 16 B, 1 subscriber", b.opts.rate)
	return cell{label: label, impls: redisImpls, measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(topic)
		lat, err := harness.Latency(ctx, impl, harness.LatencyConfig{
			Addr: b.opts.addr, Topic: topic, Group: harness.NewGroup(), Payload: harness.Payload(16),
			Rate: b.opts.rate, Duration: b.opts.latencyDuration, Timeout: b.opts.timeout,
		})
		if err != nil {
			return "", err
		}
		for _, p := range []struct {
			row string
			p   float64
		}{{"p50", 50}, {"p99", 99}, {"p99.9", 99.9}} {
			b.rep.latency.Add(p.row, impl.Name(), millis(lat.P(p.p)))
		}
		b.rep.cpu.Add(fmt.Sprintf("latency at %d msg/s (publish and consume)", b.opts.rate), impl.Name(), micros(lat.CPUPerMessage()))
		return fmt.Sprintf("%d messages, p50 %s, p99 %s, p99.9 %s, %.1f µs/msg CPU",
			len(lat.Sorted), lat.P(50), lat.P(99), lat.P(99.9), micros(lat.CPUPerMessage())), nil
	}}
}

func (b *bench) rssCell() cell {
	label := fmt.Sprintf("peak RSS draining %d × %s", b.opts.rssN, sizeLabel(b.opts.rssSize))
	payload := harness.Payload(b.opts.rssSize)
	return cell{label: label, impls: redisImpls, measure: func(ctx context.Context, impl harness.Impl) (string, error) {
		topic := harness.NewTopic()
		defer b.deleteTopic(topic)
		rep, err := harness.PeakRSSOfDrain(ctx, impl, harness.RSSConfig{
			ConsumeConfig: harness.ConsumeConfig{
				Addr: b.opts.addr, Topic: topic, Group: harness.NewGroup(), Payload: payload,
				N: b.opts.rssN, Subscribers: 1, Timeout: b.opts.timeout,
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
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func megabytes(b int64) float64      { return float64(b) / (1 << 20) }

// sizeLabel prints a payload size: "16 B", "1 KB".
func sizeLabel(size int) string {
	if size >= 1024 && size%1024 == 0 {
		return fmt.Sprintf("%d KB", size/1024)
	}
	return fmt.Sprintf("%d B", size)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
