package millrace

import (
	"fmt"
	"time"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/noretry"
)

// Idempotency makes Publish deduplicate by message UUID: a message's UUID
// is remembered per topic for Window, and publishing the same UUID to the
// topic again within it adds nothing and succeeds. It covers what the
// default producer sequence does not: the application publishing a message
// again (an outbox relay, a forwarder, a process that crashed before it
// learnt that Publish succeeded). The check and the XADD are one script,
// so no failure or race can add the message twice or leave it out; the
// keys it remembers ("{topic}:published:<uuid>") are in the topic's
// Cluster slot.
//
// It costs one key per message for Window (about 100 bytes: the key and
// its TTL), and a script call instead of a plain XADD.
type Idempotency struct {
	// Window is how long a UUID is remembered (SET ... PX Window). Longer
	// than any retry of a Publish, of the application's own or of a
	// forwarder.
	// Default: 0, no deduplication by UUID.
	Window time.Duration
}

// defaultPublishRetries is PublisherConfig.Retries by default.
const defaultPublishRetries = 2

func (i Idempotency) enabled() bool { return i.Window > 0 }

func (i Idempotency) validate() error {
	if i.Window < 0 {
		return fmt.Errorf("Window must not be negative, got %s", i.Window)
	}
	if i.Window > 0 && i.Window < time.Millisecond {
		return fmt.Errorf("Window must be at least 1ms, got %s", i.Window)
	}
	return nil
}

// idempotentAddScript adds each message unless its UUID was added within
// the window. The UUID's key is set first, so that a refusal of that first
// write (a full Redis, an ACL without SET) leaves nothing; a refused XADD (a
// key of another type) makes the key expire at once, so that nothing is
// remembered. Once one XADD succeeded the rest follow: Redis lets a script
// that has written go on. Returns the number of messages added (those whose
// UUID was not added before).
//
// KEYS[1] stream, KEYS[2...] the UUIDs' keys, one per message; ARGV[1]
// window in ms, ARGV[2] MAXLEN ~ (0: none; negative: refuse past that many
// entries, see luaXAdd's full), ARGV[3] MINID ~ ("": none),
// then per message the number of its field and value arguments followed by
// them.
var idempotentAddScript = noretry.NewScript(luaXAdd + `
local refused = full(KEYS[1], ARGV[2], #KEYS - 1)
if refused then return refused end
local added, i = 0, 4
for m = 2, #KEYS do
  local k = tonumber(ARGV[i])
  if redis.call('EXISTS', KEYS[m]) == 0 then
    redis.call('SET', KEYS[m], '1', 'PX', ARGV[1])
    local id = xadd(KEYS[1], i, k, m == #KEYS, ARGV[2], ARGV[3])
    if type(id) == 'table' and id.err then
      redis.call('SET', KEYS[m], '1', 'PX', 1)
      if added > 0 then
        return redis.error_reply('PARTIAL ' .. added .. ' added, then: ' .. id.err)
      end
      return id
    end
    added = added + 1
  end
  i = i + k + 1
end
return added
`)

// idempotentArgs is idempotentAddScript with the keys and arguments that
// add the messages of g unless their UUIDs were added within the window.
func (p *Publisher) idempotentArgs(g *topicGroup) (*noretry.Script, []string, []interface{}) {
	r := p.config.retention(g.topic)
	ks := make([]string, 0, 1+g.messages)
	ks = append(ks, streamKey(g.topic))
	for _, req := range g.reqs {
		for _, msg := range req.msgs {
			ks = append(ks, keys.Published(g.topic, msg.UUID))
		}
	}
	args := make([]interface{}, 0, 3+g.argCount())
	args = append(args, p.config.Idempotency.Window.Milliseconds(), r.addMaxLen(), r.minID())
	args = g.appendMessages(args)
	return idempotentAddScript, ks, args
}
