package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// Raw go-redis field names: the peer's UUID and payload fields, no metadata.
const (
	rawUUIDField    = "_watermill_message_uuid"
	rawPayloadField = "payload"
)

// Raw consumer settings: XREADGROUP COUNT rawReadCount BLOCK rawBlock, then
// one XACK for the whole batch.
const (
	rawReadCount = 100
	rawBlock     = time.Second
)

// rawImpl is the ceiling: go-redis with no adapter. Publishing pipelines
// batch XADDs per round trip; consuming reads batches of 100 and acks each
// batch with one XACK. It decodes nothing beyond picking out the publish time.
type rawImpl struct{ batch int }

func newRaw(batch int) Impl {
	if batch < 1 {
		batch = 1
	}
	return &rawImpl{batch: batch}
}

func (r *rawImpl) Name() string { return Raw }

func (r *rawImpl) Batch() int { return r.batch }

func (r *rawImpl) Encode(_ string, msg *message.Message) (map[string]any, error) {
	v := map[string]any{rawUUIDField: msg.UUID, rawPayloadField: []byte(msg.Payload)}
	if s := msg.Metadata.Get(SentKey); s != "" {
		v[SentKey] = s
	}
	return v, nil
}

// values is Encode as the flat slice XADD takes, without a map.
func (r *rawImpl) values(msg *message.Message) []any {
	v := []any{rawUUIDField, msg.UUID, rawPayloadField, []byte(msg.Payload)}
	if s := msg.Metadata.Get(SentKey); s != "" {
		v = append(v, SentKey, s)
	}
	return v
}

func (r *rawImpl) NewSender(client *redis.Client) (Sender, error) {
	return &rawSender{impl: r, client: client}, nil
}

// rawSender sends each call's messages in one pipeline (one XADD each).
type rawSender struct {
	impl   *rawImpl
	client *redis.Client
}

func (s *rawSender) Send(ctx context.Context, topic string, msgs []*message.Message) error {
	if len(msgs) == 1 {
		return s.client.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: s.impl.values(msgs[0])}).Err()
	}
	pipe := s.client.Pipeline()
	for _, m := range msgs {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: s.impl.values(m)})
	}
	_, err := pipe.Exec(ctx)
	return err
}

func (s *rawSender) Close() error { return nil }

// Consume reads all of spec's topics with one XREADGROUP per consumer (or,
// with PerTopic, one consumer per topic and group).
func (r *rawImpl) Consume(ctx context.Context, client *redis.Client, spec ConsumeSpec, handle func(int64)) (Consumer, error) {
	for i, topic := range spec.Topics {
		err := client.XGroupCreateMkStream(ctx, topic, spec.GroupOf(i), "0").Err()
		if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
			return nil, fmt.Errorf("XGROUP CREATE: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &rawConsumer{cancel: cancel}
	for i, r := range spec.Readers() {
		c.wg.Add(1)
		go c.loop(ctx, client, r.Topics, r.Group, fmt.Sprintf("raw-%d", i), handle)
	}
	return c, nil
}

// rawConsumer is a set of goroutines, one consumer name each.
type rawConsumer struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// loop reads topics with one XREADGROUP (STREAMS t1 t2 … > > …) and acks
// each stream's part of a batch with one XACK.
func (c *rawConsumer) loop(ctx context.Context, client *redis.Client, topics []string, group, name string, handle func(int64)) {
	defer c.wg.Done()
	streams := append(slices.Clone(topics), slices.Repeat([]string{">"}, len(topics))...)
	args := &redis.XReadGroupArgs{Group: group, Consumer: name, Streams: streams, Count: rawReadCount, Block: rawBlock}
	ids := make([]string, 0, rawReadCount)
	for ctx.Err() == nil {
		read, err := client.XReadGroup(ctx, args).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		for _, s := range read {
			ids = ids[:0]
			for _, m := range s.Messages {
				sent, _ := m.Values[SentKey].(string)
				handle(parseSent(sent))
				ids = append(ids, m.ID)
			}
			if len(ids) > 0 {
				// Not cancelled by Close: the batch just handled is acked.
				client.XAck(context.WithoutCancel(ctx), s.Stream, group, ids...)
			}
		}
	}
}

// Close stops the consumers; a blocked read ends within rawBlock.
func (c *rawConsumer) Close() error {
	c.cancel()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(rawBlock + 10*time.Second):
		return errors.New("raw consumers did not stop")
	}
}
