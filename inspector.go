package millrace

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/reply"
)

// Inspector reads the state of topics for operators: stream length, consumer
// groups with their lag, pending entries and consumers, and dead-letter
// depth. It only sends cheap commands (XINFO STREAM, XINFO GROUPS, XINFO
// CONSUMERS, XPENDING summary, XRANGE ... COUNT 1, XLEN), never XINFO STREAM
// FULL, so it can run all day, e.g. behind a Prometheus scrape.
//
// The figures of one topic are read by one Lua script (EVALSHA), so they are
// a consistent snapshot and all topics of one call take one pipelined round
// trip. When the server refuses scripts (an ACL user without @scripting), the
// Inspector falls back to plain commands in two round trips and remembers it.
//
// An Inspector is safe for concurrent use. It borrows client and never
// closes it.
type Inspector struct {
	client   redis.UniversalClient
	noScript atomic.Bool // scripting was refused: use plain commands
}

// NewInspector returns an Inspector over client.
func NewInspector(client redis.UniversalClient) *Inspector {
	return &Inspector{client: client}
}

// TopicStats is a snapshot of one topic.
type TopicStats struct {
	Topic string
	// Exists is false when the topic has no stream (never published to, or
	// deleted). Its dead letters are still counted.
	Exists bool
	// Length is the number of entries in the stream (XLEN).
	Length int64
	// FirstEntryID and LastEntryID are the oldest and newest entries, ""
	// when the stream is empty; the times are the times in those IDs.
	FirstEntryID   string
	FirstEntryTime time.Time
	LastEntryID    string
	LastEntryTime  time.Time
	// LastGeneratedID is the last ID the stream handed out, even if that
	// entry was deleted since.
	LastGeneratedID string
	// EntriesAdded counts every entry ever added, -1 before Redis 7.0.
	EntriesAdded int64
	// Groups are the topic's consumer groups, sorted by name.
	Groups []GroupStats
	// DeadLetterTopic is the dead-letter stream read for DeadLetters, by
	// default DeadLetterTopic(Topic).
	DeadLetterTopic string
	// DeadLetters is the length of the dead-letter stream.
	DeadLetters int64
	// Time is the server's clock when the snapshot was taken; the ages in
	// GroupStats are measured against it.
	Time time.Time
}

// LagSource says how [GroupStats.Lag] was obtained.
type LagSource string

const (
	// LagReported is Redis's own figure (XINFO GROUPS lag, Redis 7.0+).
	LagReported LagSource = "redis"
	// LagComputed is exact, computed because Redis reported no lag (a group
	// set to an arbitrary ID, entries deleted, or Redis before 7.0).
	LagComputed LagSource = "computed"
	// LagLowerBound means the group is at least Lag entries behind: the
	// count stopped at a cap to keep the command cheap.
	LagLowerBound LagSource = "lower-bound"
)

// GroupStats is a snapshot of one consumer group.
type GroupStats struct {
	Name string
	// LastDeliveredID is the last entry handed to any consumer of the group.
	LastDeliveredID string
	// EntriesRead is Redis's logical read counter, -1 when unknown.
	EntriesRead int64
	// Lag is how many entries of the stream the group has not read yet.
	Lag       int64
	LagSource LagSource
	// Pending counts the entries delivered but not acknowledged (the PEL).
	Pending int64
	// OldestPendingID is the oldest pending entry, "" when none;
	// OldestPendingAge is the age of that entry (from the time in its ID).
	OldestPendingID  string
	OldestPendingAge time.Duration
	// NextUndeliveredID is the first entry after LastDeliveredID, "" when the
	// group is caught up; OldestUndeliveredAge is its age: how long the
	// oldest waiting message has waited (queue latency).
	NextUndeliveredID    string
	OldestUndeliveredAge time.Duration
	// Consumers are the group's consumers, sorted by name.
	Consumers []ConsumerStats
}

// ConsumerStats is one consumer of a group (XINFO CONSUMERS).
type ConsumerStats struct {
	Name string
	// Pending counts the entries the consumer holds unacknowledged.
	Pending int64
	// Idle is the time since the consumer's last interaction. From Redis 7.2
	// on an empty read counts too, so a long Idle means a dead consumer;
	// before 7.2 it is the time since the consumer last got an entry.
	Idle time.Duration
	// Inactive is the time since the consumer last read or claimed an
	// entry; -1 when never or when Redis is older than 7.2.
	Inactive time.Duration
}

// PendingEntry is one entry of a group's pending entries list.
type PendingEntry struct {
	ID       string
	Consumer string
	// Idle is the time since the entry was last delivered.
	Idle time.Duration
	// Deliveries is Redis's delivery counter of the entry.
	Deliveries int64
}

// lagCountCap bounds the entries counted to compute a lag Redis did not
// report: in the script (no entry leaves the server) and in the plain
// fallback (entries are transferred).
const (
	lagCountCap      = 1000
	lagCountCapPlain = 100
)

// statsScript reads one topic's figures. KEYS[1] is the stream, KEYS[2] the
// dead-letter stream, ARGV[1] the lag count cap. Entries are reduced to their
// IDs so payloads never leave the server. Replies are RESP2-shaped (flat
// field-value arrays, nil as false).
var statsScript = redis.NewScript(`
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
local now = redis.call('TIME')
local dlq = redis.call('XLEN', KEYS[2])
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {now, dlq, false, {}} end
if kind ~= 'stream' then
  return redis.error_reply('WRONGTYPE key ' .. KEYS[1] .. ' holds a ' .. kind .. ', not a stream')
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if (info[i] == 'first-entry' or info[i] == 'last-entry') and info[i + 1] then
    info[i + 1] = info[i + 1][1]
  end
end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local out = {}
for i, g in ipairs(groups) do
  local name = field(g, 'name')
  local last = field(g, 'last-delivered-id')
  local lag = field(g, 'lag')
  local pending = redis.call('XPENDING', KEYS[1], name)
  local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], name)
  local nextid, counted = false, false
  local n = 1
  if not lag then n = tonumber(ARGV[1]) end
  local after = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', n)
  if after[1] then nextid = after[1][1] end
  if not lag then counted = #after end
  out[i] = {g, pending, consumers, nextid, counted}
end
return {now, dlq, info, out}
`)

// Topic returns a snapshot of topic.
func (i *Inspector) Topic(ctx context.Context, topic string) (TopicStats, error) {
	stats, err := i.Stats(ctx, topic)
	if err != nil {
		return TopicStats{}, err
	}
	return stats[0], nil
}

// Stats returns a snapshot of each topic, in the order given, in one
// pipelined round trip (two without scripting).
func (i *Inspector) Stats(ctx context.Context, topics ...string) ([]TopicStats, error) {
	for _, t := range topics {
		if t == "" {
			return nil, ErrEmptyTopic
		}
	}
	if len(topics) == 0 {
		return nil, nil
	}
	if !i.noScript.Load() {
		raws, err := i.readScripted(ctx, topics)
		if err == nil {
			return parseTopics(topics, raws)
		}
		if !rediserr.IsScriptRefused(err) {
			return nil, err
		}
		i.noScript.Store(true)
	}
	raws, err := i.readPlain(ctx, topics)
	if err != nil {
		return nil, err
	}
	return parseTopics(topics, raws)
}

// rawTopic is one topic's replies, shaped alike by both read paths.
type rawTopic struct {
	now    interface{}   // TIME reply
	dlq    int64         // XLEN of the dead-letter stream
	info   interface{}   // XINFO STREAM reply (entries as IDs), nil when no stream
	groups []interface{} // per group: {XINFO GROUPS item, XPENDING summary, XINFO CONSUMERS, next ID or nil, count or nil}
	// countCap is the most entries a lag count counts: a count that
	// reaches it is a lower bound.
	countCap int64
}

func (i *Inspector) readScripted(ctx context.Context, topics []string) ([]rawTopic, error) {
	calls := make([]scriptCall, len(topics))
	for k, t := range topics {
		calls[k] = scriptCall{keys: []string{streamKey(t), streamKey(DeadLetterTopic(t))}, args: []interface{}{lagCountCap}}
	}
	cmds, err := evalPipelined(ctx, i.client, statsScript, calls)
	if err != nil {
		return nil, err
	}
	raws := make([]rawTopic, len(topics))
	for k, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return nil, fmt.Errorf("cannot read topic %s: %w", topics[k], err)
		}
		parts, _ := cmd.Val().([]interface{})
		if len(parts) != 4 {
			return nil, fmt.Errorf("cannot read topic %s: unexpected script reply %v", topics[k], cmd.Val())
		}
		dlq, _ := reply.Int(parts[1])
		groups, _ := parts[3].([]interface{})
		raws[k] = rawTopic{now: parts[0], dlq: dlq, info: parts[2], groups: groups, countCap: lagCountCap}
	}
	return raws, nil
}

// readPlain reads the same replies as statsScript with plain commands: the
// stream and its groups first, then per group its PEL summary, consumers and
// next entry.
func (i *Inspector) readPlain(ctx context.Context, topics []string) ([]rawTopic, error) {
	pipe := i.client.Pipeline()
	now := pipe.Time(ctx)
	type first struct{ dlq, info, groups *redis.Cmd }
	firsts := make([]first, len(topics))
	for k, t := range topics {
		firsts[k] = first{
			dlq:    keyCmd(ctx, pipe, 1, "xlen", streamKey(DeadLetterTopic(t))),
			info:   keyCmd(ctx, pipe, 2, "xinfo", "stream", streamKey(t)),
			groups: keyCmd(ctx, pipe, 2, "xinfo", "groups", streamKey(t)),
		}
	}
	_, _ = pipe.Exec(ctx)
	if err := now.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the server time: %w", err)
	}
	nowReply := []interface{}{strconv.FormatInt(now.Val().Unix(), 10), strconv.FormatInt(int64(now.Val().Nanosecond()/1000), 10)}

	raws := make([]rawTopic, len(topics))
	type second struct{ pending, consumers, after *redis.Cmd }
	seconds := make([][]second, len(topics))
	infos := make([][]interface{}, len(topics))
	pipe = i.client.Pipeline()
	queued := false
	for k, t := range topics {
		f := firsts[k]
		dlq, err := f.dlq.Int64()
		if err != nil && !rediserr.IsNil(err) {
			return nil, fmt.Errorf("cannot read the dead letters of topic %s: %w", t, err)
		}
		raws[k] = rawTopic{now: nowReply, dlq: dlq, countCap: lagCountCapPlain}
		if err := f.info.Err(); err != nil {
			if rediserr.IsNoSuchKey(err) {
				continue
			}
			return nil, fmt.Errorf("cannot read topic %s: %w", t, err)
		}
		if err := f.groups.Err(); err != nil {
			return nil, fmt.Errorf("cannot read the groups of topic %s: %w", t, err)
		}
		raws[k].info = entriesAsIDs(f.info.Val())
		groups, _ := f.groups.Val().([]interface{})
		infos[k] = groups
		for _, g := range groups {
			m := reply.Map(g)
			name, last := reply.String(m["name"]), reply.String(m["last-delivered-id"])
			n := int64(1)
			if m["lag"] == nil {
				n = lagCountCapPlain
			}
			seconds[k] = append(seconds[k], second{
				pending:   keyCmd(ctx, pipe, 1, "xpending", streamKey(t), name),
				consumers: keyCmd(ctx, pipe, 2, "xinfo", "consumers", streamKey(t), name),
				after:     keyCmd(ctx, pipe, 1, "xrange", streamKey(t), "("+last, "+", "count", n),
			})
			queued = true
		}
	}
	if queued {
		_, _ = pipe.Exec(ctx)
	}
	for k, t := range topics {
		for j, s := range seconds[k] {
			for _, c := range []*redis.Cmd{s.pending, s.consumers, s.after} {
				if err := c.Err(); err != nil && !rediserr.IsNil(err) {
					return nil, fmt.Errorf("cannot read a group of topic %s: %w", t, err)
				}
			}
			after, _ := s.after.Val().([]interface{})
			var next, counted interface{}
			if len(after) > 0 {
				if e, ok := after[0].([]interface{}); ok && len(e) > 0 {
					next = e[0]
				}
			}
			if reply.Map(infos[k][j])["lag"] == nil {
				counted = int64(len(after))
			}
			raws[k].groups = append(raws[k].groups, []interface{}{infos[k][j], s.pending.Val(), s.consumers.Val(), next, counted})
		}
	}
	return raws, nil
}

// keyCmd queues a raw command whose key is argument keyPos, so that a
// Cluster client routes it to the key's node.
func keyCmd(ctx context.Context, pipe redis.Pipeliner, keyPos int8, args ...interface{}) *redis.Cmd {
	cmd := redis.NewCmd(ctx, args...)
	cmd.SetFirstKeyPos(keyPos)
	_ = pipe.Process(ctx, cmd)
	return cmd
}

// entriesAsIDs replaces the first and last entries of an XINFO STREAM reply
// by their IDs, as the script does.
func entriesAsIDs(info interface{}) interface{} {
	m := reply.Map(info)
	for _, f := range []string{"first-entry", "last-entry"} {
		if e, ok := m[f].([]interface{}); ok && len(e) > 0 {
			m[f] = e[0]
		}
	}
	return m
}

func parseTopics(topics []string, raws []rawTopic) ([]TopicStats, error) {
	out := make([]TopicStats, len(topics))
	for k, t := range topics {
		s, err := parseTopic(t, raws[k])
		if err != nil {
			return nil, fmt.Errorf("cannot read topic %s: %w", t, err)
		}
		out[k] = s
	}
	return out, nil
}

func parseTopic(topic string, raw rawTopic) (TopicStats, error) {
	s := TopicStats{
		Topic:           topic,
		DeadLetterTopic: DeadLetterTopic(topic),
		DeadLetters:     raw.dlq,
		EntriesAdded:    -1,
		Time:            reply.Time(raw.now),
	}
	if raw.info == nil {
		return s, nil
	}
	info := reply.Map(raw.info)
	s.Exists = true
	s.Length, _ = reply.Int(info["length"])
	s.LastGeneratedID = reply.String(info["last-generated-id"])
	if n, ok := reply.Int(info["entries-added"]); ok {
		s.EntriesAdded = n
	}
	s.FirstEntryID = reply.String(info["first-entry"])
	s.LastEntryID = reply.String(info["last-entry"])
	s.FirstEntryTime, _ = entryid.Time(s.FirstEntryID)
	s.LastEntryTime, _ = entryid.Time(s.LastEntryID)
	if s.FirstEntryID == "" {
		s.FirstEntryTime = time.Time{}
	}
	if s.LastEntryID == "" {
		s.LastEntryTime = time.Time{}
	}
	for _, g := range raw.groups {
		parts, _ := g.([]interface{})
		if len(parts) != 5 {
			return s, fmt.Errorf("unexpected group reply %v", g)
		}
		s.Groups = append(s.Groups, parseGroup(s, parts, raw.countCap))
	}
	slices.SortFunc(s.Groups, func(a, b GroupStats) int { return strings.Compare(a.Name, b.Name) })
	return s, nil
}

func parseGroup(s TopicStats, parts []interface{}, countCap int64) GroupStats {
	info := reply.Map(parts[0])
	g := GroupStats{
		Name:              reply.String(info["name"]),
		LastDeliveredID:   reply.String(info["last-delivered-id"]),
		EntriesRead:       -1,
		NextUndeliveredID: reply.String(parts[3]),
	}
	if n, ok := reply.Int(info["entries-read"]); ok {
		g.EntriesRead = n
	}
	g.Pending, _ = reply.Int(info["pending"])

	counted, hasCount := reply.Int(parts[4])
	lag, hasLag := reply.Int(info["lag"])
	switch {
	case hasLag:
		g.Lag, g.LagSource = lag, LagReported
	case g.NextUndeliveredID == "":
		g.Lag, g.LagSource = 0, LagComputed
	case s.FirstEntryID != "" && entryid.Compare(g.LastDeliveredID, s.FirstEntryID) < 0:
		g.Lag, g.LagSource = s.Length, LagComputed
	case hasCount && counted < countCap:
		g.Lag, g.LagSource = counted, LagComputed
	default:
		g.Lag, g.LagSource = counted, LagLowerBound
	}

	if summary, ok := parts[1].([]interface{}); ok && len(summary) >= 2 {
		if id := reply.String(summary[1]); id != "" {
			g.OldestPendingID = id
			g.OldestPendingAge = ageAt(s.Time, id)
		}
	}
	if g.NextUndeliveredID != "" {
		g.OldestUndeliveredAge = ageAt(s.Time, g.NextUndeliveredID)
	}
	consumers, _ := parts[2].([]interface{})
	for _, c := range consumers {
		m := reply.Map(c)
		cs := ConsumerStats{Name: reply.String(m["name"]), Inactive: -1}
		cs.Pending, _ = reply.Int(m["pending"])
		if ms, ok := reply.Int(m["idle"]); ok {
			cs.Idle = time.Duration(ms) * time.Millisecond
		}
		if ms, ok := reply.Int(m["inactive"]); ok && ms >= 0 {
			cs.Inactive = time.Duration(ms) * time.Millisecond
		}
		g.Consumers = append(g.Consumers, cs)
	}
	slices.SortFunc(g.Consumers, func(a, b ConsumerStats) int { return strings.Compare(a.Name, b.Name) })
	return g
}

// ageAt is how old the entry id was at now, never negative.
func ageAt(now time.Time, id string) time.Duration {
	t, ok := entryid.Time(id)
	if !ok || now.IsZero() {
		return 0
	}
	return max(now.Sub(t), 0)
}

// Topics lists the topics in the database, sorted: every stream, and the
// topic of every dead-letter stream ("{orders}:dlq" lists "orders"), so a
// topic whose stream is gone but whose dead letters are not still shows.
// Dead-letter streams themselves are not listed. It uses SCAN ... TYPE
// stream, on every master of a Cluster: O(keys in the database), so call it
// rarely on large databases.
func (i *Inspector) Topics(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	set := map[string]bool{}
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			found, next, err := c.ScanType(ctx, cursor, "", 1000, "stream").Result()
			if err != nil {
				return fmt.Errorf("cannot list streams (SCAN TYPE stream): %w", err)
			}
			mu.Lock()
			for _, k := range found {
				if base, ok := keys.DeadLetterBase(k); ok {
					k = base
				}
				set[k] = true
			}
			mu.Unlock()
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	var err error
	if cc, ok := i.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, i.client)
	}
	if err != nil {
		return nil, err
	}
	topics := make([]string, 0, len(set))
	for t := range set {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	return topics, nil
}

// IsDeadLetterTopic reports whether key is the default dead-letter stream
// of a topic, and returns that topic.
func IsDeadLetterTopic(key string) (topic string, ok bool) { return keys.DeadLetterBase(key) }

// Pending lists up to count entries of group's pending entries list, oldest
// first (XPENDING key group - + count).
func (i *Inspector) Pending(ctx context.Context, topic, group string, count int64) ([]PendingEntry, error) {
	if topic == "" {
		return nil, ErrEmptyTopic
	}
	if count <= 0 {
		count = 100
	}
	res, err := i.client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: streamKey(topic), Group: group, Start: "-", End: "+", Count: count}).Result()
	if err != nil && !rediserr.IsNil(err) {
		if rediserr.IsNoGroup(err) {
			return nil, fmt.Errorf("%w: %s on topic %s", ErrNoSuchGroup, group, topic)
		}
		return nil, fmt.Errorf("cannot read the pending entries of group %s on topic %s: %w", group, topic, err)
	}
	out := make([]PendingEntry, len(res))
	for k, p := range res {
		out[k] = PendingEntry{ID: p.ID, Consumer: p.Consumer, Idle: p.Idle, Deliveries: p.RetryCount}
	}
	return out, nil
}

// scriptCall is one call of a script in a pipeline.
type scriptCall struct {
	keys []string
	args []interface{}
}

// evalPipelined runs script once per call in one pipeline (EVALSHA), loading
// the script and running again the calls that found it missing (NOSCRIPT).
// The returned commands carry each call's reply or error; the error is only
// for a failure to load the script.
func evalPipelined(ctx context.Context, client redis.UniversalClient, script *redis.Script, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	run := func(idx []int) {
		pipe := client.Pipeline()
		for _, k := range idx {
			cmds[k] = script.EvalSha(ctx, pipe, calls[k].keys, calls[k].args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	all := make([]int, len(calls))
	for k := range all {
		all[k] = k
	}
	run(all)
	var missing []int
	for k, c := range cmds {
		if err := c.Err(); err != nil && rediserr.IsNoScript(err) {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return cmds, nil
	}
	if err := script.Load(ctx, client).Err(); err != nil {
		return nil, fmt.Errorf("cannot load script: %w", err)
	}
	run(missing)
	return cmds, nil
}
