package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/benchmarks/internal/harness"
)

// Keys of the broker columns.
const (
	brokerRedis    = "redis"
	brokerRabbitMQ = "rabbitmq"
)

// brokers holds the running brokers and what every cell needs.
type brokers struct {
	opts     options
	redis    *harness.RedisServer
	rabbit   *harness.RabbitMQ // nil when no AMQP implementation runs
	admin    *redis.Client     // of redis
	payloads map[int][]byte
	rep      *figures
}

// start starts Redis with AOF and, for AMQP implementations, RabbitMQ. With
// the start-up figure each broker is first started and stopped
// -startups - 1 times; every start is a sample.
func (b *brokers) start(ctx context.Context) error {
	starts := 1
	if b.opts.Figures["startup"] {
		starts = b.opts.startups
	}
	srv, err := b.startRepeatedly(ctx, brokerRedis, starts, func(ctx context.Context) (server, time.Duration, error) {
		s, err := harness.StartRedis(ctx, harness.RedisConfig{AOF: true})
		if err != nil {
			return nil, 0, err
		}
		return s, s.StartUp, nil
	})
	if err != nil {
		return err
	}
	b.redis = srv.(*harness.RedisServer)
	b.admin = harness.NewClient(b.redis.Addr)
	if !b.opts.usesAMQP() {
		return nil
	}
	srv, err = b.startRepeatedly(ctx, brokerRabbitMQ, starts, func(ctx context.Context) (server, time.Duration, error) {
		r, err := harness.StartRabbitMQ(ctx)
		if err != nil {
			return nil, 0, err
		}
		return r, r.StartUp, nil
	})
	if err != nil {
		return err
	}
	b.rabbit = srv.(*harness.RabbitMQ)
	return nil
}

// server is a broker process this program started.
type server interface{ Stop() }

// startRepeatedly starts a broker starts times, stopping all but the last,
// which it returns, and records every start-up time under key.
func (b *brokers) startRepeatedly(ctx context.Context, key string, starts int, start func(context.Context) (server, time.Duration, error)) (server, error) {
	for i := 1; ; i++ {
		s, took, err := start(ctx)
		if err != nil {
			return nil, err
		}
		b.rep.broker.Add(rowStartUp, key, millis(took))
		fmt.Fprintf(os.Stderr, "start %d/%d: %s ready in %s\n", i, starts, key, took.Round(time.Millisecond))
		if i >= starts {
			return s, nil
		}
		s.Stop()
	}
}

// stop stops the brokers that run.
func (b *brokers) stop() {
	if b.admin != nil {
		b.admin.Close()
	}
	if b.redis != nil {
		b.redis.Stop()
	}
	if b.rabbit != nil {
		b.rabbit.Stop()
	}
}

// newImpl returns the implementation called name on its broker.
func (b *brokers) newImpl(name string) (harness.Impl, error) {
	if name == harness.Millrace {
		return harness.NewImpl(name, 1)
	}
	return harness.NewAMQPImpl(name, b.rabbit.URI)
}

// brokerOf is the broker impl talks to: its column key and processes.
func (b *brokers) brokerOf(impl harness.Impl) (string, []int) {
	if slices.Contains(harness.AMQPNames, impl.Name()) {
		return brokerRabbitMQ, b.rabbit.Pids()
	}
	return brokerRedis, []int{b.redis.Pid()}
}

// rabbitVersion is the version RabbitMQ announces, "" without RabbitMQ.
func (b *brokers) rabbitVersion() string {
	if b.rabbit == nil {
		return ""
	}
	c, err := amqp091.Dial(b.rabbit.URI)
	if err != nil {
		return "unknown"
	}
	defer c.Close()
	if v, ok := c.Properties["version"].(string); ok {
		return v
	}
	return "unknown"
}

// deleteTopic removes a run's queue or streams, even after the run was
// cancelled.
func (b *brokers) deleteTopic(impl harness.Impl, topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	harness.DeleteImplTopic(ctx, b.admin, impl, topic)
}

// measureBrokers measures what each broker costs on its own: RSS and CPU
// idle, then RSS holding a backlog. It returns how many measurements
// failed.
func (b *brokers) measureBrokers(ctx context.Context, impls []harness.Impl) (failures int) {
	// One implementation per broker fills its backlog.
	byBroker := map[string]harness.Impl{}
	for _, impl := range impls {
		if key, _ := b.brokerOf(impl); byBroker[key] == nil {
			byBroker[key] = impl
		}
	}
	keys := []string{brokerRedis, brokerRabbitMQ}
	fail := func(what string, err error) {
		failures++
		fmt.Fprintf(os.Stderr, "%s: FAILED: %v\n", what, err)
	}
	if b.opts.Figures["idle"] {
		if err := harness.Sleep(ctx, b.opts.settle); err != nil {
			return failures + 1
		}
		for _, key := range keys {
			impl := byBroker[key]
			if impl == nil {
				continue
			}
			_, pids := b.brokerOf(impl)
			st, err := harness.TreeStats(pids...)
			if err != nil {
				fail(key+" idle RSS", err)
				continue
			}
			cpu, err := harness.CPUOver(ctx, b.opts.window, pids)
			if err != nil {
				fail(key+" idle CPU", err)
				continue
			}
			b.rep.broker.Add(rowRSSIdle, key, megabytes(st.RSS))
			b.rep.broker.Add(rowCPUIdle, key, millis(cpu.Broker))
			fmt.Fprintf(os.Stderr, "%s idle: RSS %.1f MB (%d processes), CPU %s/s\n", key, megabytes(st.RSS), st.N, cpu.Broker)
		}
	}
	if b.opts.Figures["backlog"] {
		payload := harness.Payload(b.opts.backlogSize)
		for _, key := range keys {
			impl := byBroker[key]
			if impl == nil {
				continue
			}
			rss, err := b.backlogRSS(ctx, impl, payload)
			if err != nil {
				fail(key+" backlog RSS", err)
				continue
			}
			b.rep.broker.Add(b.rep.rowBacklog, key, megabytes(rss))
			fmt.Fprintf(os.Stderr, "%s with the backlog: RSS %.1f MB\n", key, megabytes(rss))
		}
	}
	return failures
}

// backlogRSS fills a fresh topic with the backlog through impl, waits
// -settle and returns the RSS of impl's broker.
func (b *brokers) backlogRSS(ctx context.Context, impl harness.Impl, payload []byte) (int64, error) {
	topic := harness.NewTopic()
	defer b.deleteTopic(impl, topic)
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	if err := harness.Prefill(ctx, b.admin, impl, topic, payload, b.opts.backlogN); err != nil {
		return 0, err
	}
	if err := harness.Sleep(ctx, b.opts.settle); err != nil {
		return 0, err
	}
	key, pids := b.brokerOf(impl)
	if key == brokerRedis {
		// Not while a forked AOF rewrite doubles the pages.
		if err := harness.WaitNoFork(ctx, b.admin); err != nil {
			return 0, err
		}
	}
	st, err := harness.TreeStats(pids...)
	return st.RSS, err
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func megabytes(b int64) float64      { return float64(b) / (1 << 20) }
