package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
)

// TrimMaxLen trims topic to its newest maxLen entries (XTRIM MAXLEN) and
// returns how many entries it deleted. With approx (MAXLEN ~) Redis only
// drops whole nodes, which is much cheaper and may keep a few tens more.
// Trimming deletes entries whether or not every group has read them.
func (a *Admin) TrimMaxLen(ctx context.Context, topic string, maxLen int64, approx bool) (int64, error) {
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	if maxLen < 0 {
		return 0, fmt.Errorf("maxLen must not be negative, got %d", maxLen)
	}
	if approx {
		return trimmed(topic, a.client.XTrimMaxLenApprox(ctx, keys.Stream(topic), maxLen, 0))
	}
	return trimmed(topic, a.client.XTrimMaxLen(ctx, keys.Stream(topic), maxLen))
}

// TrimMinID deletes the entries of topic older than the entry ID minID
// (XTRIM MINID) and returns how many it deleted; approx as in
// [Admin.TrimMaxLen].
func (a *Admin) TrimMinID(ctx context.Context, topic, minID string, approx bool) (int64, error) {
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	if err := checkID(minID); err != nil {
		return 0, err
	}
	if approx {
		return trimmed(topic, a.client.XTrimMinIDApprox(ctx, keys.Stream(topic), minID, 0))
	}
	return trimmed(topic, a.client.XTrimMinID(ctx, keys.Stream(topic), minID))
}

// TrimBefore deletes the entries of topic added before t, by the time in
// their IDs (XTRIM MINID <t in ms>-0); approx as in [Admin.TrimMaxLen].
func (a *Admin) TrimBefore(ctx context.Context, topic string, t time.Time, approx bool) (int64, error) {
	return a.TrimMinID(ctx, topic, entryid.MinAt(t), approx)
}

// trimmed is the reply of an XTRIM of topic.
func trimmed(topic string, cmd *redis.IntCmd) (int64, error) {
	n, err := cmd.Result()
	if err != nil && !rediserr.IsNil(err) {
		return 0, fmt.Errorf("cannot trim topic %s: %w", topic, err)
	}
	return n, nil
}
