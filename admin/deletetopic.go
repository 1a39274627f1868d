package admin

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
)

// DeleteTopicResult says what [Admin.DeleteTopic] deleted.
type DeleteTopicResult struct {
	Topic string
	// Partitions is the number of partition topics deleted with it (a
	// partitioned topic: "{topic#0}", "{topic#1}", ...).
	Partitions int
	// Entries, DeadLetters and Delayed count the messages deleted: stream
	// entries, dead letters and delayed messages, over the topic and its
	// partitions.
	Entries, DeadLetters, Delayed int64
	// Groups are the consumer groups deleted with the streams, with the
	// pending entries each held (lost when forced).
	Groups []DeletedGroup
	// Keys are the Redis keys deleted, sorted.
	Keys []string
}

// DeletedGroup is a consumer group deleted with its topic.
type DeletedGroup struct {
	// Topic is the topic or partition topic the group was on.
	Topic, Name string
	Pending     int64
}

// auxFamilies are the auxiliary keys of a topic that go with it, as package
// keys names them after the topic's part ("{topic}:"): exact names and
// name prefixes.
var (
	auxExact    = []string{"dlq", "delayed", "overflow"}
	auxPrefixes = []string{"published:", "producer:", "consumer:", "lasterror:", "paused:", "members:", "ownership:", "dlq:dead:"}
)

// DeleteTopic deletes topic and everything of it: its stream with its
// consumer groups, its dead-letter stream, its delayed messages and every
// auxiliary key (keys.go: idempotency and producer keys, consumer leases,
// last errors, pause state, overflow counts, dead-letter markers,
// partition membership), and for a partitioned topic every partition topic
// with all of its own. It refuses, deleting nothing, while a consumer group
// has pending entries ([ErrWouldLoseEntries]) unless force. A topic of
// which nothing exists is an [ErrNoSuchTopic] error.
//
// The keys are found with SCAN on the node of the topic's slot and deleted
// with UNLINK (Redis frees a long stream in the background). Stop the
// topic's publishers and subscribers first: a Publisher adds a new stream,
// and a running subscriber recreates its group.
func (a *Admin) DeleteTopic(ctx context.Context, topic string, force bool) (DeleteTopicResult, error) {
	res := DeleteTopicResult{Topic: topic}
	if err := checkTopic(topic); err != nil {
		return res, err
	}
	n, err := a.countPartitions(ctx, topic)
	if err != nil {
		return res, err
	}
	res.Partitions = n
	topics := []string{topic}
	for i := range n {
		topics = append(topics, keys.Partition(topic, i))
	}
	stats, err := a.Stats(ctx, topics...)
	if err != nil {
		return res, err
	}
	var busy []string
	for _, s := range stats {
		res.Entries += s.Length
		res.DeadLetters += s.DeadLetters
		for _, g := range s.Groups {
			res.Groups = append(res.Groups, DeletedGroup{Topic: s.Topic, Name: g.Name, Pending: g.Pending})
			if g.Pending > 0 {
				busy = append(busy, fmt.Sprintf("group %s of %s holds %d", g.Name, s.Topic, g.Pending))
			}
		}
	}
	if len(busy) > 0 && !force {
		return res, fmt.Errorf("%w: topic %s has pending entries (%s); stop its subscribers, or force it",
			ErrWouldLoseEntries, topic, strings.Join(busy, ", "))
	}
	set := map[string]bool{}
	for _, t := range topics {
		found, err := a.topicKeys(ctx, t)
		if err != nil {
			return res, err
		}
		for _, k := range found {
			set[k] = true
		}
		delayed, err := a.client.ZCard(ctx, keys.Delayed(t)).Result()
		if err != nil {
			return res, fmt.Errorf("cannot count the delayed messages of topic %s: %w", t, err)
		}
		res.Delayed += delayed
	}
	if len(set) == 0 {
		return res, noSuchTopic{topic: topic}
	}
	for k := range set {
		res.Keys = append(res.Keys, k)
	}
	slices.Sort(res.Keys)
	const chunk = 500
	for rest := res.Keys; len(rest) > 0; {
		n := min(len(rest), chunk)
		pipe := a.client.Pipeline()
		for _, k := range rest[:n] {
			pipe.Unlink(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return res, fmt.Errorf("cannot delete the keys of topic %s: %w", topic, err)
		}
		rest = rest[n:]
	}
	return res, nil
}

// topicKeys lists the keys of topic that exist: its stream, its
// dead-letter stream, and its auxiliary keys (SCAN on the node of its
// slot; and the dead-letter markers of its stream in a dead-letter topic
// of another slot).
func (a *Admin) topicKeys(ctx context.Context, topic string) ([]string, error) {
	stream, dlq := keys.Stream(topic), a.deadLetterStream(topic)
	var out []string
	for _, k := range []string{stream, dlq} {
		n, err := a.client.Exists(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("cannot look up key %s: %w", k, err)
		}
		if n > 0 {
			out = append(out, k)
		}
	}
	aux, err := a.scan(ctx, stream, keys.AuxPattern(topic, ""))
	if err != nil {
		return nil, err
	}
	// The topic's part of its auxiliary keys, "{topic}:".
	prefix := strings.TrimSuffix(keys.DeadLetter(topic), "dlq")
	for _, k := range aux {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if slices.Contains(auxExact, rest) || slices.ContainsFunc(auxPrefixes, func(p string) bool { return strings.HasPrefix(rest, p) }) {
			out = append(out, k)
		}
	}
	// Markers of entries of this stream dead-lettered into a dead-letter
	// topic named by Options.DeadLetterTopic, outside the topic's keys.
	if dlqTopic := a.deadLetterTopic(topic); dlqTopic != keys.DeadLetter(topic) {
		markers, err := a.scan(ctx, dlq, keys.AuxPattern(dlqTopic, "dead:"+strconv.Itoa(len(stream))+":"+stream+":"))
		if err != nil {
			return nil, err
		}
		out = append(out, markers...)
	}
	return out, nil
}

// scan lists the keys matching pattern on the node that holds key's slot
// (every key of a topic's slot is on it).
func (a *Admin) scan(ctx context.Context, key, pattern string) ([]string, error) {
	var node redis.Cmdable = a.client
	if cc, ok := a.client.(*redis.ClusterClient); ok {
		master, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("cannot find the node of key %s: %w", key, err)
		}
		node = master
	}
	var out []string
	var cursor uint64
	for {
		found, next, err := node.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("cannot list keys (SCAN MATCH %s): %w", pattern, err)
		}
		out = append(out, found...)
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}
