package admin

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/reply"
	"github.com/millrace/millrace/internal/streams"
)

// lagCountCap bounds the entries counted to compute a lag Redis did not
// report: in the script (no entry leaves the server) and in the plain
// fallback (entries are transferred).
const (
	lagCountCap      = 1000
	lagCountCapPlain = 100
)

// statsScript reads one topic's figures. KEYS[1] is the stream, KEYS[2] its
// overflow counts (keys.Overflow), KEYS[3] the dead-letter stream (absent
// when it is in another Cluster slot: its length is then false and read
// apart), ARGV[1] the lag count cap, ARGV[3] the prefix of the topic's
// pause keys (keys.PausedPrefix: the key of a group, in the stream's slot,
// is the prefix, the name's length, ":" and the name), ARGV[2] the
// SAMPLES of MEMORY USAGE (-1 in the reply when the user may not run it). Entries are
// reduced to their IDs so payloads never leave the server. Replies are
// RESP2-shaped (flat field-value arrays, nil as false).
var statsScript = redis.NewScript(streams.LuaField + `
local now = redis.call('TIME')
local dlq = false
if KEYS[3] then dlq = redis.call('XLEN', KEYS[3]) end
local overflow = redis.call('HGETALL', KEYS[2])
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {now, dlq, false, {}, 0, overflow} end
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
  local paused = redis.pcall('XREVRANGE', ARGV[3] .. #name .. ':' .. name, '+', '-', 'COUNT', 1)
  if paused.err then paused = false end
  out[i] = {g, pending, consumers, nextid, counted, paused}
end
local mem = redis.pcall('MEMORY', 'USAGE', KEYS[1], 'SAMPLES', ARGV[2])
if type(mem) ~= 'number' then mem = -1 end
return {now, dlq, info, out, mem, overflow}
`)

// rawTopic is one topic's replies, shaped alike by both read paths.
type rawTopic struct {
	now    interface{}   // TIME reply
	dlq    int64         // XLEN of the dead-letter stream
	info   interface{}   // XINFO STREAM reply (entries as IDs), nil when no stream
	groups []interface{} // per group: {XINFO GROUPS item, XPENDING summary, XINFO CONSUMERS, next ID or nil, count or nil[, pause stream's last entry]}
	// countCap is the most entries a lag count counts: a count that
	// reaches it is a lower bound.
	countCap int64
	memory   int64             // MEMORY USAGE of the stream, -1 when refused
	overflow map[string]string // HGETALL of keys.Overflow
	// pauses is true when groups holds each group's pause state (the
	// script reads it; the plain path reads it in a second round trip).
	pauses bool
}

func (a *Admin) readScripted(ctx context.Context, topics []string) ([]rawTopic, error) {
	calls := make([]scriptCall, len(topics))
	var apart []int // topics whose dead-letter stream is in another slot
	for k, t := range topics {
		stream, dlq := keys.Stream(t), a.deadLetterStream(t)
		calls[k] = scriptCall{keys: []string{stream, keys.Overflow(t), dlq}, args: []interface{}{lagCountCap, memorySamples, keys.PausedPrefix(t)}}
		if keys.Slot(stream) != keys.Slot(dlq) {
			calls[k].keys = calls[k].keys[:2]
			apart = append(apart, k)
		}
	}
	cmds, err := evalPipelined(ctx, a.client, statsScript, calls)
	if err != nil {
		return nil, err
	}
	raws := make([]rawTopic, len(topics))
	for k, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return nil, fmt.Errorf("cannot read topic %s: %w", topics[k], err)
		}
		parts, _ := cmd.Val().([]interface{})
		if len(parts) != 6 {
			return nil, fmt.Errorf("cannot read topic %s: unexpected script reply %v", topics[k], cmd.Val())
		}
		dlq, _ := reply.Int(parts[1])
		groups, _ := parts[3].([]interface{})
		memory, _ := reply.Int(parts[4])
		raws[k] = rawTopic{now: parts[0], dlq: dlq, info: parts[2], groups: groups, countCap: lagCountCap, memory: memory,
			overflow: flatMap(parts[5]), pauses: true}
	}
	if len(apart) == 0 {
		return raws, nil
	}
	pipe := a.client.Pipeline()
	lens := make([]*redis.IntCmd, len(apart))
	for j, k := range apart {
		lens[j] = pipe.XLen(ctx, a.deadLetterStream(topics[k]))
	}
	_, _ = pipe.Exec(ctx)
	for j, k := range apart {
		n, err := lens[j].Result()
		if err != nil && !rediserr.IsNil(err) {
			return nil, fmt.Errorf("cannot read the dead letters of topic %s: %w", topics[k], err)
		}
		raws[k].dlq = n
	}
	return raws, nil
}

// readPlain reads the same replies as statsScript with plain commands: the
// stream and its groups first, then per group its PEL summary, consumers and
// next entry.
func (a *Admin) readPlain(ctx context.Context, topics []string) ([]rawTopic, error) {
	pipe := a.client.Pipeline()
	now := pipe.Time(ctx)
	type first struct{ dlq, overflow, info, groups *redis.Cmd }
	firsts := make([]first, len(topics))
	for k, t := range topics {
		firsts[k] = first{
			dlq:      keyCmd(ctx, pipe, 1, "xlen", a.deadLetterStream(t)),
			overflow: keyCmd(ctx, pipe, 1, "hgetall", keys.Overflow(t)),
			info:     keyCmd(ctx, pipe, 2, "xinfo", "stream", keys.Stream(t)),
			groups:   keyCmd(ctx, pipe, 2, "xinfo", "groups", keys.Stream(t)),
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
	memories := make([]*redis.Cmd, len(topics))
	infos := make([][]interface{}, len(topics))
	pipe = a.client.Pipeline()
	queued := false
	for k, t := range topics {
		f := firsts[k]
		dlq, err := f.dlq.Int64()
		if err != nil && !rediserr.IsNil(err) {
			return nil, fmt.Errorf("cannot read the dead letters of topic %s: %w", t, err)
		}
		if err := f.overflow.Err(); err != nil && !rediserr.IsNil(err) {
			return nil, fmt.Errorf("cannot read the overflow counts of topic %s: %w", t, err)
		}
		raws[k] = rawTopic{now: nowReply, dlq: dlq, countCap: lagCountCapPlain, overflow: flatMap(f.overflow.Val())}
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
		memories[k] = keyCmd(ctx, pipe, 2, "memory", "usage", keys.Stream(t), "samples", memorySamples)
		queued = true
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
				pending:   keyCmd(ctx, pipe, 1, "xpending", keys.Stream(t), name),
				consumers: keyCmd(ctx, pipe, 2, "xinfo", "consumers", keys.Stream(t), name),
				after:     keyCmd(ctx, pipe, 1, "xrange", keys.Stream(t), "("+last, "+", "count", n),
			})
			queued = true
		}
	}
	if queued {
		_, _ = pipe.Exec(ctx)
	}
	for k, t := range topics {
		if m := memories[k]; m != nil {
			raws[k].memory = -1
			if n, err := m.Int64(); err == nil {
				raws[k].memory = n
			} else if !rediserr.IsNoPerm(err) && !rediserr.IsUnknownCommand(err) && !rediserr.IsNil(err) {
				return nil, fmt.Errorf("cannot read the memory of topic %s: %w", t, err)
			}
		}
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

// flatMap is a flat field-value reply (HGETALL in RESP2 shape, or a RESP3
// map) as a map of strings.
func flatMap(v interface{}) map[string]string {
	out := map[string]string{}
	for k, v := range reply.Map(v) {
		out[k] = reply.String(v)
	}
	return out
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
