package millrace

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/noretry"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
)

// Effectively-once stages.
//
// A Router handler that consumes a message and produces others is
// at-least-once on its own: a consumer killed between the Router's Publish
// of the outputs and its Ack of the input runs the handler again, and the
// outputs are added twice. A Stage commits the two together: its
// middleware runs the handler and, when it succeeds, one script adds the
// outputs to the output stream and acknowledges the input entry in its
// group, provided the entry is still pending there. Whatever fails, both
// happened or neither did; a handler run again (after a crash, a lost
// reply, or a take-over by another consumer while it was cut off) finds the entry
// acknowledged and adds nothing. The Router then publishes nothing itself
// and its Ack is an XACK of an entry already acknowledged.
//
// The script needs the input stream and the output stream on one Redis and,
// on Cluster, in one slot (hash-tagged topics alike, e.g. "{orders}.in" and
// "{orders}.out"). Where they are not, the outputs are deduplicated instead
// by a key derived from the input: see Stage.

// StageConfig configures a Stage.
type StageConfig struct {
	// Window is how long the fallback remembers that an output was added,
	// by its key derived from the input entry, for a stage whose input and
	// output cannot be committed in one script (see Stage). It must outlast
	// the redelivery of an input whose Ack was lost: ClaimMinIdle and the
	// time to restart a consumer. Unused when the script can run.
	// Default: 24h.
	Window time.Duration
}

const defaultStageWindow = 24 * time.Hour

func (c *StageConfig) setDefaults() {
	if c.Window == 0 {
		c.Window = defaultStageWindow
	}
}

// Validate reports an invalid StageConfig.
func (c StageConfig) Validate() error {
	if c.Window < 0 {
		return fmt.Errorf("Window must not be negative, got %s", c.Window)
	}
	if c.Window > 0 && c.Window < time.Millisecond {
		return fmt.Errorf("Window must be at least 1ms, got %s", c.Window)
	}
	return nil
}

// ErrStageInput is returned by a Stage's middleware for a message that did
// not come through a Router from a Millrace subscription: it has no entry
// ID, or the Router gave no subscribe or publish topic.
var ErrStageInput = errors.New("millrace: stage input did not come from a subscription through a Router handler with a publisher")

// ErrStageDelayedOutput is returned by a Stage's middleware when the
// handler produced a delayed message (delay.DelayedUntilKey): a delayed
// output is added to a sorted set later, which the commit cannot cover.
var ErrStageDelayedOutput = errors.New("millrace: a stage cannot produce delayed messages")

// Stage runs Router handlers effectively once: the messages a handler
// produces and the acknowledgement of its input commit together. Turn it on
// per handler:
//
//	stage, err := millrace.NewStage(sub, pub, millrace.StageConfig{})
//	router.AddHandler("bill", "{orders}.placed", sub, "{orders}.billed", pub, bill).
//		AddMiddleware(stage.Middleware)
//
// sub is the Subscriber given to AddHandler; pub is what the outputs are
// committed with: the Publisher given to AddHandler, or another Millrace
// Publisher over the same client (the Router's own then publishes
// nothing). What the commit is depends on them:
//
//   - pub a *Publisher over the same client as sub, and on Cluster the
//     input and output streams in one slot: one script adds the outputs
//     and acknowledges the input (atomic).
//   - pub a *Publisher otherwise (another client, or another slot): the
//     outputs are added by a script that skips those already added, by a
//     key derived from the input (topic, group, entry ID and the output's
//     position; remembered for Window), and the Router acknowledges the
//     input after. A crash in between runs the handler again, and the
//     outputs at the positions already added are skipped.
//   - pub another Publisher (another broker): the outputs' UUIDs are set to
//     that derived key and the Router publishes them. A rerun publishes
//     them again with the same UUIDs: the consumers of the output must
//     deduplicate by UUID.
//
// In every case a handler error commits nothing: the Router Nacks, and
// retries, MaxDeliveries and dead letters behave as without a Stage.
// Effectively once covers what the handler writes through the Router to
// Redis; any other side effect (an HTTP call, a database row) happens again
// on a rerun and needs the handler's own idempotency.
type Stage struct {
	sub    *Subscriber
	pub    message.Publisher
	mp     *Publisher // pub as a Millrace Publisher; nil for another one
	group  string
	config StageConfig
	logger watermill.LoggerAdapter

	// queue holds the script calls waiting for a pipeline; free holds the
	// pipeline slots not in use (the Publisher's Pipelines).
	queue chan *commitCall
	free  chan struct{}
}

// NewStage returns the Stage of handlers that consume from sub, which must
// be in a consumer group, and publish with pub.
func NewStage(sub *Subscriber, pub message.Publisher, config StageConfig) (*Stage, error) {
	if sub == nil || pub == nil {
		return nil, errors.New("millrace: NewStage needs the handler's subscriber and publisher")
	}
	if sub.config.ConsumerGroup == "" {
		return nil, errors.New("millrace: a stage needs a subscriber in a consumer group: without one nothing is acknowledged")
	}
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid stage config: %w", err)
	}
	s := &Stage{sub: sub, pub: pub, group: sub.config.ConsumerGroup, config: config, logger: sub.logger}
	if mp, ok := pub.(*Publisher); ok {
		s.mp = mp
		s.queue = make(chan *commitCall, mp.config.MaxBatch)
		s.free = make(chan struct{}, mp.config.Pipelines)
		for range mp.config.Pipelines {
			s.free <- struct{}{}
		}
	}
	return s, nil
}

// Middleware runs h and commits what it produced with the acknowledgement
// of its input. Add it to the handlers that consume with the Stage's
// Subscriber (message.Handler's AddMiddleware), not to the Router when
// other handlers consume with other Subscribers: the commit of an input
// that the Stage's group never read fails (a handler error), and one that
// the group read and acknowledged is taken for committed.
func (s *Stage) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err != nil || len(out) == 0 {
			return out, err
		}
		ctx := msg.Context()
		in := stageInput{
			topic: message.SubscribeTopicFromCtx(ctx),
			id:    msg.Metadata.Get(MetadataEntryID),
		}
		outTopic := message.PublishTopicFromCtx(ctx)
		if in.topic == "" || in.id == "" || outTopic == "" {
			return nil, fmt.Errorf("message %s: %w", msg.UUID, ErrStageInput)
		}
		for _, o := range out {
			if o == nil {
				return nil, ErrNilMessage
			}
			if _, ok := o.Metadata[delay.DelayedUntilKey]; ok {
				return nil, fmt.Errorf("message %s: %w", o.UUID, ErrStageDelayedOutput)
			}
		}
		switch {
		case s.mp == nil:
			for i, o := range out {
				o.UUID = s.outputKey(in, i)
			}
			return out, nil // the Router publishes them
		case s.atomic(in.topic, outTopic):
			return nil, s.commit(ctx, in, outTopic, out)
		default:
			return nil, s.addOnce(ctx, in, outTopic, out)
		}
	}
}

// stageInput is the entry a handler consumed.
type stageInput struct{ topic, id string }

// atomic reports whether the input and output streams can be in one script:
// one client and, on Cluster, one slot.
func (s *Stage) atomic(inTopic, outTopic string) bool {
	if s.mp.client != s.sub.client {
		return false
	}
	if _, ok := s.sub.client.(*redis.ClusterClient); ok {
		return keys.Slot(streamKey(inTopic)) == keys.Slot(streamKey(outTopic))
	}
	return true
}

// outputKey is the key of output i of input in, for the fallback:
// "<len(topic)>:<topic>:<len(group)>:<group>:<entry ID>:<i>".
func (s *Stage) outputKey(in stageInput, i int) string {
	return strconv.Itoa(len(in.topic)) + ":" + in.topic + ":" + strconv.Itoa(len(s.group)) + ":" + s.group + ":" + in.id + ":" + strconv.Itoa(i)
}

// stageCommitScript adds messages to the output stream and acknowledges
// the input entry, if that entry is still pending in the group; else it
// does nothing and returns false (a send whose reply was lost, or another
// consumer, committed it), or fails when the group never read the entry (a
// Stage of another group's Subscriber: its outputs must not be taken for
// committed). The pending check is a read and the XADDs come
// before the XACK, so that a refused first XADD (a full Redis, a key of
// another type) leaves the entry pending and nothing added. Once one XADD
// succeeded the rest follow and so does the XACK: Redis lets a script that
// has written go on (were a later XADD refused all the same, the entry
// stays pending: a rerun may add the first outputs again, but none is
// lost). Returns the number of entries added.
//
// KEYS[1] input stream, KEYS[2] output stream; ARGV[1] group, ARGV[2]
// input entry ID, ARGV[3] MAXLEN ~ (0: none; negative: the output topic's
// ceiling refuses, see luaXAdd), ARGV[4] MINID ~ ("": none),
// then per message the number of its field and value arguments followed by
// them. The trimming clause goes with the last XADD.
var stageCommitScript = noretry.NewScript(luaXAdd + streams.LuaField + streams.LuaIDBefore + `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    if field(g, 'name') == ARGV[1] and before(field(g, 'last-delivered-id'), ARGV[2]) then
      return redis.error_reply('STAGE entry ' .. ARGV[2] .. ' of ' .. KEYS[1] .. ' was never delivered to group ' ..
        ARGV[1] .. ': the Stage is not of the Subscriber that handed it out')
    end
  end
  return false
end
local refused = refusedAt(KEYS[2], ARGV[3], 5)
if refused then return refused end
local added, i, n = 0, 5, #ARGV
while i <= n do
  local k = tonumber(ARGV[i])
  local id = xadd(KEYS[2], i, k, i + k >= n, ARGV[3], ARGV[4])
  if type(id) == 'table' and id.err then
    if added > 0 then
      return redis.error_reply('PARTIAL ' .. added .. ' added, then: ' .. id.err)
    end
    return id
  end
  added = added + 1
  i = i + k + 1
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return added
`)

// commit runs stageCommitScript for out, sending it again on a network
// error or a timeout (up to the Publisher's Retries) and with EVAL after
// NOSCRIPT: a send that ran already finds the entry acknowledged.
func (s *Stage) commit(ctx context.Context, in stageInput, outTopic string, out []*message.Message) error {
	g, err := s.prepare(ctx, outTopic, out)
	if err != nil {
		return err
	}
	defer s.mp.mu.RUnlock()
	r := s.mp.config.retention(outTopic)
	args := make([]interface{}, 0, 4+g.argCount())
	args = append(args, s.group, in.id, r.addMaxLen(), r.minID())
	args = g.appendMessages(args)
	ks := []string{streamKey(in.topic), streamKey(outTopic)}
	added, err := s.run(stageCommitScript, ks, args)
	if err != nil {
		return fmt.Errorf("cannot commit the %d messages of entry %s of %s to stream %s: %w", len(out), in.id, in.topic, outTopic, redisError(err))
	}
	if added == 0 {
		s.logger.Info("Input was committed before (an earlier run of its handler, here or at another consumer); "+
			"its outputs were not added again", watermill.LogFields{"topic": in.topic, "entry_id": in.id})
	}
	s.touched(outTopic)
	return nil
}

// addOnce adds out with the Publisher's idempotent script, keyed by the
// outputs' keys derived from in: outputs already added by an earlier run
// of the handler for in are skipped.
func (s *Stage) addOnce(ctx context.Context, in stageInput, outTopic string, out []*message.Message) error {
	g, err := s.prepare(ctx, outTopic, out)
	if err != nil {
		return err
	}
	defer s.mp.mu.RUnlock()
	r := s.mp.config.retention(outTopic)
	ks := make([]string, 0, 1+len(out))
	ks = append(ks, streamKey(outTopic))
	for i := range out {
		ks = append(ks, keys.Published(outTopic, s.outputKey(in, i)))
	}
	args := make([]interface{}, 0, 3+g.argCount())
	args = append(args, s.config.Window.Milliseconds(), r.addMaxLen(), r.minID())
	args = g.appendMessages(args)
	added, err := s.run(idempotentAddScript, ks, args)
	if err != nil {
		return fmt.Errorf("cannot add the %d messages of entry %s of %s to stream %s: %w", len(out), in.id, in.topic, outTopic, redisError(err))
	}
	if added < len(out) {
		s.logger.Info("Outputs of the input were added before (an earlier run of its handler); not added again",
			watermill.LogFields{"topic": in.topic, "entry_id": in.id, "outputs": len(out), "skipped": len(out) - added})
	}
	s.touched(outTopic)
	return nil
}

// prepare checks the server version and marshals out as the Publisher
// does. On success the Publisher's read lock is held: the caller releases
// it.
func (s *Stage) prepare(ctx context.Context, outTopic string, out []*message.Message) (*topicGroup, error) {
	s.mp.mu.RLock()
	if s.mp.closed {
		s.mp.mu.RUnlock()
		return nil, ErrPublisherClosed
	}
	if err := s.mp.version.check(ctx, s.mp.client, streamKey(outTopic)); err != nil {
		s.mp.mu.RUnlock()
		return nil, err
	}
	req, err := s.mp.prepare(outTopic, out)
	if err != nil {
		s.mp.mu.RUnlock()
		return nil, err
	}
	return &topicGroup{topic: outTopic, reqs: []*publishRequest{req}, messages: len(out)}, nil
}

// commitCall is one script call of a Stage on its way to a pipeline, and
// the reply of its first send.
type commitCall struct {
	script *noretry.Script
	ks     []string
	args   []interface{}
	// taken is set once a sender has dequeued the call; its caller then
	// only waits for done.
	taken atomic.Bool
	done  chan struct{}
	n     int64
	err   error
}

// run sends script through the Publisher's client and returns the number
// of entries it added. Concurrent calls share pipelines, as Publish calls
// do: a caller that finds a pipeline slot free sends its own call together
// with every call queued meanwhile (followed by WAIT or WAITAOF when the
// Publisher's Durability asks for it), so that many handlers committing at
// once cost one round trip. What failed is settled by its caller (see
// settle). On Cluster with Durability each call goes on its own to the
// master of its first key, whose connection WAIT counts the replicas of.
// The sends are not tied to the message's context: a commit that Redis may
// have run is followed to its outcome.
func (s *Stage) run(script *noretry.Script, ks []string, args []interface{}) (added int, err error) {
	ctx := context.Background()
	if _, ok := s.mp.client.(*redis.ClusterClient); ok && s.mp.config.Durability.enabled() {
		n, err := s.runOnce(ctx, script, false, ks, args)
		return s.settle(ctx, script, ks, args, n, err)
	}
	call := &commitCall{script: script, ks: ks, args: args, done: make(chan struct{})}
	s.queue <- call
	for !call.taken.Load() {
		select {
		case <-call.done:
			return s.settle(ctx, script, ks, args, call.n, call.err)
		case <-s.free:
			if !call.taken.Load() {
				s.sendQueued(ctx)
			}
			s.free <- struct{}{}
		}
	}
	<-call.done
	return s.settle(ctx, script, ks, args, call.n, call.err)
}

// sendQueued sends the calls queued now, up to the Publisher's MaxBatch, in
// one pipeline, and answers each with its reply. It runs in a caller that
// holds a pipeline slot.
func (s *Stage) sendQueued(ctx context.Context) {
	var batch []*commitCall
	for len(batch) < s.mp.config.MaxBatch {
		select {
		case call := <-s.queue:
			call.taken.Store(true)
			batch = append(batch, call)
			continue
		default:
		}
		break
	}
	if len(batch) == 0 {
		return
	}
	cmds := make([]*redis.Cmd, len(batch))
	durErr := error(nil)
	if len(batch) == 1 && !s.mp.config.Durability.enabled() {
		cmds[0] = noretry.Do(ctx, s.mp.client, batch[0].script.Args(batch[0].ks, batch[0].args...)...)
	} else {
		pipe := s.mp.client.Pipeline()
		for i, call := range batch {
			cmds[i] = noretry.Do(ctx, pipe, call.script.Args(call.ks, call.args...)...)
		}
		confirm := s.mp.config.Durability.queue(ctx, pipe)
		_, _ = pipe.Exec(ctx) // errors are read per command
		durErr = confirm()
	}
	for i, call := range batch {
		call.n, call.err = cmds[i].Int64()
		if call.err == nil {
			call.err = durErr
		}
		close(call.done)
	}
}

// settle returns the outcome of script, whose send replied n and err: on a
// network error or a timeout it sends it again (up to the Publisher's
// Retries: the scripts are safe to send again), after NOSCRIPT with EVAL,
// each time on its own. A nil reply (an earlier send or another consumer
// committed) is 0 entries added. A send whose reply was lost and the send
// after it may both count 0, the first having added the entries.
func (s *Stage) settle(ctx context.Context, script *noretry.Script, ks []string, args []interface{}, n int64, err error) (added int, _ error) {
	eval := false
	for attempt := 0; ; {
		switch {
		case err == nil:
			return int(n), nil
		case rediserr.IsNil(err):
			return 0, nil
		case rediserr.IsNoScript(err) && !eval:
			eval = true
		case errors.Is(err, ErrNotDurable):
			return int(n), err
		case !rediserr.IsServer(err) && attempt < s.mp.config.Retries:
			reloadOnNetworkError(s.mp.client, err)
			time.Sleep(expDelay(retryInitial, retryMax, attempt))
			attempt++
		case !rediserr.IsServer(err):
			return 0, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		default:
			return 0, err
		}
		n, err = s.runOnce(ctx, script, eval, ks, args)
	}
}

// runOnce sends script once, in a pipeline with WAIT or WAITAOF when the
// Publisher's Durability asks for it (on Cluster, to the master of the
// script's first key).
func (s *Stage) runOnce(ctx context.Context, script *noretry.Script, eval bool, ks []string, args []interface{}) (int64, error) {
	cmdArgs := script.Args(ks, args...)
	if eval {
		cmdArgs = script.EvalArgs(ks, args...)
	}
	if !s.mp.config.Durability.enabled() {
		return noretry.Do(ctx, s.mp.client, cmdArgs...).Int64()
	}
	var c redis.UniversalClient = s.mp.client
	if cluster, ok := c.(*redis.ClusterClient); ok {
		node, err := cluster.MasterForKey(ctx, ks[0])
		if err != nil {
			return 0, fmt.Errorf("cannot find the cluster node of stream %s: %w", ks[0], err)
		}
		c = node
	}
	pipe := c.Pipeline()
	cmd := noretry.Do(ctx, pipe, cmdArgs...)
	confirm := s.mp.config.Durability.queue(ctx, pipe)
	_, _ = pipe.Exec(ctx)
	n, err := cmd.Int64()
	if err != nil {
		return 0, err
	}
	return n, confirm()
}

// touched notes a publish to topic for KeepUnacked trimming, as Publish
// does.
func (s *Stage) touched(topic string) {
	if s.mp.trimmer != nil && s.mp.config.retention(topic).KeepUnacked {
		s.mp.trimmer.touch(topic)
	}
}
