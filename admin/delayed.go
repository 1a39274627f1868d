package admin

import (
	"context"
	"fmt"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/streams"
)

// defaultMoveLimit is the most due delayed messages one MoveDueDelayed
// call moves when its limit is not positive.
const defaultMoveLimit = 100

// MoveDueDelayed moves up to limit (100 if limit <= 0) of topic's delayed
// messages that are due into its stream, atomically (a Lua script around
// ZRANGEBYSCORE, XADD and ZREM), and reports how many it moved. Every
// subscription of a topic does this on its own; call it only for topics
// that are consumed by something else (watermill-redisstream or a program
// in another language), e.g. from a timer in the producer.
func (a *Admin) MoveDueDelayed(ctx context.Context, topic string, limit int) (int, error) {
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	if limit <= 0 {
		limit = defaultMoveLimit
	}
	moved, _, err := streams.MoveDue(ctx, a.client, keys.Delayed(topic), keys.Stream(topic), limit)
	if err != nil {
		return 0, fmt.Errorf("cannot move due delayed messages of topic %s: %w", topic, err)
	}
	return moved, nil
}
