package millrace

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
)

// Idempotency makes Publish retry-safe: a message's UUID is remembered per
// topic for Window, and publishing the same UUID to the topic again within
// it adds nothing and succeeds. The check and the XADD are one script, so
// no failure or race can add the message twice or leave it out; the key it
// remembers ("{topic}:published:<uuid>") is in the topic's Cluster slot.
//
// With it, Publish itself resends the messages of a call whose pipeline
// failed on a network error or a timeout, up to Retries times: an error
// from Publish then means that each message of the call was added once or
// not at all, never twice.
//
// It costs one key per message for Window (about 100 bytes: the key, its
// TTL and the entry ID), and a script call instead of a plain XADD.
type Idempotency struct {
	// Window is how long a UUID is remembered (SET ... PX Window). Longer
	// than any retry of a Publish, of the application's own or of a
	// forwarder.
	// Default: 0, Publish is not idempotent.
	Window time.Duration
	// Retries is how many times Publish resends messages whose pipeline
	// failed on a network error or a timeout, after 50ms, then 100ms, ...
	// Negative: never.
	// Default: 2.
	Retries int
}

// defaultPublishRetries is Idempotency.Retries by default.
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

// idempotentAddScript adds an entry unless its UUID was added within the
// window: XADD first, then the key, so that a failed XADD (a full Redis, a
// wrong type) remembers nothing and a retry can still add it. Returns the
// new entry ID, or nil when the UUID was already added.
//
// KEYS[1] stream, KEYS[2] the UUID's key; ARGV[1] window in ms, ARGV[2]
// MAXLEN ~ (0: none), ARGV[3] MINID ~ ("": none), ARGV[4...] fields and
// values.
var idempotentAddScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then
  return false
end
local args = {KEYS[1]}
if ARGV[2] ~= '0' then
  table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, ARGV[2])
elseif ARGV[3] ~= '' then
  table.insert(args, 'MINID'); table.insert(args, '~'); table.insert(args, ARGV[3])
end
table.insert(args, '*')
for i = 4, #ARGV do
  table.insert(args, ARGV[i])
end
local id = redis.call('XADD', unpack(args))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return id
`)

// idempotentAddArgs is the EVALSHA of idempotentAddScript that adds msg
// to topic unless its UUID was added within the window.
func (p *Publisher) idempotentAddArgs(topic string, r Retention, minID string, msg *message.Message) ([]interface{}, error) {
	args := make([]interface{}, 0, 14)
	args = append(args, "evalsha", idempotentAddScript.Hash(), 2, streamKey(topic), keys.Published(topic, msg.UUID),
		p.config.Idempotency.Window.Milliseconds(), r.MaxLen, minID)
	return p.appendFields(args, topic, msg)
}

// retryable reports whether req failed in a way an idempotent Publisher
// resends: a network error or a timeout, or a script Redis had not cached.
func (req *publishRequest) retryable() bool {
	for _, cmd := range req.results {
		if err := cmd.Err(); err != nil && !rediserr.IsNil(err) && (!rediserr.IsServer(err) || rediserr.IsNoScript(err)) {
			return true
		}
	}
	return false
}

// noScript reports whether some message of reqs was refused with NOSCRIPT.
func noScript(reqs []*publishRequest) bool {
	for _, req := range reqs {
		for _, cmd := range req.results {
			if rediserr.IsNoScript(cmd.Err()) {
				return true
			}
		}
	}
	return false
}
