package millrace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/noretry"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
)

// luaXAdd defines xadd for the publishing scripts: the XADD (pcall) to
// stream of the message whose k field and value arguments follow ARGV[i],
// with the trimming clause (MAXLEN ~ maxlen when positive, else MINID ~
// minid unless "") when last. The arguments go straight from ARGV to the
// call: a table built per message costs more than the XADD itself.
//
// It defines full too: the refusal to return when maxlen is negative (a
// ceiling that refuses, Retention.addMaxLen) and the stream cannot take n
// more entries without passing it, false otherwise. Before it refuses it
// trims what every group has acknowledged (the history MaxAge keeps): only
// unacknowledged entries fill a topic. refusedAt(stream, maxlen, i) is
// full for the messages that follow ARGV[i], counted.
const luaXAdd = streams.LuaField + streams.LuaIDBefore + `
local function full(stream, maxlen, n)
  if string.byte(maxlen, 1) ~= 45 then return false end
  local len, ceiling = redis.call('XLEN', stream), -tonumber(maxlen)
  if len + n <= ceiling then return false end
  if len > 0 then
    local minid = false
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
      local id = field(g, 'last-delivered-id')
      if field(g, 'pending') > 0 then
        local lowest = redis.call('XPENDING', stream, field(g, 'name'))[2]
        if before(lowest, id) then id = lowest end
      end
      if not minid or before(id, minid) then minid = id end
    end
    if minid then
      redis.call('XTRIM', stream, 'MINID', minid)
    else
      redis.call('XTRIM', stream, 'MAXLEN', math.max(0, ceiling - n))
    end
    len = redis.call('XLEN', stream)
    if len + n <= ceiling then return false end
  end
  return redis.error_reply('` + rediserr.TopicFullPrefix + ` ' .. stream .. ' holds ' .. len .. ' unacknowledged entries, its ceiling is ' .. ceiling)
end
local function refusedAt(stream, maxlen, i)
  if string.byte(maxlen, 1) ~= 45 then return false end
  local n = 0
  while i <= #ARGV do n, i = n + 1, i + tonumber(ARGV[i]) + 1 end
  return full(stream, maxlen, n)
end
local function xadd(stream, i, k, last, maxlen, minid)
  if last and maxlen ~= '0' and string.byte(maxlen, 1) ~= 45 then
    return redis.pcall('XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(ARGV, i + 1, i + k))
  elseif last and minid ~= '' then
    return redis.pcall('XADD', stream, 'MINID', '~', minid, '*', unpack(ARGV, i + 1, i + k))
  end
  return redis.pcall('XADD', stream, '*', unpack(ARGV, i + 1, i + k))
end
`

// topicGroup is the messages of one topic in a pipeline: every request of
// the batch to that topic, added by one script (the producer sequence's or,
// with Idempotency, the UUID window's), so that a call is added whole or
// not at all; with PlainXAdd, or once scripts were refused, one XADD per
// message.
type topicGroup struct {
	topic    string
	reqs     []*publishRequest
	messages int
	plain    bool
	// producer and seq number the script of the producer sequence: the
	// same in every send of the group.
	producer string
	seq      uint64
	// eval sends the script's source (EVAL) instead of its hash, after the
	// server answered NOSCRIPT.
	eval bool

	// The last send: its commands and, once final, the outcome.
	script *redis.Cmd
	xadds  []*redis.Cmd // plain: by message, in the order of reqs
	err    error
	durErr error
}

// argCount is the number of script arguments the messages of g take.
func (g *topicGroup) argCount() int {
	n := 0
	for _, req := range g.reqs {
		for _, f := range req.fields {
			n += 1 + len(f)
		}
	}
	return n
}

// appendMessages appends, per message, its number of field and value
// arguments followed by them.
func (g *topicGroup) appendMessages(args []interface{}) []interface{} {
	for _, req := range g.reqs {
		for _, f := range req.fields {
			args = append(args, len(f))
			args = append(args, f...)
		}
	}
	return args
}

// dequeue takes the calls queued now, up to MaxBatch messages, for the
// slot prod (whose buffer holds them).
func (p *Publisher) dequeue(prod *producer) []*publishRequest {
	batch := prod.batch[:0]
	size := 0
	for size < p.config.MaxBatch {
		select {
		case req := <-p.queue:
			p.queued.Add(-1)
			batch = append(batch, req)
			size += len(req.msgs)
			continue
		default:
		}
		break
	}
	prod.batch = batch
	return batch
}

// send adds batch in one pipeline (on Cluster with Durability, one per
// master) and answers every request of it. The pipeline is not tied to any
// one caller's context: a caller's cancellation must not fail the messages
// of the others.
func (p *Publisher) send(batch []*publishRequest, prod *producer) {
	ctx := context.Background()
	groups := p.groupByTopic(batch, prod)
	if cluster, ok := p.client.(*redis.ClusterClient); ok && p.config.Durability.enabled() {
		p.sendToMasters(ctx, cluster, groups, prod)
	} else {
		p.pipeline(ctx, p.client, groups)
	}
	for _, g := range groups {
		reloadOnNetworkError(p.client, g.err)
		for i, req := range g.reqs {
			req.done <- g.result(i)
		}
	}
}

// groupByTopic groups batch by topic, in the order of the topics' first
// requests, and numbers the groups of the producer sequence.
func (p *Publisher) groupByTopic(batch []*publishRequest, prod *producer) []*topicGroup {
	var groups []*topicGroup
	byTopic := map[string]*topicGroup{}
	for _, req := range batch {
		g := byTopic[req.topic]
		if g == nil {
			_, refused := p.scriptsRefused.Load(req.topic)
			g = &topicGroup{topic: req.topic, plain: p.config.PlainXAdd || refused}
			if !g.plain && !p.config.Idempotency.enabled() {
				prod.seq++
				g.producer, g.seq = prod.id, prod.seq
			}
			byTopic[req.topic] = g
			groups = append(groups, g)
		}
		g.reqs = append(g.reqs, req)
		g.messages += len(req.msgs)
	}
	return groups
}

// sendToMasters sends each group to its stream's master with WAIT in the
// same pipeline: WAIT counts the replicas that have the writes of its own
// connection. A group answered MOVED or ASK (a failover or a slot
// migration under way) was not added: it is sent once more to the new
// master. So is a script whose resends all failed on the network (a master
// that died): the script adds nothing twice wherever it lands.
func (p *Publisher) sendToMasters(ctx context.Context, cluster *redis.ClusterClient, groups []*topicGroup, prod *producer) {
	byNode := map[*redis.Client][]*topicGroup{}
	for _, g := range groups {
		node, err := cluster.MasterForKey(ctx, streamKey(g.topic))
		if err != nil {
			g.err = fmt.Errorf("cannot find the cluster node of stream %s: %w", g.topic, err)
			continue
		}
		byNode[node] = append(byNode[node], g)
	}
	for node, gs := range byNode {
		p.pipeline(ctx, node, gs)
		for _, g := range gs {
			if !rediserr.IsRedirect(g.err) && (g.plain || !errors.Is(g.err, ErrOutcomeUnknown)) {
				continue
			}
			retry, err := masterAfterRedirect(ctx, cluster, streamKey(g.topic), node)
			if err != nil {
				g.err = fmt.Errorf("cannot find the cluster node of stream %s: %w", g.topic, err)
				continue
			}
			p.pipeline(ctx, retry, []*topicGroup{g})
		}
	}
}

// pipeline sends groups through c until each has its outcome. A group whose
// script failed on a network error or a timeout is sent again, up to
// Retries times (the script adds nothing twice); one answered NOSCRIPT (a
// restarted or new master, SCRIPT FLUSH) is sent again with the script's
// source (EVAL), which caches it; one whose script is refused (ACL, no
// scripting) is sent again as plain XADDs. Plain XADDs are never sent
// again.
func (p *Publisher) pipeline(ctx context.Context, c redis.UniversalClient, groups []*topicGroup) {
	pending := groups
	for attempt := 0; len(pending) > 0; {
		durErr := p.pipelineOnce(ctx, c, pending)
		var again []*topicGroup
		var lost error
		for _, g := range pending {
			if g.plain {
				g.settlePlain(durErr)
				continue
			}
			err := g.script.Err()
			switch {
			case err == nil || rediserr.IsNil(err): // nil: an earlier send added them
				g.err, g.durErr = nil, durErr
			case rediserr.IsNoScript(err) && !g.eval:
				g.eval = true
				again = append(again, g)
			case rediserr.IsScriptRefused(err) && !p.config.Idempotency.enabled() &&
				p.config.retention(g.topic).Overflow != RefusePublish:
				// With Idempotency, or a ceiling that refuses, the refusal
				// is the caller's to see: plain XADDs would neither
				// deduplicate nor check the stream's length.
				p.refuseScripts(g.topic, err)
				g.plain = true
				again = append(again, g)
			case !rediserr.IsServer(err) && attempt < p.config.Retries:
				lost = err
				again = append(again, g)
			case !rediserr.IsServer(err):
				g.err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
			default:
				g.err = err
				p.countRefused(ctx, c, g)
			}
		}
		if lost != nil {
			time.Sleep(expDelay(retryInitial, retryMax, attempt))
			attempt++
			reloadOnNetworkError(p.client, lost)
		}
		pending = again
	}
}

// refuseScripts turns to plain XADDs for good on topic, whose script the
// server refused before it wrote anything (an ACL without EVALSHA, EVAL,
// GET or SET on the topic's keys, or a server without scripting), and says
// once what that costs. A refusal of the topic's keys or of XADD itself
// fails the plain XADD too, with its own error.
func (p *Publisher) refuseScripts(topic string, err error) {
	p.scriptsRefused.Store(topic, struct{}{})
	if p.refusalLogged.Swap(true) {
		return
	}
	p.logger.Error("Cannot publish with the retry-safe script (ACL: EVALSHA, EVAL, GET, SET on the "+
		"topic's keys, or scripting disabled); publishing to the topic with "+
		"plain XADD: a Publish whose reply is lost fails with ErrOutcomeUnknown instead of being sent again",
		err, watermill.LogFields{"topic": topic})
}

// pipelineOnce sends groups through c in one pipeline, followed by WAIT or
// WAITAOF when Durability asks for it, and returns the durability error.
// Every write goes with NoRetry, so go-redis never sends the pipeline again
// on its own. A failed retention trim is logged: it never fails the
// messages.
func (p *Publisher) pipelineOnce(ctx context.Context, c redis.UniversalClient, groups []*topicGroup) error {
	var trims []*redis.IntCmd
	queue := func(pipe noretry.Processor) {
		for _, g := range groups {
			p.queueGroup(ctx, pipe, g)
			if r := p.config.retention(g.topic); r.trimsInPipeline() {
				if pl, ok := pipe.(redis.Pipeliner); ok {
					trims = append(trims, pl.XTrimMinIDApprox(ctx, streamKey(g.topic), entryid.MinAt(time.Now().Add(-r.MaxAge)), 0))
				}
			}
		}
	}
	if len(groups) == 1 && !p.config.Durability.enabled() && !p.config.retention(groups[0].topic).trimsInPipeline() &&
		(!groups[0].plain || groups[0].messages == 1) {
		// One command: no pipeline's bookkeeping.
		queue(c)
		return nil
	}
	pipe := c.Pipeline()
	queue(pipe)
	confirm := p.config.Durability.queue(ctx, pipe)
	_, _ = pipe.Exec(ctx) // errors are read per command
	for _, trim := range trims {
		if err := trim.Err(); err != nil {
			p.trimLog.Failure(p.logger, "Cannot trim stream by MaxAge", err, watermill.LogFields{"stream": trim.Args()[1]})
		}
	}
	return confirm()
}

// queueGroup queues the commands that add the messages of g.
func (p *Publisher) queueGroup(ctx context.Context, pipe noretry.Processor, g *topicGroup) {
	if !g.plain {
		var script *noretry.Script
		var keys []string
		var args []interface{}
		if p.config.Idempotency.enabled() {
			script, keys, args = p.idempotentArgs(g)
		} else {
			script, keys, args = p.sequencedArgs(g)
		}
		if g.eval {
			g.script = noretry.Do(ctx, pipe, script.EvalArgs(keys, args...)...)
		} else {
			g.script = noretry.Do(ctx, pipe, script.Args(keys, args...)...)
		}
		return
	}
	r := p.config.retention(g.topic)
	minID := r.minID()
	g.xadds = g.xadds[:0]
	for _, req := range g.reqs {
		for _, f := range req.fields {
			args := make([]interface{}, 0, 7+len(f))
			args = append(args, "xadd", streamKey(g.topic))
			switch {
			case r.addMaxLen() > 0:
				args = append(args, "maxlen", "~", r.addMaxLen())
			case minID != "":
				args = append(args, "minid", "~", minID)
			}
			args = append(args, "*")
			g.xadds = append(g.xadds, noretry.Do(ctx, pipe, append(args, f...)...))
		}
	}
}

// settlePlain reads the outcome of g's plain XADDs: per request, which
// messages were added.
func (g *topicGroup) settlePlain(durErr error) {
	g.err, g.durErr = nil, durErr
	for _, cmd := range g.xadds {
		if err := cmd.Err(); err != nil && !rediserr.IsServer(err) {
			// A network error fails every command of the pipeline,
			// whether or not Redis ran it.
			g.err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
			return
		}
	}
}

// result is the outcome of request i of g.
func (g *topicGroup) result(i int) error {
	req := g.reqs[i]
	if g.err == nil && g.plain {
		return g.plainResult(i)
	}
	if g.err != nil {
		if len(req.msgs) == 1 {
			return fmt.Errorf("cannot add message %s to stream %s: %w", req.msgs[0].UUID, g.topic, redisError(g.err))
		}
		return fmt.Errorf("cannot add the %d messages of the call to stream %s: %w", len(req.msgs), g.topic, redisError(g.err))
	}
	if g.durErr != nil {
		return fmt.Errorf("messages of stream %s were added but not confirmed: %w", g.topic, g.durErr)
	}
	return nil
}

// plainResult is the outcome of request i of a group of plain XADDs, which
// Redis may have added in part: then a *PartialPublishError says which.
func (g *topicGroup) plainResult(i int) error {
	first := 0
	for _, req := range g.reqs[:i] {
		first += len(req.msgs)
	}
	req := g.reqs[i]
	var added []string
	var refused []*message.Message
	var firstErr error
	for j, cmd := range g.xadds[first : first+len(req.msgs)] {
		if err := cmd.Err(); err != nil {
			refused = append(refused, req.msgs[j])
			if firstErr == nil {
				firstErr = fmt.Errorf("cannot add message %s to stream %s: %w", req.msgs[j].UUID, g.topic, redisError(err))
			}
			continue
		}
		added = append(added, req.msgs[j].UUID)
	}
	switch {
	case len(refused) == 0 && g.durErr != nil:
		return fmt.Errorf("messages of stream %s were added but not confirmed: %w", g.topic, g.durErr)
	case len(refused) == 0:
		return nil
	case len(added) == 0 && len(refused) == 1:
		return firstErr
	case len(added) == 0:
		return fmt.Errorf("none of the %d messages of the call was added, the first: %w", len(refused), firstErr)
	}
	return &PartialPublishError{Added: added, Refused: refused, Err: firstErr}
}
