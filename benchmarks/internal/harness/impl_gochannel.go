package harness

import (
	"context"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/redis/go-redis/v9"
)

// goChannelImpl is Watermill's GoChannel, persistent and in memory, drained
// through the same Router and handler as Millrace: what the Router costs on
// its own, with no broker at all. Its pre-fill publishes into a GoChannel
// kept per topic until a consumer of that topic closes. GoChannel has no
// consumer groups (every subscriber gets every message), so it consumes one
// topic with one subscriber only.
type goChannelImpl struct {
	mu       sync.Mutex
	channels map[string]*gochannel.GoChannel // by topic
}

func newGoChannel() *goChannelImpl {
	return &goChannelImpl{channels: map[string]*gochannel.GoChannel{}}
}

func (g *goChannelImpl) Name() string { return GoChannel }

func (g *goChannelImpl) Batch() int { return 1 }

func (g *goChannelImpl) NewSender(*redis.Client) (Sender, error) {
	return nil, fmt.Errorf("GoChannel publisher: %w", ErrNotApplicable)
}

func (g *goChannelImpl) Encode(string, *message.Message) (map[string]any, error) {
	return nil, fmt.Errorf("GoChannel entries: %w", ErrNotApplicable)
}

// prefill publishes n messages into topic's GoChannel, creating it.
func (g *goChannelImpl) prefill(_ context.Context, topic string, payload []byte, n int) error {
	ch := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	g.mu.Lock()
	if old := g.channels[topic]; old != nil {
		old.Close()
	}
	g.channels[topic] = ch
	g.mu.Unlock()
	for range n {
		if err := ch.Publish(topic, newMessage(payload)); err != nil {
			return err
		}
	}
	return nil
}

// Consume drains the pre-filled GoChannel of the one topic through a Router.
// The Router closes the GoChannel when it closes.
func (g *goChannelImpl) Consume(ctx context.Context, _ *redis.Client, spec ConsumeSpec, handle func(int64)) (Consumer, error) {
	if len(spec.Topics) != 1 || spec.Subscribers != 1 || spec.PerTopic {
		return nil, fmt.Errorf("GoChannel consumes one topic with one subscriber: %w", ErrNotApplicable)
	}
	topic := spec.Topics[0]
	g.mu.Lock()
	ch := g.channels[topic]
	delete(g.channels, topic)
	g.mu.Unlock()
	if ch == nil {
		return nil, fmt.Errorf("GoChannel: topic %s was not pre-filled", topic)
	}
	return runRouter(ctx, []routerHandler{{topic, ch}}, handle)
}
