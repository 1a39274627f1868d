package streams

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/reply"
)

// Moving a consumer group (XGROUP CREATE at an ID, XGROUP SETID) keeps the
// lag Redis reports in XINFO GROUPS (Redis 7.0+) right, the figure
// autoscalers read (KEDA's redis-streams scaler, redis_exporter). Redis
// reports lag = entries-added - entries-read, and does not know a group's
// entries-read after a move unless it is given (ENTRIESREAD, Redis 7.0+):
// it then reports no lag (nil) until the group reads the stream's last
// entry, and a backlog looks like no work. Redis works it out itself only
// for a group placed before the stream's first entry, at its last entry or
// in an empty stream.
//
// So a move to an entry ID X passes ENTRIESREAD n, n the number of entries
// ever added up to and including X: entries-added minus the entries after X
// the stream holds. Redis then reports a lag of exactly the entries after X,
// and keeps it right as the group reads (each read adds one). What is
// counted:
//
//   - X before the first entry (StartOldest, "0"): nothing is passed; Redis
//     counts the entries trimmed before the first as read, which is right,
//     and keeps doing so if more are trimmed before the group reads.
//   - X at or after the stream's last ID ("$", an ID ahead of the stream),
//     or an empty stream: n is entries-added. For an ID ahead of the
//     stream, entries added later with IDs up to X are skipped by the group
//     yet counted in its lag, as Redis cannot know them in advance: the lag
//     is then too high (never too low) by the entries published in that
//     window, until the group is moved again.
//   - X inside the stream: the entries after X are counted with XREVRANGE,
//     up to movePage entries in the same script that moves the group
//     (atomic). A longer backlog is counted in further calls of movePage
//     entries each, so Redis is never blocked for long: the first call reads
//     entries-added and the stream's last ID L together, and the rest counts
//     the entries in (X, L]. Entries added meanwhile are after L and change
//     neither count, so n is exact. Entries after X trimmed while counting
//     (oldest first, so not yet counted) are left out of the lag as they
//     are out of the stream; an entry after X deleted with XDEL makes Redis
//     report nil anyway (below).
//
// Redis reports no lag for any group while a deleted entry (XDEL) lies
// ahead of its position; no ENTRIESREAD changes that. Before Redis 7.0
// (XINFO STREAM has no entries-added) the group is moved as before, without
// ENTRIESREAD: there is no lag to keep. A user whose ACL refuses the script
// or a command in it (XINFO STREAM, XREVRANGE) gets the plain XGROUP command
// too, and the lag Redis works out itself.

// movePage is the most entries one call counts: a script call counts about
// 250,000 entries a second (measured on Redis 7.0), so one page blocks the
// server for about 4ms.
const movePage = 1000

// moveScript creates (ARGV[1] "CREATE", with MKSTREAM) or moves ("SETID")
// group ARGV[2] of stream KEYS[1] to position ARGV[3] ("$", or an entry ID
// "<ms>-<seq>" without leading zeros), with the ENTRIESREAD that keeps
// Redis's lag right (see above). ARGV[4] is the most entries counted here;
// ARGV[5], when given, is the ENTRIESREAD to pass, counted by the caller.
// Replies: {"moved", entriesread or false}; {"exists"} for CREATE of an
// existing group; {"count", entries-added, last ID, oldest entry counted,
// counted} when more entries follow the position than ARGV[4]: the caller
// counts the rest and calls again with ARGV[5]. Errors are XGROUP's (NOGROUP,
// BUSYGROUP, no stream) or a refusal of the commands the script calls.
var moveScript = redis.NewScript(LuaField + LuaIDBefore + `
local op, group, pos, page = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local function move(read)
  local args = {'XGROUP', op, KEYS[1], group, pos}
  if op == 'CREATE' then args[#args + 1] = 'MKSTREAM' end
  if read then
    args[#args + 1] = 'ENTRIESREAD'
    args[#args + 1] = string.format('%d', read)
  end
  local r = redis.pcall(unpack(args))
  if type(r) == 'table' and r.err then
    if string.sub(r.err, 1, 9) == 'BUSYGROUP' then return {'exists'} end
    return r
  end
  return {'moved', read or false}
end
if ARGV[5] then return move(tonumber(ARGV[5])) end
local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
if info.err then
  if string.find(info.err, 'no such key', 1, true) then return move(nil) end
  return info
end
local added = field(info, 'entries-added')
if not added then return move(nil) end
local last = field(info, 'last-generated-id')
local first = field(info, 'first-entry')
local at = pos
if at == '$' then at = last end
if not before(at, last) or not first then return move(added) end
if before(at, first[1]) then return move(nil) end
local probe = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], group)
if op == 'CREATE' and not probe.err then return {'exists'} end
if op == 'SETID' and probe.err and string.sub(probe.err, 1, 7) == 'NOGROUP' then return probe end
local after = redis.call('XREVRANGE', KEYS[1], last, '(' .. at, 'COUNT', page)
if #after < page then return move(added - #after) end
return {'count', added, last, after[#after][1], #after}
`)

// countScript counts the entries of stream KEYS[1] after ARGV[2] and before
// ARGV[1] (both excluded), at most ARGV[3], newest first. Reply: {count,
// the oldest entry counted or false}.
var countScript = redis.NewScript(`
local after = redis.call('XREVRANGE', KEYS[1], '(' .. ARGV[1], '(' .. ARGV[2], 'COUNT', ARGV[3])
if #after == 0 then return {0, false} end
return {#after, after[#after][1]}
`)

// CreateGroupAt creates group on stream at start ("0", "$" or an entry ID),
// creating the stream if it is missing (XGROUP CREATE ... MKSTREAM), with
// the ENTRIESREAD that keeps the lag Redis reports right. exists is true,
// and nothing changed, when the group was there already.
func CreateGroupAt(ctx context.Context, c redis.Cmdable, stream, group, start string) (exists bool, err error) {
	exists, err = moveGroup(ctx, c, "CREATE", stream, group, start)
	if rediserr.IsBusyGroup(err) {
		return true, nil
	}
	return exists, err
}

// SetGroupID moves group on stream to id ("0", "$" or an entry ID) (XGROUP
// SETID), with the ENTRIESREAD that keeps the lag Redis reports right. A
// missing group or stream is a NOGROUP or "requires the key to exist" error
// (see rediserr).
func SetGroupID(ctx context.Context, c redis.Cmdable, stream, group, id string) error {
	_, err := moveGroup(ctx, c, "SETID", stream, group, id)
	return err
}

func moveGroup(ctx context.Context, c redis.Cmdable, op, stream, group, pos string) (exists bool, err error) {
	at, ok := canonicalPosition(pos)
	if !ok {
		// Not a position the script compares: Redis says what is wrong.
		return false, plainMove(ctx, c, op, stream, group, pos)
	}
	res, err := moveScript.Run(ctx, c, []string{stream}, op, group, at, movePage).Slice()
	if err != nil {
		if rediserr.IsScriptRefused(err) {
			return false, plainMove(ctx, c, op, stream, group, pos)
		}
		return false, err
	}
	switch reply.String(res[0]) {
	case "moved":
		return false, nil
	case "exists":
		return true, nil
	case "count":
		if len(res) != 5 {
			break
		}
		// The first call counted the newest entries, down to oldest;
		// count the rest, below it.
		added, _ := reply.Int(res[1])
		counted, _ := reply.Int(res[4])
		n, err := countAfter(ctx, c, stream, at, reply.String(res[3]))
		if err != nil {
			return false, err
		}
		res, err = moveScript.Run(ctx, c, []string{stream}, op, group, at, movePage, added-counted-n).Slice()
		if err != nil {
			return false, err
		}
		return reply.String(res[0]) == "exists", nil
	}
	return false, fmt.Errorf("unexpected reply %v moving consumer group %s of stream %s", res, group, stream)
}

// countAfter counts the entries of stream after at and before below (both
// excluded), movePage per call.
func countAfter(ctx context.Context, c redis.Cmdable, stream, at, below string) (int64, error) {
	var total int64
	for {
		res, err := countScript.Run(ctx, c, []string{stream}, below, at, movePage).Slice()
		if err != nil {
			return 0, fmt.Errorf("cannot count the entries of stream %s after %s: %w", stream, at, err)
		}
		if len(res) != 2 {
			return 0, fmt.Errorf("unexpected reply %v counting the entries of stream %s", res, stream)
		}
		n, _ := reply.Int(res[0])
		total += n
		if n < movePage {
			return total, nil
		}
		below = reply.String(res[1])
	}
}

// plainMove is the XGROUP command without ENTRIESREAD.
func plainMove(ctx context.Context, c redis.Cmdable, op, stream, group, pos string) error {
	if op == "CREATE" {
		return c.XGroupCreateMkStream(ctx, stream, group, pos).Err()
	}
	return c.XGroupSetID(ctx, stream, group, pos).Err()
}

// canonicalPosition writes pos as the script compares it: "$", or an entry
// ID "<ms>-<seq>" without leading zeros ("0" is "0-0").
func canonicalPosition(pos string) (string, bool) {
	if pos == "$" {
		return pos, true
	}
	ms, seq, ok := entryid.Parse(pos)
	if !ok {
		return "", false
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq, 10), true
}
