package millrace

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/rediserr"
)

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

// firstError is the first failure among req's replies, if any.
func (req *publishRequest) firstError() error {
	for _, cmd := range req.results {
		if err := cmd.Err(); err != nil && !rediserr.IsNil(err) {
			return err
		}
	}
	return nil
}
