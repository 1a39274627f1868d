package millrace

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/streams"
)

// Publisher adds messages to Redis streams, one entry per message.
//
// Publish is blocking: it returns once Redis has accepted every message of
// the call, or with the first error. Concurrent calls share pipelines: a
// caller that finds a pipeline slot free sends its own messages together
// with every call queued meanwhile, so a lone message goes out at once, in
// the caller's goroutine, and throughput grows with concurrency without any
// timer. A caller that finds every slot in use waits only for its outcome:
// the sender that frees a slot hands it, with the calls queued meanwhile,
// to the first of their callers, which it wakes anyway, so no goroutine is
// woken but to send or to return.
type Publisher struct {
	client  redis.UniversalClient
	config  PublisherConfig
	logger  watermill.LoggerAdapter
	version versionCheck

	// queue holds the calls waiting for a pipeline, queued counts them
	// (after they are queued, before they are dequeued: see drive); free
	// holds the pipeline slots not in use, each a producer of the
	// retry-safe sequence.
	queue  chan *publishRequest
	queued atomic.Int64
	free   chan *producer
	// scriptsRefused holds the topics whose publishing script the server
	// refused (ACL, no scripting): plain XADDs to them from then on.
	// refusalLogged says the first refusal was logged.
	scriptsRefused sync.Map // topic → struct{}
	refusalLogged  atomic.Bool
	// mu is held shared by every Publish in progress and exclusively by
	// Close, so Close waits for them.
	mu     sync.RWMutex
	closed bool
	shut   chan struct{} // closed once Close has finished

	trimmer *trimmer // nil unless some topic's retention is KeepUnacked
	trimLog errlog.Locked
	wakeLog errlog.Locked // refused announcements of delayed messages
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
		free:   make(chan *producer, config.Pipelines),
		shut:   make(chan struct{}),
	}
	id := watermill.NewShortUUID()
	for i := range config.Pipelines {
		p.free <- &producer{id: producerID(id, i)}
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
	msgs  []*message.Message
	// fields are the field and value arguments of each message's entry,
	// marshaled by the caller: the pipeline's sender only queues them.
	fields [][]interface{}
	// done receives the call's outcome, or errHandOff when its caller is
	// to send batch with the slot prod (set before).
	done  chan error
	batch []*publishRequest
	prod  *producer
}

// errHandOff tells a caller waiting for its outcome to send the batch
// handed to it.
var errHandOff = errors.New("send the batch handed over")

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
	p.queued.Add(1)
	err = p.await(req)
	if err == nil && p.trimmer != nil && p.config.retention(topic).KeepUnacked {
		p.trimmer.touch(topic)
	}
	return err
}

// await returns req's outcome. It sends the queued calls itself when a
// pipeline slot is free, and whenever a sender hands it a batch.
func (p *Publisher) await(req *publishRequest) error {
	select {
	case prod := <-p.free:
		p.drive(prod, p.dequeue(prod))
	default:
	}
	for {
		err := <-req.done
		if err != errHandOff {
			return err
		}
		prod, batch := req.prod, req.batch
		req.prod, req.batch = nil, nil
		p.drive(prod, batch)
	}
}

// drive sends batch with the slot prod, frees the slot and, when calls
// were queued meanwhile, takes it again and hands it with them to the
// caller of the first. The look at the queue comes after the slot is
// free: a caller that queued its call and found no slot free (await) did
// so before, so either this look or the sender that took the slot since
// sees its call.
func (p *Publisher) drive(prod *producer, batch []*publishRequest) {
	for {
		if len(batch) > 0 {
			p.send(batch, prod)
		}
		p.free <- prod
		if p.queued.Load() <= 0 {
			return
		}
		select {
		case prod = <-p.free:
		default:
			return // its holder looks at the queue when it frees it
		}
		if batch = p.dequeue(prod); len(batch) > 0 {
			first := batch[0]
			first.prod, first.batch = prod, batch
			first.done <- errHandOff
			return
		}
	}
}

// prepare marshals msgs in the caller's goroutine, so that marshaling runs
// in parallel across publishing goroutines.
func (p *Publisher) prepare(topic string, msgs []*message.Message) (*publishRequest, error) {
	req := &publishRequest{
		topic:  topic,
		msgs:   msgs,
		fields: make([][]interface{}, len(msgs)),
		done:   make(chan error, 1),
	}
	for i, msg := range msgs {
		if err := msg.Context().Err(); err != nil {
			return nil, fmt.Errorf("message %s: %w", msg.UUID, err)
		}
		var err error
		if req.fields[i], err = p.appendFields(make([]interface{}, 0, 6), topic, msg); err != nil {
			return nil, err
		}
	}
	return req, nil
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
