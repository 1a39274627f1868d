package millrace

import (
	"strconv"
	"time"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/noretry"
)

// Retry-safe publishing by default.
//
// Every pipeline slot of a Publisher is a producer with an ID of its own and
// a sequence number that grows with every script it sends. The messages of
// one topic in a pipeline are added by one script, which records the
// sequence number in the producer's key of the topic ("{topic}:producer:<id>",
// kept for producerKeyTTL after its last use) in the same step as the XADDs.
// A resend of the same script (same producer, same number) finds the number
// recorded and adds nothing: the Publisher can send again whatever failed on
// a network error or a timeout, whether or not Redis ran it. A slot sends
// one pipeline at a time, retries included, so its numbers reach each
// topic's key in order. Memory grows with producers, not with messages: one
// small key per pipeline slot and topic.

// producerKeyTTL is how long a producer's key outlives its last script:
// far longer than any resend of a Publish, which ends within seconds.
const producerKeyTTL = 10 * time.Minute

// producer is one pipeline slot of a Publisher: the ID of its keys and the
// last sequence number it used. Only the holder of the slot touches it.
type producer struct {
	id  string
	seq uint64
	// batch is the buffer of the calls the slot sends next.
	batch []*publishRequest
}

// sequencedAddScript adds messages to a stream unless this producer's
// script with this sequence number already ran. The sequence number is
// recorded first, so that a full Redis (OOM, refused on the first write of
// a script) or an ACL refusal leaves nothing; a refused first XADD (a key
// of another type) puts the previous number back. Once one XADD succeeded
// the rest follow: they write to the same key and Redis lets a script that
// has written go on. Returns the number of entries added, or false when an
// earlier send added them.
//
// KEYS[1] stream, KEYS[2] the producer's key; ARGV[1] sequence number,
// ARGV[2] key TTL in ms, ARGV[3] MAXLEN ~ (0: none; negative: refuse past
// that many entries, see luaXAdd's full), ARGV[4] MINID ~ (""
// none), then per message the number of its field and value arguments
// followed by them. The trimming clause goes with the last XADD.
var sequencedAddScript = noretry.NewScript(luaXAdd + `
local prev = redis.call('GET', KEYS[2])
if prev and tonumber(prev) >= tonumber(ARGV[1]) then
  return false
end
local refused = refusedAt(KEYS[1], ARGV[3], 5)
if refused then return refused end
local added, i, n = 0, 5, #ARGV
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
while i <= n do
  local k = tonumber(ARGV[i])
  local id = xadd(KEYS[1], i, k, i + k >= n, ARGV[3], ARGV[4])
  if type(id) == 'table' and id.err then
    if added > 0 then
      return redis.error_reply('PARTIAL ' .. added .. ' added, then: ' .. id.err)
    end
    redis.call('SET', KEYS[2], prev or '0', 'PX', ARGV[2])
    return id
  end
  added = added + 1
  i = i + k + 1
end
return added
`)

// sequencedArgs is sequencedAddScript with the keys and arguments that add
// the messages of g with its producer's sequence number.
func (p *Publisher) sequencedArgs(g *topicGroup) (*noretry.Script, []string, []interface{}) {
	r := p.config.retention(g.topic)
	args := make([]interface{}, 0, 4+g.argCount())
	args = append(args, g.seq, producerKeyTTL.Milliseconds(), r.addMaxLen(), r.minID())
	args = g.appendMessages(args)
	return sequencedAddScript, []string{streamKey(g.topic), keys.Producer(g.topic, g.producer)}, args
}

// producerID names slot i of a Publisher whose ID is id.
func producerID(id string, i int) string { return id + "-" + strconv.Itoa(i) }
