package streams

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/reply"
)

// Trimming by count (XADD MAXLEN, XTRIM MAXLEN) removes the oldest entries
// whether or not every consumer group has read them. A group left behind
// the stream's first entry has lost the entries between its position and
// that entry; Redis 7 still counts them in the group's lag (entries-added
// minus the group's entries-read), so the lag autoscalers read stays too
// high for as long as the group does not read. SettleDropped counts those
// entries per group and moves each such group to just before the first
// entry with the right ENTRIESREAD: its lag is then the stream's length,
// and the next trim counts only what it removed.

// settleScript counts and settles what trimming took from the groups of
// stream KEYS[1] (see above), adding each group's loss to field
// ARGV[1]..group of the hash KEYS[2]. Reply: flat {group, dropped, ...}
// for every group moved, dropped -1 when Redis did not know what the group
// had read. A group whose entries-read Redis does not know is taken to have
// read nothing when it is at 0-0 (it has read no entry), and otherwise what
// the lag Redis works out implies (right unless something was trimmed past
// it since it was moved without ENTRIESREAD); it is given that ENTRIESREAD
// without moving, so that from then on its losses are counted exactly.
// Nothing before Redis 7.0 (no entries-added, no ENTRIESREAD).
var settleScript = redis.NewScript(LuaField + LuaIDBefore + `
local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
if info.err then
  if string.find(info.err, 'no such key', 1, true) then return {} end
  return info
end
local added, length, first = field(info, 'entries-added'), field(info, 'length'), field(info, 'first-entry')
if not added or length == 0 or not first then return {} end
first = first[1]
local ms, seq = string.match(first, '^(%d+)-(%d+)$')
local prev
if seq ~= '0' then
  prev = ms .. '-' .. string.format('%d', tonumber(seq) - 1)
elseif ms ~= '0' then
  prev = string.format('%d', tonumber(ms) - 1) .. '-18446744073709551615'
else
  return {}
end
local gone = added - length
local out = {}
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, last = field(g, 'name'), field(g, 'last-delivered-id')
  local read, lag = field(g, 'entries-read'), field(g, 'lag')
  local pin = false
  if not read and last == '0-0' then
    read, pin = 0, true
  elseif not read and lag then
    read, pin = added - lag, true
  end
  if before(last, prev) and (not read or read < gone) then
    local lost = -1
    if read then lost = gone - read end
    redis.call('XGROUP', 'SETID', KEYS[1], name, prev, 'ENTRIESREAD', string.format('%d', gone))
    if lost > 0 then redis.call('HINCRBY', KEYS[2], ARGV[1] .. name, lost) end
    out[#out + 1] = name
    out[#out + 1] = lost
  elseif pin then
    redis.call('XGROUP', 'SETID', KEYS[1], name, last, 'ENTRIESREAD', string.format('%d', read))
  end
end
return out
`)

// Dropped is what trimming took from one consumer group: Entries it had
// not read, -1 when Redis did not know how many (the group had been moved
// without ENTRIESREAD, or never read).
type Dropped struct {
	Group   string
	Entries int64
}

// SettleDropped counts, per consumer group of stream, the entries trimmed
// before the group read them, adds them to field fieldPrefix+group of the
// hash counts (in the stream's Cluster slot), and moves each such group to
// just before the stream's first entry so that the lag Redis reports is
// right again. Groups that lost nothing are not in the result. A stream that
// does not exist, or Redis before 7.0, has nothing to settle.
func SettleDropped(ctx context.Context, c redis.Scripter, stream, counts, fieldPrefix string) ([]Dropped, error) {
	res, err := settleScript.Run(ctx, c, []string{stream, counts}, fieldPrefix).Slice()
	if err != nil {
		return nil, err
	}
	if len(res)%2 != 0 {
		return nil, fmt.Errorf("unexpected reply %v", res)
	}
	out := make([]Dropped, 0, len(res)/2)
	for i := 0; i < len(res); i += 2 {
		name, _ := res[i].(string)
		n, ok := reply.Int(res[i+1])
		if !ok {
			return nil, fmt.Errorf("unexpected reply %v", res)
		}
		out = append(out, Dropped{Group: name, Entries: n})
	}
	return out, nil
}
