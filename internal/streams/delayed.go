package streams

import (
	"context"
	"encoding"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The delayed set of a topic (keys.Delayed) holds its delayed messages,
// scored by due time in Unix milliseconds. A member is "<unique id>\n"
// followed by the stream entry's fields and values, alternately, each as
// "<byte length>:<bytes>":
//
//	01HZX3K9...\n23:_watermill_message_uuid36:7c1c...8:metadata87:...7:payload12:{"order":42}
//
// EncodeDelayed writes that format; moveDueScript reads it.

// DelayedRawField is the one field of the entry added for a member of the
// delayed set that is not in the member format (written to the set by
// something else): the member as it was. Such an entry is delivered as a
// foreign entry rather than lost.
const DelayedRawField = "_millrace_delayed_raw"

// EncodeDelayed builds a member of the delayed set from a unique id and the
// flattened fields of a stream entry.
func EncodeDelayed(id string, flat []interface{}) (string, error) {
	var b strings.Builder
	b.WriteString(id)
	b.WriteByte('\n')
	for _, v := range flat {
		s, err := FieldString(v)
		if err != nil {
			return "", err
		}
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	return b.String(), nil
}

// FieldString is the bytes go-redis would send for a field or value v.
func FieldString(v interface{}) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case int:
		return strconv.FormatInt(int64(v), 10), nil
	case int8:
		return strconv.FormatInt(int64(v), 10), nil
	case int16:
		return strconv.FormatInt(int64(v), 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint8:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint16:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint32:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case time.Time:
		return v.Format(time.RFC3339Nano), nil
	case encoding.BinaryMarshaler:
		b, err := v.MarshalBinary()
		return string(b), err
	default:
		return "", fmt.Errorf("field value of type %T cannot be stored in a stream entry", v)
	}
}

// moveDueScript moves the due members of the delayed set KEYS[1] into the
// stream KEYS[2], at most ARGV[1] of them, oldest due first. It returns how
// many it moved and the milliseconds until the next member is due (-1 when
// the set is empty). Both keys are in one Cluster slot: the set's hash tag
// is the stream's name.
var moveDueScript = redis.NewScript(`
if #redis.call('ZRANGE', KEYS[1], 0, 0) == 0 then
  return {0, -1}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now), 'LIMIT', 0, tonumber(ARGV[1]))
local function fields(m)
  local nl = string.find(m, '\n', 1, true)
  if not nl then return nil end
  local out = {}
  local pos = nl + 1
  while pos <= #m do
    local colon = string.find(m, ':', pos, true)
    if not colon then return nil end
    local n = tonumber(string.sub(m, pos, colon - 1))
    if not n or n < 0 or colon + n > #m then return nil end
    out[#out + 1] = string.sub(m, colon + 1, colon + n)
    pos = colon + 1 + n
  end
  if #out == 0 or #out % 2 ~= 0 then return nil end
  return out
end
for _, m in ipairs(due) do
  local f = fields(m)
  if f then
    redis.call('XADD', KEYS[2], '*', unpack(f))
  else
    redis.call('XADD', KEYS[2], '*', '` + DelayedRawField + `', m)
  end
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if #nxt == 2 then wait = math.max(0, tonumber(nxt[2]) - now) end
return {#due, wait}
`)

// MoveDue moves up to limit due members of the delayed set key into
// stream, oldest due first, atomically (moveDueScript). wait is how long
// until the next member is due, -1 when there is none.
func MoveDue(ctx context.Context, c redis.Scripter, key, stream string, limit int) (moved int, wait time.Duration, err error) {
	res, err := moveDueScript.Run(ctx, c, []string{key, stream}, limit).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("unexpected reply %v", res)
	}
	wait = -1
	if res[1] >= 0 {
		wait = time.Duration(res[1]) * time.Millisecond
	}
	return int(res[0]), wait, nil
}
