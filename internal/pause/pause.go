// Package pause reads and sets whether a consumer group of a topic is
// paused. The state is the last entry of a small stream ([keys.Paused], in
// the topic's Cluster slot): a field "state" of "paused" or "resumed", the
// entry's ID saying when. Being a stream, it can be waited on with the
// XREAD that waits for new entries: a paused subscriber hears the resume
// without polling. Every command on those streams is here.
package pause

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/reply"
)

// The values of the "state" field.
const (
	statePaused  = "paused"
	stateResumed = "resumed"
	field        = "state"
)

// history is how many changes the stream keeps (XADD MAXLEN).
const history = 16

// State is a group's pause state.
type State struct {
	Paused bool
	// Since is when the group was last paused or resumed, zero when never.
	Since time.Time
	// ID is the stream's last entry, "0-0" when there is none: a wait for
	// the next change waits for an entry after it.
	ID string
}

// Read returns the state of group on topic.
func Read(ctx context.Context, client redis.Cmdable, topic, group string) (State, error) {
	msgs, err := client.XRevRangeN(ctx, keys.Paused(topic, group), "+", "-", 1).Result()
	if err != nil && !rediserr.IsNil(err) {
		return State{ID: "0-0"}, err
	}
	return parse(msgs), nil
}

// Ref names a group of a topic.
type Ref struct{ Topic, Group string }

// ReadMany returns the states of groups, in their order, in one pipelined
// round trip.
func ReadMany(ctx context.Context, client redis.Cmdable, groups []Ref) ([]State, error) {
	out := make([]State, len(groups))
	if len(groups) == 0 {
		return out, nil
	}
	pipe := client.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(groups))
	for k, g := range groups {
		cmds[k] = pipe.XRevRangeN(ctx, keys.Paused(g.Topic, g.Group), "+", "-", 1)
	}
	_, _ = pipe.Exec(ctx)
	for k, c := range cmds {
		msgs, err := c.Result()
		if err != nil && !rediserr.IsNil(err) {
			return out, err
		}
		out[k] = parse(msgs)
	}
	return out, nil
}

// FromReply is the state a script's XREVRANGE ... COUNT 1 of the stream
// replied (RESP2 shape: a list of {id, {field, value, ...}}); ok is false
// for anything else, such as the false of a refused call.
func FromReply(v interface{}) (s State, ok bool) {
	entries, isList := v.([]interface{})
	if !isList {
		return State{ID: "0-0"}, false
	}
	var msgs []redis.XMessage
	if len(entries) > 0 {
		e, _ := entries[0].([]interface{})
		if len(e) != 2 {
			return State{ID: "0-0"}, false
		}
		id, _ := e[0].(string)
		msgs = []redis.XMessage{{ID: id, Values: reply.Map(e[1])}}
	}
	return parse(msgs), true
}

func parse(msgs []redis.XMessage) State {
	if len(msgs) == 0 {
		return State{ID: "0-0"}
	}
	s := State{ID: msgs[0].ID, Paused: msgs[0].Values[field] == statePaused}
	s.Since, _ = entryid.Time(msgs[0].ID)
	return s
}

// setScript adds ARGV[1] as the state of stream KEYS[1] unless it already
// is its state ("resumed" when there is none), keeping ARGV[2] entries;
// the entry names the call, ARGV[3]. Returns 1 when this call changed the
// state, 0 when not: sent again (its reply lost), it changes nothing more
// and finds its own entry, 1 again.
var setScript = redis.NewScript(`
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local state, by = 'resumed', nil
if #last > 0 then
  local f = last[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'state' then state = f[i + 1] end
    if f[i] == 'by' then by = f[i + 1] end
  end
end
if state == ARGV[1] then
  if by == ARGV[3] then return 1 end
  return 0
end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], '*', 'state', ARGV[1], 'by', ARGV[3])
return 1
`)

// Set pauses or resumes group on topic; changed is false when it already
// was in that state.
func Set(ctx context.Context, client redis.Scripter, topic, group string, paused bool) (changed bool, err error) {
	state := stateResumed
	if paused {
		state = statePaused
	}
	call := strconv.FormatUint(rand.Uint64(), 36)
	n, err := setScript.Run(ctx, client, []string{keys.Paused(topic, group)}, state, history, call).Int()
	return n == 1, err
}
