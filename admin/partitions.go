package admin

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/membership"
)

// PartitionedTopic is a snapshot of a partitioned topic (package
// partition): the figures of its partitions and, per consumer group, who
// owns which partition.
type PartitionedTopic struct {
	Topic string
	// Partitions are the snapshots of the partition topics, partition i
	// ("{topic#i}") at index i.
	Partitions []TopicStats
	// Groups are the consumer groups found on the partitions, sorted by
	// name.
	Groups []PartitionedGroup
}

// PartitionedGroup is one consumer group across the partitions of a topic.
type PartitionedGroup struct {
	Name string
	// Lag and Pending are the sums over the partitions; LagSource is the
	// least exact of the partitions' sources.
	Lag       int64
	LagSource LagSource
	Pending   int64
	// Partitions are the group on each partition, partition i at index i.
	Partitions []PartitionGroup
	// Members are the live members of the group (partition.BalancedSubscriber),
	// sorted by name; none when partitions are assigned by hand.
	Members []Member
}

// PartitionGroup is a group on one partition.
type PartitionGroup struct {
	Partition int
	// Exists is false when the group does not exist on this partition.
	Exists bool
	// Stats are the group's figures on the partition's stream.
	Stats GroupStats
	// Owner is the member that owns the partition, "" when none does.
	Owner string
}

// Member is a live member of a consumer group on a partitioned topic.
type Member struct {
	Name string
	// Partitions are the partitions it owns, ascending.
	Partitions []int
	// Of is the number of partitions of the topic it was configured with.
	Of int
	// Leaving is set while it hands its partitions over before it leaves.
	Leaving bool
	// ExpiresIn is how long its membership lasts unless renewed (a member
	// renews it every heartbeat, so it stays well above zero while the
	// member lives).
	ExpiresIn time.Duration
}

// Partitions returns a snapshot of the n partitions of topic; n <= 0
// counts them: the partition streams "{topic#0}", "{topic#1}", ... that
// exist, up to the first missing one (a subscriber creates its group, and
// so the stream, on every partition). It returns [ErrNotPartitioned] when
// there is none. It takes three round trips: counting, the partitions'
// figures (see [Admin.Stats]), the members.
func (a *Admin) Partitions(ctx context.Context, topic string, n int) (PartitionedTopic, error) {
	if err := checkTopic(topic); err != nil {
		return PartitionedTopic{}, err
	}
	if n <= 0 {
		var err error
		if n, err = a.countPartitions(ctx, topic); err != nil {
			return PartitionedTopic{}, err
		}
		if n == 0 {
			return PartitionedTopic{}, fmt.Errorf("%w: %s", ErrNotPartitioned, topic)
		}
	}
	parts := make([]string, n)
	for i := range parts {
		parts[i] = keys.Partition(topic, i)
	}
	stats, err := a.Stats(ctx, parts...)
	if err != nil {
		return PartitionedTopic{}, err
	}
	all, err := a.Partitioned(ctx, stats)
	if err != nil {
		return PartitionedTopic{}, err
	}
	return all[0], nil
}

// countPartitions counts the consecutive partition streams of topic, a
// pipeline of EXISTS per batch of candidates.
func (a *Admin) countPartitions(ctx context.Context, topic string) (int, error) {
	const batch = 64
	for from := 0; ; from += batch {
		pipe := a.client.Pipeline()
		cmds := make([]*redis.IntCmd, batch)
		for i := range cmds {
			cmds[i] = pipe.Exists(ctx, keys.Stream(keys.Partition(topic, from+i)))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, fmt.Errorf("cannot count the partitions of topic %s: %w", topic, err)
		}
		for i, cmd := range cmds {
			if cmd.Val() == 0 {
				return from + i, nil
			}
		}
	}
}

// Partitioned groups the snapshots of partition topics ("{topic#i}") among
// stats by partitioned topic, and reads the members of their groups in one
// pipelined round trip. Snapshots of other topics are left out; a partition
// missing from stats is reported as not existing. The result is sorted by
// topic.
func (a *Admin) Partitioned(ctx context.Context, stats []TopicStats) ([]PartitionedTopic, error) {
	byTopic := map[string]*PartitionedTopic{}
	var names []string
	for _, s := range stats {
		topic, i, ok := keys.SplitPartition(s.Topic)
		if !ok {
			continue
		}
		pt := byTopic[topic]
		if pt == nil {
			pt = &PartitionedTopic{Topic: topic}
			byTopic[topic] = pt
			names = append(names, topic)
		}
		for len(pt.Partitions) <= i {
			pt.Partitions = append(pt.Partitions, TopicStats{Topic: keys.Partition(topic, len(pt.Partitions))})
		}
		pt.Partitions[i] = s
	}
	slices.Sort(names)
	var pairs [][2]string
	for _, name := range names {
		pt := byTopic[name]
		pt.Groups = groupsOf(pt.Partitions)
		for _, g := range pt.Groups {
			pairs = append(pairs, [2]string{name, g.Name})
		}
	}
	views, err := membership.ReadMany(ctx, a.client, pairs)
	if err != nil {
		return nil, fmt.Errorf("cannot read the members of partitioned topics: %w", err)
	}
	out := make([]PartitionedTopic, 0, len(names))
	for _, name := range names {
		pt := byTopic[name]
		for i := range pt.Groups {
			pt.Groups[i].setMembers(views[0])
			views = views[1:]
		}
		out = append(out, *pt)
	}
	return out, nil
}

// groupsOf returns the groups found on partitions, with their figures per
// partition and summed.
func groupsOf(partitions []TopicStats) []PartitionedGroup {
	var names []string
	for _, p := range partitions {
		for _, g := range p.Groups {
			if !slices.Contains(names, g.Name) {
				names = append(names, g.Name)
			}
		}
	}
	slices.Sort(names)
	groups := make([]PartitionedGroup, len(names))
	for gi, name := range names {
		g := PartitionedGroup{Name: name, LagSource: LagReported, Partitions: make([]PartitionGroup, len(partitions))}
		for i, p := range partitions {
			g.Partitions[i].Partition = i
			at := slices.IndexFunc(p.Groups, func(s GroupStats) bool { return s.Name == name })
			if at < 0 {
				continue
			}
			s := p.Groups[at]
			g.Partitions[i].Exists, g.Partitions[i].Stats = true, s
			g.Lag += s.Lag
			g.Pending += s.Pending
			g.LagSource = leastExact(g.LagSource, s.LagSource)
		}
		groups[gi] = g
	}
	return groups
}

// leastExact is the less exact of two lag sources.
func leastExact(a, b LagSource) LagSource {
	rank := map[LagSource]int{LagReported: 0, LagComputed: 1, LagLowerBound: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// setMembers records the members of v and the partitions they own.
func (g *PartitionedGroup) setMembers(v membership.View) {
	for _, m := range v.Members {
		g.Members = append(g.Members, Member{
			Name: m.Name, Partitions: m.Owned, Of: m.Partitions, Leaving: m.Leaving, ExpiresIn: m.Expires.Sub(v.Time),
		})
		for _, p := range m.Owned {
			if p >= 0 && p < len(g.Partitions) && g.Partitions[p].Owner == "" {
				g.Partitions[p].Owner = m.Name
			}
		}
	}
}

// Members returns the live members of group on the partitioned topic,
// sorted by name, with the partitions each owns (one pipelined round trip).
func (a *Admin) Members(ctx context.Context, topic, group string) ([]Member, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	v, err := membership.Read(ctx, a.client, topic, group)
	if err != nil {
		return nil, fmt.Errorf("cannot read the members of group %s on topic %s: %w", group, topic, err)
	}
	var g PartitionedGroup
	g.setMembers(v)
	return g.Members, nil
}
