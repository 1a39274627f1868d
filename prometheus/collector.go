// Package prometheus exports the state of Millrace topics as Prometheus
// metrics: stream length, consumer-group lag, pending entries, oldest
// pending and undelivered ages, consumers and dead-letter depth, per topic
// and group, and what a topic's ceiling cost: entries dropped before a group
// read them, messages refused, abandoned groups.
//
// The figures are read when Prometheus scrapes, with the cheap commands of
// [admin.Admin] in one pipelined round trip for all topics. Labels are
// topic and group only; per-consumer series are opt-in (Config.PerConsumer),
// since consumer names are often generated and unbounded.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(millraceprom.NewCollector(client, millraceprom.Config{}))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// A partitioned topic (package partition) is read through its partitions,
// "{orders#0}" to "{orders#11}": discovered like any topic, or listed in
// Config.Topics (partition.Topics names them). Besides their own series, they
// give partition_lag per partition and, for a group whose members share the
// partitions (partition.BalancedSubscriber), group_members,
// group_unowned_partitions and partition_owner, labelled with the
// partitioned topic ("orders") and the partition; reading the members takes
// one more round trip.
//
// Watermill's own metrics component (components/metrics) keeps measuring
// handlers and publishers; this collector measures the queue.
package prometheus

import (
	"context"
	"sync"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/admin"
)

// Defaults of [Config].
const (
	DefaultNamespace         = "millrace"
	DefaultTimeout           = 5 * time.Second
	DefaultDiscoveryInterval = time.Minute
)

// Config configures a [Collector]. The zero value is valid.
type Config struct {
	// Topics are the topics exported; list a partitioned topic's partitions
	// (partition.Topics). Default: every topic in the database, found with
	// SCAN ... TYPE stream (see [admin.Admin.Topics]) at most once per
	// DiscoveryInterval.
	Topics []string
	// DiscoveryInterval is how long a list of discovered topics is reused.
	// Default: 1m.
	DiscoveryInterval time.Duration
	// Timeout bounds the Redis calls of one scrape. Default: 5s.
	Timeout time.Duration
	// PerConsumer adds per-consumer series (pending entries and idle time,
	// labelled by consumer). Default: off.
	PerConsumer bool
	// Namespace prefixes every metric name. Default: "millrace".
	Namespace string
	// ConstLabels are added to every metric, e.g. the Redis instance.
	ConstLabels prom.Labels
	// AbandonedAfter is how long a group's oldest unread entry must have
	// waited with no consumer seen for group_abandoned to be 1.
	// Default: admin.DefaultAbandonedAfter (24h).
	AbandonedAfter time.Duration
}

// Collector is a prometheus.Collector of Millrace topics. It is safe for
// concurrent scrapes and borrows the client (never closes it).
type Collector struct {
	admin  *admin.Admin
	config Config

	up, scrapeDuration                       *prom.Desc
	length, firstAge, lastAge, deadLetters   *prom.Desc
	entriesAdded, entriesRead                *prom.Desc
	lag, pending, oldestPending, oldestUndel *prom.Desc
	consumers, minIdle                       *prom.Desc
	dropped, abandoned, beyondEnd, refused   *prom.Desc
	paused                                   *prom.Desc
	consumerPending, consumerIdle            *prom.Desc
	partitions                               partitionDescs

	mu           sync.Mutex // guards the discovered topics
	discovered   []string
	discoveredAt time.Time
}

var _ prom.Collector = (*Collector)(nil)

// NewCollector returns a Collector over client.
func NewCollector(client redis.UniversalClient, config Config) *Collector {
	if config.Namespace == "" {
		config.Namespace = DefaultNamespace
	}
	if config.Timeout <= 0 {
		config.Timeout = DefaultTimeout
	}
	if config.DiscoveryInterval <= 0 {
		config.DiscoveryInterval = DefaultDiscoveryInterval
	}
	desc := func(name, help string, labels ...string) *prom.Desc {
		return prom.NewDesc(prom.BuildFQName(config.Namespace, "", name), help, labels, config.ConstLabels)
	}
	topic := []string{"topic"}
	group := []string{"topic", "group"}
	consumer := []string{"topic", "group", "consumer"}
	return &Collector{
		admin:  admin.New(client, admin.Options{AbandonedAfter: config.AbandonedAfter}),
		config: config,

		up:             desc("up", "1 if the last scrape read every topic from Redis, 0 if it failed."),
		scrapeDuration: desc("scrape_duration_seconds", "How long the last scrape took."),

		length:       desc("stream_length", "Entries in the topic's stream (XLEN).", topic...),
		firstAge:     desc("stream_oldest_entry_age_seconds", "Age of the oldest entry of the topic's stream: how much history it keeps.", topic...),
		lastAge:      desc("stream_newest_entry_age_seconds", "Age of the newest entry of the topic's stream: time since the last publish.", topic...),
		deadLetters:  desc("dead_letters", "Entries in the topic's dead-letter stream.", topic...),
		entriesAdded: desc("stream_entries_added_total", "Entries ever added to the topic's stream (XINFO STREAM entries-added, Redis 7.0+): its rate is the publish rate. Absent before Redis 7.0.", topic...),

		lag:           desc("group_lag", "Entries of the stream the group has not read yet (Redis 7 lag, computed when Redis has none; a lower bound of 1000 when the backlog is longer and Redis has none).", group...),
		pending:       desc("group_pending", "Entries delivered to the group and not acknowledged (PEL size).", group...),
		oldestPending: desc("group_oldest_pending_age_seconds", "Age of the oldest entry pending in the group, 0 when none.", group...),
		oldestUndel:   desc("group_oldest_undelivered_age_seconds", "Age of the oldest entry the group has not read yet (queue latency), 0 when caught up.", group...),
		consumers:     desc("group_consumers", "Consumers of the group.", group...),
		entriesRead:   desc("group_entries_read_total", "Entries the group has read (XINFO GROUPS entries-read, Redis 7.0+): its rate is the group's consume rate. It restarts when the group is moved with XGROUP SETID; absent while Redis does not know it.", group...),
		minIdle:       desc("group_consumer_min_idle_seconds", "Idle time of the group's most recently active consumer: high means nobody is consuming. Absent without consumers.", group...),

		dropped:   desc("group_dropped_entries_total", "Entries the topic's ceiling (Retention.Ceiling, DropOldest) trimmed before the group read them: lost messages. Absent while none.", group...),
		abandoned: desc("group_abandoned", "1 when the group has entries that waited longer than AbandonedAfter (default 24h) and no consumer of it was seen for as long: delete it unless it is coming back.", group...),
		beyondEnd: desc("group_beyond_end", "1 when the group's position is past the stream's last ID: it skips every new entry until the stream gets there.", group...),
		paused:    desc("group_paused", "1 while the group is paused (admin.PauseGroup, millrace group pause): its subscribers take no new entries.", group...),
		refused:   desc("stream_refused_total", "Messages Publish refused because the topic was at its ceiling (Retention.Ceiling, RefusePublish). Absent while none.", topic...),

		consumerPending: desc("consumer_pending", "Entries pending at the consumer.", consumer...),
		consumerIdle:    desc("consumer_idle_seconds", "Time since the consumer's last interaction with Redis.", consumer...),

		partitions: newPartitionDescs(desc),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prom.Desc) {
	for _, d := range []*prom.Desc{
		c.up, c.scrapeDuration, c.length, c.firstAge, c.lastAge, c.deadLetters, c.entriesAdded,
		c.lag, c.pending, c.oldestPending, c.oldestUndel, c.consumers, c.minIdle, c.entriesRead,
		c.dropped, c.abandoned, c.beyondEnd, c.refused, c.paused,
		c.partitions.lag, c.partitions.owner, c.partitions.members, c.partitions.unowned,
	} {
		ch <- d
	}
	if c.config.PerConsumer {
		ch <- c.consumerPending
		ch <- c.consumerIdle
	}
}

// Collect implements prometheus.Collector: it reads every topic in one
// pipelined round trip (plus a SCAN when topics are discovered and the
// list is stale, and one more round trip for the members of the groups of
// partitioned topics).
func (c *Collector) Collect(ch chan<- prom.Metric) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.config.Timeout)
	defer cancel()
	stats, err := c.read(ctx)
	if err == nil {
		err = c.collectPartitioned(ctx, ch, stats)
	}
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prom.MustNewConstMetric(c.up, prom.GaugeValue, up)
	ch <- prom.MustNewConstMetric(c.scrapeDuration, prom.GaugeValue, time.Since(start).Seconds())
	for _, s := range stats {
		c.collectTopic(ch, s)
	}
}

func (c *Collector) read(ctx context.Context) ([]admin.TopicStats, error) {
	topics, err := c.topics(ctx)
	if err != nil || len(topics) == 0 {
		return nil, err
	}
	return c.admin.Stats(ctx, topics...)
}

func (c *Collector) topics(ctx context.Context) ([]string, error) {
	if len(c.config.Topics) > 0 {
		return c.config.Topics, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.discovered != nil && time.Since(c.discoveredAt) < c.config.DiscoveryInterval {
		return c.discovered, nil
	}
	topics, err := c.admin.Topics(ctx)
	if err != nil {
		return nil, err
	}
	c.discovered, c.discoveredAt = topics, time.Now()
	return topics, nil
}

func (c *Collector) collectTopic(ch chan<- prom.Metric, s admin.TopicStats) {
	gauge := func(d *prom.Desc, v float64, labels ...string) {
		ch <- prom.MustNewConstMetric(d, prom.GaugeValue, v, labels...)
	}
	gauge(c.length, float64(s.Length), s.Topic)
	gauge(c.deadLetters, float64(s.DeadLetters), s.Topic)
	if s.EntriesAdded >= 0 {
		ch <- prom.MustNewConstMetric(c.entriesAdded, prom.CounterValue, float64(s.EntriesAdded), s.Topic)
	}
	if s.Refused > 0 {
		ch <- prom.MustNewConstMetric(c.refused, prom.CounterValue, float64(s.Refused), s.Topic)
	}
	if s.FirstEntryID != "" {
		gauge(c.firstAge, age(s.Time, s.FirstEntryTime), s.Topic)
	}
	if s.LastEntryID != "" {
		gauge(c.lastAge, age(s.Time, s.LastEntryTime), s.Topic)
	}
	for _, g := range s.Groups {
		gauge(c.lag, float64(g.Lag), s.Topic, g.Name)
		gauge(c.pending, float64(g.Pending), s.Topic, g.Name)
		gauge(c.oldestPending, g.OldestPendingAge.Seconds(), s.Topic, g.Name)
		gauge(c.oldestUndel, g.OldestUndeliveredAge.Seconds(), s.Topic, g.Name)
		gauge(c.consumers, float64(len(g.Consumers)), s.Topic, g.Name)
		gauge(c.abandoned, flag(g.Abandoned), s.Topic, g.Name)
		gauge(c.beyondEnd, flag(g.BeyondEnd), s.Topic, g.Name)
		gauge(c.paused, flag(g.Paused), s.Topic, g.Name)
		if g.Dropped > 0 {
			ch <- prom.MustNewConstMetric(c.dropped, prom.CounterValue, float64(g.Dropped), s.Topic, g.Name)
		}
		if g.EntriesRead >= 0 {
			ch <- prom.MustNewConstMetric(c.entriesRead, prom.CounterValue, float64(g.EntriesRead), s.Topic, g.Name)
		}
		if len(g.Consumers) > 0 {
			minIdle := g.Consumers[0].Idle
			for _, cs := range g.Consumers[1:] {
				minIdle = min(minIdle, cs.Idle)
			}
			gauge(c.minIdle, minIdle.Seconds(), s.Topic, g.Name)
		}
		if c.config.PerConsumer {
			for _, cs := range g.Consumers {
				gauge(c.consumerPending, float64(cs.Pending), s.Topic, g.Name, cs.Name)
				gauge(c.consumerIdle, cs.Idle.Seconds(), s.Topic, g.Name, cs.Name)
			}
		}
	}
}

// flag is 1 for true, 0 for false.
func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func age(now, t time.Time) float64 {
	if now.IsZero() || t.IsZero() {
		return 0
	}
	return max(now.Sub(t).Seconds(), 0)
}
