package prometheus

import (
	"context"
	"strconv"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/millrace/millrace/admin"
)

// partitionDescs are the series of partitioned topics.
type partitionDescs struct {
	lag, owner, members, unowned *prom.Desc
}

func newPartitionDescs(desc func(name, help string, labels ...string) *prom.Desc) partitionDescs {
	return partitionDescs{
		lag:     desc("partition_lag", "Entries of the partition the group has not read yet (the partition topic's group_lag, labelled with the partitioned topic).", "topic", "group", "partition"),
		owner:   desc("partition_owner", "1 for the member of the group that owns the partition.", "topic", "group", "partition", "member"),
		members: desc("group_members", "Live members of the group sharing the partitioned topic's partitions; 0 when they are assigned by hand.", "topic", "group"),
		unowned: desc("group_unowned_partitions", "Partitions of the group that no live member owns, for a group with members: non-zero between a member's death and the takeover.", "topic", "group"),
	}
}

// collectPartitioned exports the partitioned topics among stats, reading
// the members of their groups in one round trip; nothing when there are
// none.
func (c *Collector) collectPartitioned(ctx context.Context, ch chan<- prom.Metric, stats []admin.TopicStats) error {
	parted, err := c.admin.Partitioned(ctx, stats)
	if err != nil {
		return err
	}
	d := c.partitions
	for _, p := range parted {
		for _, g := range p.Groups {
			unowned := 0
			for _, pg := range g.Partitions {
				if !pg.Exists {
					continue
				}
				part := strconv.Itoa(pg.Partition)
				ch <- prom.MustNewConstMetric(d.lag, prom.GaugeValue, float64(pg.Stats.Lag), p.Topic, g.Name, part)
				if pg.Owner == "" {
					unowned++
					continue
				}
				ch <- prom.MustNewConstMetric(d.owner, prom.GaugeValue, 1, p.Topic, g.Name, part, pg.Owner)
			}
			ch <- prom.MustNewConstMetric(d.members, prom.GaugeValue, float64(len(g.Members)), p.Topic, g.Name)
			if len(g.Members) > 0 {
				ch <- prom.MustNewConstMetric(d.unowned, prom.GaugeValue, float64(unowned), p.Topic, g.Name)
			}
		}
	}
	return nil
}
