package millrace

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
)

// Publisher adds messages to Redis streams, one entry per message.
//
// Publish is blocking: it returns once Redis has accepted every message of
// the call, or with the first error. Concurrent calls share pipelines: a
// caller that finds a pipeline slot free sends its own messages together
// with every call queued meanwhile, so a lone message goes out at once, in
// the caller's goroutine, and throughput grows with concurrency without any
// timer.
type Publisher struct {
	client  redis.UniversalClient
	config  PublisherConfig
	logger  watermill.LoggerAdapter
	version versionCheck

	// queue holds the calls waiting for a pipeline; slots holds a token per
	// pipeline in flight.
	queue chan *publishRequest
	slots chan struct{}
	// mu is held shared by every Publish in progress and exclusively by
	// Close, so Close waits for them.
	mu     sync.RWMutex
	closed bool
	shut   chan struct{} // closed once Close has finished

	trimmer *trimmer // nil unless some topic's retention is KeepUnacked
	trimLog lockedErrorLog
	wakeLog lockedErrorLog // refused announcements of delayed messages
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher over client. The client is borrowed:
// Close does not close it. A nil logger logs nothing.
func NewPublisher(client redis.UniversalClient, config PublisherConfig, logger watermill.LoggerAdapter) (*Publisher, error) {
	if client == nil {
		return nil, ErrNilClient
	}
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, fmt.Errorf("invalid publisher config: %w", err)
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	p := &Publisher{
		client: client,
		config: config,
		logger: logger,
		queue:  make(chan *publishRequest, config.MaxBatch),
		slots:  make(chan struct{}, config.Pipelines),
		shut:   make(chan struct{}),
	}
	if config.keepsUnacked() {
		p.trimmer = newTrimmer(client, config, logger)
		p.trimmer.start()
	}
	return p, nil
}

// publishRequest is one Publish call on its way to a pipeline.
type publishRequest struct {
	topic string
	// cmds are the arguments of each message's command (XADD, or EVALSHA
	// of the idempotent script), built by the caller: the pipeline's
	// sender only queues them.
	cmds    [][]interface{}
	msgs    []*message.Message
	results []redis.Cmder // XADD or idempotent script replies, by message
	done    chan error
	// taken is set once a sender has dequeued the request; its caller then
	// only waits for done.
	taken atomic.Bool
}

// Publish adds msgs to topic's stream in one pipeline, in order. A message
// whose context is already done is not sent and fails the call.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == "" {
		return ErrEmptyTopic
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPublisherClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	for i, msg := range msgs {
		if msg == nil {
			return fmt.Errorf("message %d of %d: %w", i, len(msgs), ErrNilMessage)
		}
	}
	ctx := msgs[0].Context()
	if err := p.version.check(ctx, p.client, streamKey(topic)); err != nil {
		return err
	}
	msgs, err := p.publishDelayed(topic, msgs) // delay.go
	if err != nil || len(msgs) == 0 {
		return err
	}
	req, err := p.prepare(topic, msgs)
	if err != nil {
		return err
	}
	p.queue <- req
	err = p.await(req)
	if err == nil && p.trimmer != nil && p.config.retention(topic).KeepUnacked {
		p.trimmer.touch(topic)
	}
	return err
}

// await returns req's result, sending queued requests itself whenever a
// pipeline slot is free and req is still queued.
func (p *Publisher) await(req *publishRequest) error {
	for !req.taken.Load() {
		select {
		case err := <-req.done:
			return err
		case p.slots <- struct{}{}:
			if !req.taken.Load() {
				p.sendQueued()
			}
			<-p.slots
		}
	}
	return <-req.done
}

// prepare marshals msgs in the caller's goroutine, so that marshaling runs
// in parallel across publishing goroutines.
func (p *Publisher) prepare(topic string, msgs []*message.Message) (*publishRequest, error) {
	req := &publishRequest{
		topic: topic,
		cmds:  make([][]interface{}, len(msgs)),
		msgs:  msgs,
		done:  make(chan error, 1),
	}
	retention := p.config.retention(topic)
	minID := retention.minID()
	for i, msg := range msgs {
		if err := msg.Context().Err(); err != nil {
			return nil, fmt.Errorf("message %s: %w", msg.UUID, err)
		}
		var err error
		if p.config.Idempotency.enabled() {
			req.cmds[i], err = p.idempotentAddArgs(topic, retention, minID, msg)
		} else {
			req.cmds[i], err = p.addArgs(topic, retention, minID, msg)
		}
		if err != nil {
			return nil, err
		}
	}
	return req, nil
}

// addArgs is the XADD of msg to topic, with retention's trimming clause.
func (p *Publisher) addArgs(topic string, r Retention, minID string, msg *message.Message) ([]interface{}, error) {
	args := make([]interface{}, 0, 12)
	args = append(args, "xadd", streamKey(topic))
	switch {
	case r.MaxLen > 0:
		args = append(args, "maxlen", "~", r.MaxLen)
	case minID != "":
		args = append(args, "minid", "~", minID)
	}
	args = append(args, "*")
	return p.appendFields(args, topic, msg)
}

// appendFields appends the fields of msg's entry to dst, in name order.
func (p *Publisher) appendFields(dst []interface{}, topic string, msg *message.Message) ([]interface{}, error) {
	var err error
	if m, ok := p.config.Marshaler.(flatMarshaler); ok {
		dst, err = m.appendFlat(dst, msg)
	} else {
		var fields map[string]interface{}
		if fields, err = p.config.Marshaler.Marshal(topic, msg); err == nil {
			dst = append(dst, streams.Flatten(fields)...)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot marshal message %s: %w", msg.UUID, err)
	}
	return dst, nil
}

// sendQueued sends the calls queued now, up to MaxBatch messages, in one
// pipeline. It runs in a caller that holds a pipeline slot.
func (p *Publisher) sendQueued() {
	var batch []*publishRequest
	size := 0
	for size < p.config.MaxBatch {
		select {
		case req := <-p.queue:
			req.taken.Store(true)
			batch = append(batch, req)
			size += len(req.cmds)
			continue
		default:
		}
		break
	}
	if len(batch) > 0 {
		p.send(batch)
	}
}

// send runs one pipeline for batch and answers every request in it. The
// pipeline is not tied to any one caller's context: a caller's cancellation
// must not fail the messages of the others.
func (p *Publisher) send(batch []*publishRequest) {
	ctx := context.Background()
	durable := p.config.Durability.enabled()
	if len(batch) == 1 && len(batch[0].cmds) == 1 && !durable && !p.config.Idempotency.enabled() &&
		!p.config.retention(batch[0].topic).trimsInPipeline() {
		// A lone message skips the pipeline's bookkeeping.
		req := batch[0]
		req.results = []redis.Cmder{p.client.Do(ctx, req.cmds[0]...)}
		err := req.result(nil)
		reloadOnNetworkError(p.client, err)
		req.done <- err
		return
	}
	cluster, isCluster := p.client.(*redis.ClusterClient)
	if !durable || !isCluster {
		durErr := p.pipeline(ctx, p.client, batch)
		for _, req := range batch {
			err := req.result(durErr)
			reloadOnNetworkError(p.client, err)
			req.done <- err
		}
		return
	}
	p.sendToMasters(ctx, cluster, batch)
}

// sendToMasters sends each request to its stream's master with WAIT in the
// same pipeline: WAIT counts the replicas that have the writes of its own
// connection. A request answered MOVED or ASK (a failover or a slot
// migration under way) was not executed: it is sent once more to the new
// master.
func (p *Publisher) sendToMasters(ctx context.Context, cluster *redis.ClusterClient, batch []*publishRequest) {
	byNode := map[*redis.Client][]*publishRequest{}
	for _, req := range batch {
		node, err := cluster.MasterForKey(ctx, streamKey(req.topic))
		if err != nil {
			req.done <- fmt.Errorf("cannot find the cluster node of stream %s: %w", req.topic, err)
			continue
		}
		byNode[node] = append(byNode[node], req)
	}
	for node, reqs := range byNode {
		durErr := p.pipeline(ctx, node, reqs)
		for _, req := range reqs {
			if !req.redirected() {
				err := req.result(durErr)
				reloadOnNetworkError(p.client, err)
				req.done <- err
				continue
			}
			retry, err := masterAfterRedirect(ctx, cluster, streamKey(req.topic), node)
			if err != nil {
				req.done <- fmt.Errorf("cannot find the cluster node of stream %s: %w", req.topic, err)
				continue
			}
			durErr := p.pipeline(ctx, retry, []*publishRequest{req})
			req.done <- req.result(durErr)
		}
	}
}

// pipeline sends batch through c and returns the durability error. With
// Idempotency, the requests refused with NOSCRIPT are sent again once the
// script is loaded, and those that failed on a network error or a timeout
// up to Idempotency.Retries times: the script adds each message once.
func (p *Publisher) pipeline(ctx context.Context, c redis.Cmdable, batch []*publishRequest) error {
	durErr := p.pipelineOnce(ctx, c, batch)
	if !p.config.Idempotency.enabled() {
		return durErr
	}
	again := func() []*publishRequest {
		var out []*publishRequest
		for _, req := range batch {
			if req.retryable() {
				out = append(out, req)
			}
		}
		return out
	}
	// A NOSCRIPT reply (a restarted or new master, SCRIPT FLUSH) loads
	// the script and sends again, at most twice, without counting a retry.
	for attempt, loads := 0, 0; ; {
		reqs := again()
		if len(reqs) == 0 {
			break
		}
		if noScript(reqs) {
			if loads++; loads > 2 || idempotentAddScript.Load(ctx, c).Err() != nil {
				break
			}
		} else {
			if attempt >= p.config.Idempotency.Retries {
				break
			}
			time.Sleep(expDelay(retryInitial, retryMax, attempt))
			attempt++
			reloadOnNetworkError(p.client, reqs[0].firstError())
		}
		durErr = cmp.Or(durErr, p.pipelineOnce(ctx, c, reqs))
	}
	return durErr
}

// pipelineOnce sends batch through c in one pipeline, followed by WAIT or
// WAITAOF when Durability asks for it, and returns the durability error.
// A failed retention trim is logged: it never fails the messages.
func (p *Publisher) pipelineOnce(ctx context.Context, c redis.Cmdable, batch []*publishRequest) error {
	pipe := c.Pipeline()
	var trims []*redis.IntCmd
	var trimmed map[string]bool // topics whose XTRIM is queued
	for _, req := range batch {
		req.results = make([]redis.Cmder, len(req.cmds))
		for i, args := range req.cmds {
			req.results[i] = pipe.Do(ctx, args...)
		}
		if r := p.config.retention(req.topic); r.trimsInPipeline() && !trimmed[req.topic] {
			if trimmed == nil {
				trimmed = map[string]bool{}
			}
			trimmed[req.topic] = true
			trims = append(trims, pipe.XTrimMinIDApprox(ctx, streamKey(req.topic), entryid.MinAt(time.Now().Add(-r.MaxAge)), 0))
		}
	}
	confirm := p.config.Durability.queue(ctx, pipe)
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for _, trim := range trims {
		if err := trim.Err(); err != nil {
			p.trimLog.failure(p.logger, "Cannot trim stream by MaxAge", err, watermill.LogFields{"stream": trim.Args()[1]})
		}
	}
	return confirm()
}

// redirected reports whether Redis answered the request with MOVED or ASK.
func (req *publishRequest) redirected() bool {
	for _, cmd := range req.results {
		if rediserr.IsRedirect(cmd.Err()) {
			return true
		}
	}
	return false
}

// result reports the first failed XADD of a request, if any, and how many
// of its messages failed; failing that, durErr.
func (req *publishRequest) result(durErr error) error {
	var first error
	failed := 0
	for i, cmd := range req.results {
		if err := cmd.Err(); err != nil && !rediserr.IsNil(err) { // nil: added before (Idempotency)
			if first == nil {
				first = fmt.Errorf("cannot add message %s to stream %s: %w", req.msgs[i].UUID, req.topic, redisError(err))
			}
			failed++
		}
	}
	if failed > 1 {
		return fmt.Errorf("%d of %d messages failed, the first: %w", failed, len(req.results), first)
	}
	if first != nil {
		return first
	}
	if durErr != nil {
		return fmt.Errorf("messages of stream %s were added but not confirmed: %w", req.topic, durErr)
	}
	return nil
}

// Close waits for the Publish calls in progress, makes a last round of
// KeepUnacked trimming and stops. It is idempotent and safe to call
// concurrently: every call returns once the first has finished. It does not
// close the Redis client.
func (p *Publisher) Close() error {
	p.mu.Lock()
	first := !p.closed
	p.closed = true
	p.mu.Unlock()
	if first {
		if p.trimmer != nil {
			p.trimmer.stop()
		}
		close(p.shut)
	}
	<-p.shut
	return nil
}

// firstError is the first failure among req's replies, if any.
func (req *publishRequest) firstError() error {
	for _, cmd := range req.results {
		if err := cmd.Err(); err != nil && !rediserr.IsNil(err) {
			return err
		}
	}
	return nil
}
