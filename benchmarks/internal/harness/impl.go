package harness

import (
	"context"
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
	// MillraceIdempotent is Millrace with PublisherConfig.Idempotency, for
	// the Go benchmarks of publishing only.
	MillraceIdempotent = "millrace-idempotent"
)

// Names lists every implementation, in the order cmd/bench alternates them.
var Names = []string{Millrace, Peer, Raw}

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
	// Consume starts subs consumers of group on topic (creating the group
	// at the start of the stream if needed) and returns once they are
	// running. handle is called once per message, possibly concurrently,
	// with the message's [SentKey] (0 when absent). Watermill
	// implementations call it from the Router handler right after
	// msg.Ack(), as watermill-benchmark counts; raw calls it for each
	// message of a batch and then acks the batch with one XACK.
	Consume(ctx context.Context, client *redis.Client, topic, group string, subs int, handle func(sentNs int64)) (Consumer, error)
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
	case Peer:
		return newPeer(), nil
	case Raw:
		return newRaw(rawBatch), nil
	}
	return nil, fmt.Errorf("unknown implementation %q (want one of %v)", name, Names)
}

// NewClient returns a go-redis client for addr with a pool large enough for
// 64 publishing goroutines plus the blocking reads of every subscriber.
func NewClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:         addr,
		PoolSize:     128,
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
