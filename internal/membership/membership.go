// Package membership keeps the members of a consumer group on a partitioned
// topic in Redis: who is alive, and which partitions each owns.
//
// Two keys in the partitioned topic's slot hold them: a sorted set of the
// members scored by the time their membership expires ([keys.Members]),
// and a hash of what each reports, JSON-encoded ([keys.Ownership]). A
// member renews itself with [Beat], one script that reads the server's
// clock, drops the expired members and returns the live ones; operators
// read the same with [Read], which writes nothing.
package membership

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/reply"
)

// Record is what a member reports about itself.
type Record struct {
	// Partitions is the number of partitions of the topic the member knows.
	Partitions int `json:"partitions"`
	// Owned are the partitions whose consumer name the member holds.
	Owned []int `json:"owned"`
	// Leaving is set while the member hands its partitions over before it
	// leaves: it takes no new ones.
	Leaving bool `json:"leaving,omitempty"`
}

// Member is a live member of a group.
type Member struct {
	Name string
	// Expires is when the membership ends unless renewed (server clock).
	Expires time.Time
	Record
}

// View is the live members of a group as Redis saw them.
type View struct {
	// Time is the server's clock when the view was read.
	Time time.Time
	// Members are sorted by name.
	Members []Member
}

// Consumer is the consumer name partition i of a partitioned topic is read
// under in group, whichever member owns it: "<group>-p<i>".
func Consumer(group string, i int) string { return group + "-p" + strconv.Itoa(i) }

// beatScript renews or removes a member and returns the live members.
//
// KEYS[1] members, KEYS[2] ownership; ARGV[1] member, ARGV[2] TTL in ms,
// ARGV[3] the member's record ("" removes the member). Returns {TIME,
// members WITHSCORES, ownership as field-value pairs}.
var beatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('HDEL', KEYS[2], m)
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  local ttl = tonumber(ARGV[2])
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  for i = 1, 2 do
    if redis.call('PTTL', KEYS[i]) < ttl then
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
  end
end
return {t, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('HGETALL', KEYS[2])}
`)

// Beat renews member's membership for ttl with rec and returns the live
// members, member included.
func Beat(ctx context.Context, c redis.Scripter, topic, group, member string, ttl time.Duration, rec Record) (View, error) {
	raw, err := json.Marshal(rec)
	if err != nil {
		return View{}, err
	}
	return beat(ctx, c, topic, group, member, ttl, string(raw))
}

// Leave ends member's membership at once and returns the members left.
func Leave(ctx context.Context, c redis.Scripter, topic, group, member string) (View, error) {
	return beat(ctx, c, topic, group, member, 0, "")
}

func beat(ctx context.Context, c redis.Scripter, topic, group, member string, ttl time.Duration, rec string) (View, error) {
	res, err := beatScript.Run(ctx, c, []string{keys.Members(topic, group), keys.Ownership(topic, group)},
		member, ttl.Milliseconds(), rec).Slice()
	if err != nil {
		return View{}, err
	}
	if len(res) != 3 {
		return View{}, nil
	}
	return parse(reply.Time(res[0]), res[1], reply.Map(res[2])), nil
}

// Read returns the live members of group on topic without writing anything:
// TIME, ZRANGE and HGETALL in one pipeline.
func Read(ctx context.Context, c redis.UniversalClient, topic, group string) (View, error) {
	views, err := ReadMany(ctx, c, [][2]string{{topic, group}})
	if err != nil {
		return View{}, err
	}
	return views[0], nil
}

// ReadMany returns the views of several (topic, group) pairs in one
// pipeline, in the order given.
func ReadMany(ctx context.Context, c redis.UniversalClient, pairs [][2]string) ([]View, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	pipe := c.Pipeline()
	type cmds struct {
		now     *redis.TimeCmd
		members *redis.ZSliceCmd
		owners  *redis.MapStringStringCmd
	}
	all := make([]cmds, len(pairs))
	for i, p := range pairs {
		// TIME has no key: on a Cluster it goes to any node, whose clock
		// is as good as the slot owner's for expiries seconds long.
		all[i] = cmds{
			now:     pipe.Time(ctx),
			members: pipe.ZRangeWithScores(ctx, keys.Members(p[0], p[1]), 0, -1),
			owners:  pipe.HGetAll(ctx, keys.Ownership(p[0], p[1])),
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	views := make([]View, len(pairs))
	for i, c := range all {
		var flat []interface{}
		for _, z := range c.members.Val() {
			flat = append(flat, z.Member, strconv.FormatFloat(z.Score, 'f', 0, 64))
		}
		owners := map[string]interface{}{}
		for k, v := range c.owners.Val() {
			owners[k] = v
		}
		views[i] = parse(c.now.Val(), flat, owners)
	}
	return views, nil
}

// parse builds a view from the members sorted set (flat member-score
// pairs) and the ownership hash, keeping the members not expired at now.
func parse(now time.Time, members interface{}, owners map[string]interface{}) View {
	v := View{Time: now}
	flat, _ := members.([]interface{})
	for i := 0; i+1 < len(flat); i += 2 {
		ms, ok := reply.Int(flat[i+1])
		if !ok {
			f, err := strconv.ParseFloat(reply.String(flat[i+1]), 64)
			if err != nil {
				continue
			}
			ms = int64(f)
		}
		expires := time.UnixMilli(ms)
		if !expires.After(now) {
			continue
		}
		m := Member{Name: reply.String(flat[i]), Expires: expires}
		_ = json.Unmarshal([]byte(reply.String(owners[m.Name])), &m.Record)
		v.Members = append(v.Members, m)
	}
	slices.SortFunc(v.Members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return v
}
