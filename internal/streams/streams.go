// Package streams holds the Redis operations that both the adapter and the
// operator API run: creating a consumer group, pruning idle consumers and
// moving due delayed messages. Each has one implementation here.
package streams

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/reply"
)

// CreateGroup creates group on stream at start (XGROUP CREATE ... MKSTREAM),
// creating the stream if it is missing. exists is true, and nothing
// changed, when the group was there already.
func CreateGroup(ctx context.Context, c redis.Cmdable, stream, group, start string) (exists bool, err error) {
	err = c.XGroupCreateMkStream(ctx, stream, group, start).Err()
	if rediserr.IsBusyGroup(err) {
		return true, nil
	}
	return false, err
}

// Consumer is a consumer of a group as XINFO CONSUMERS reports it.
type Consumer struct {
	Name    string
	Pending int64
	Idle    time.Duration
}

// LuaField defines field(flat, name) for scripts: the value of name in a
// flat field-value reply (XINFO STREAM, XINFO GROUPS in RESP2 shape), nil
// when absent.
const LuaField = `
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
`

// LuaIDBefore defines before(a, b) for scripts: whether entry ID a
// ("<ms>-<seq>", no leading zeros) sorts before entry ID b. The parts are
// compared as decimal strings: a sequence number may exceed what a Lua
// number holds exactly.
const LuaIDBefore = `
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end
`

// pruneScript deletes the consumers of a group that are idle at least
// ARGV[2] ms and hold no pending entry, in one atomic step, so no entry can
// become pending at a consumer between the check and XGROUP DELCONSUMER
// (which would drop it). KEYS[1] is the stream, ARGV[1] the group.
var pruneScript = redis.NewScript(`
local removed, kept = {}, {}
local minIdle = tonumber(ARGV[2])
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1]
    elseif c[i] == 'pending' then pending = c[i + 1]
    elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if idle >= minIdle then
    if pending == 0 then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
      table.insert(removed, name)
    else
      table.insert(kept, {name, pending, idle})
    end
  end
end
return {removed, kept}
`)

// PruneConsumers deletes the consumers of group on stream that have been
// idle for at least idle and hold no pending entry, atomically: it never
// drops a pending entry. kept are the consumers idle that long that still
// hold entries. A missing group or stream is a NOGROUP or "no such key"
// error (see rediserr).
func PruneConsumers(ctx context.Context, c redis.Scripter, stream, group string, idle time.Duration) (removed []string, kept []Consumer, err error) {
	out, err := pruneScript.Run(ctx, c, []string{stream}, group, idle.Milliseconds()).Slice()
	if err != nil {
		return nil, nil, err
	}
	if len(out) != 2 {
		return nil, nil, fmt.Errorf("unexpected prune reply %v", out)
	}
	names, _ := out[0].([]interface{})
	for _, r := range names {
		removed = append(removed, reply.String(r))
	}
	held, _ := out[1].([]interface{})
	for _, k := range held {
		parts, _ := k.([]interface{})
		if len(parts) != 3 {
			continue
		}
		c := Consumer{Name: reply.String(parts[0])}
		c.Pending, _ = reply.Int(parts[1])
		ms, _ := reply.Int(parts[2])
		c.Idle = time.Duration(ms) * time.Millisecond
		kept = append(kept, c)
	}
	return removed, kept, nil
}
