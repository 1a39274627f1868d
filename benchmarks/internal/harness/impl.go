package harness

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// Names of the implementations under test, in the order they alternate.
const (
	Millrace = "millrace"
	Peer     = "peer"
	Raw      = "raw"
	// MillracePlain is Millrace with PublisherConfig.PlainXAdd: one plain
	// XADD per message, never sent again (not retry-safe). It differs from
	// Millrace in publishing only.
	MillracePlain = "millrace-plain"
	// MillraceIdempotent is Millrace with PublisherConfig.Idempotency
	// (a 10-minute window of message UUIDs). It differs from Millrace in
	// publishing only.
	MillraceIdempotent = "millrace-idempotent"
	// GoChannel is Watermill's in-memory GoChannel (persistent, pre-filled)
	// drained through the same Router and handler: the Router's own
	// ceiling. It consumes one topic with one subscriber only.
	GoChannel = "gochannel"
	// MillraceDirect is Millrace read from the subscription channel
	// directly, without a Router: the handler acks and counts. It differs
	// from Millrace in consuming only.
	MillraceDirect = "millrace-direct"
)

// Names lists the implementations over Redis that every figure measures, in
// the order cmd/bench alternates them.
var Names = []string{Millrace, Peer, Raw}

// PublishNames are the Millrace configurations of publishing that only the
// publish figure (and latency, for PlainXAdd) measures beside [Millrace],
// whose publishing is retry-safe by default.
var PublishNames = []string{MillracePlain, MillraceIdempotent}

// ConsumeNames are the implementations only the consume figure measures.
var ConsumeNames = []string{GoChannel, MillraceDirect}

// ErrNotApplicable is returned by an implementation asked for a figure or
// shape it has no counterpart of (a publisher of GoChannel, 4 subscribers
// of one GoChannel group).
var ErrNotApplicable = errors.New("not applicable to this implementation")

// ConsumeSpec is what an implementation's consumers read.
type ConsumeSpec struct {
	Topics      []string // the topics read
	Group       string   // the consumer group (see PerTopic)
	Subscribers int      // consumers in Group, each reading every topic; ignored with PerTopic
	// PerTopic makes one consumer per topic, each in a group of its own
	// ([ConsumeSpec.GroupOf]), all over one client: the shape of Watermill's
	// CQRS event processor, which builds one Subscriber per handler.
	PerTopic bool
}

// GroupOf is the consumer group of Topics[i].
func (s ConsumeSpec) GroupOf(i int) string {
	if !s.PerTopic {
		return s.Group
	}
	return s.Group + "_" + strconv.Itoa(i)
}

// Reader is one consumer of a [ConsumeSpec]: a Subscriber, for Watermill
// implementations.
type Reader struct {
	Group  string
	Topics []string
}

// Readers lists the consumers spec describes.
func (s ConsumeSpec) Readers() []Reader {
	var rs []Reader
	if s.PerTopic {
		for i, topic := range s.Topics {
			rs = append(rs, Reader{s.GroupOf(i), []string{topic}})
		}
		return rs
	}
	for range s.Subscribers {
		rs = append(rs, Reader{s.Group, s.Topics})
	}
	return rs
}

// SentKey is the metadata key (and, for raw, the entry field) holding a
// message's publish time in Unix nanoseconds, for the latency figure.
const SentKey = "bench_sent_ns"

// Impl is one implementation under test.
type Impl interface {
	// Name is one of [Names].
	Name() string
	// Batch is how many messages one Send carries in the publish figure:
	// 1 for Watermill publishers (one message per Publish call, as in
	// watermill-benchmark), the pipeline size for raw go-redis.
	Batch() int
	// NewSender returns a publisher over client. Closing it may close
	// client (the peer's does).
	NewSender(client *redis.Client) (Sender, error)
	// Encode returns the entry fields the implementation's publisher writes
	// for msg, so that streams can be pre-filled quickly with the very
	// entries the implementation would have written.
	Encode(topic string, msg *message.Message) (map[string]any, error)
	// Consume starts the consumers spec describes (creating each group at
	// the start of its stream if needed) and returns once they are
	// running. handle is called once per message, possibly concurrently,
	// with the message's [SentKey] (0 when absent). Watermill
	// implementations call it from the Router handler right after
	// msg.Ack(), as watermill-benchmark counts; raw calls it for each
	// message of a batch and then acks the batch with one XACK.
	Consume(ctx context.Context, client *redis.Client, spec ConsumeSpec, handle func(sentNs int64)) (Consumer, error)
}

// Sender publishes messages and returns once Redis has accepted them.
type Sender interface {
	Send(ctx context.Context, topic string, msgs []*message.Message) error
	Close() error
}

// Consumer is a running set of consumers; Close stops them (bounded).
type Consumer interface {
	Close() error
}

// NewImpl returns the implementation called name. rawBatch is the raw
// publisher's pipeline size.
func NewImpl(name string, rawBatch int) (Impl, error) {
	switch name {
	case Millrace:
		return newMillrace(), nil
	case MillracePlain:
		return newMillracePlain(), nil
	case MillraceIdempotent:
		return newMillraceIdempotent(), nil
	case Peer:
		return newPeer(), nil
	case Raw:
		return newRaw(rawBatch), nil
	case GoChannel:
		return newGoChannel(), nil
	case MillraceDirect:
		return newMillraceDirect(), nil
	}
	return nil, fmt.Errorf("unknown implementation %q (want one of %v, %v or %v)", name, Names, PublishNames, ConsumeNames)
}

// NewClient returns a go-redis client for addr with a pool large enough for
// 64 publishing goroutines plus the blocking reads of a few subscribers.
func NewClient(addr string) *redis.Client { return NewClientPool(addr, 128) }

// NewClientPool returns a go-redis client for addr with a pool of size
// connections at most (0: go-redis's default), for subscribers of many
// topics.
func NewClientPool(addr string, size int) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:         addr,
		PoolSize:     size,
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
	})
}

// parseSent reads a [SentKey] value; anything unparsable is 0.
func parseSent(s string) int64 {
	if s == "" {
		return 0
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
