// Package lasterror keeps, per pending entry of a consumer group, the error
// its handler returned at the last failed delivery: one string key per entry
// ([keys.LastError], in the topic's Cluster slot), written when the
// subscription sees the Nack, deleted when the entry is acknowledged or
// dead-lettered, and expiring after TTL whatever happens (an entry
// acknowledged by hand, trimmed away, a group deleted). Every command on
// those keys is here.
package lasterror

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
)

// TTL is how long an entry's last error is kept after its last failure.
const TTL = 7 * 24 * time.Hour

// MaxLen caps the bytes of an error kept; a longer one is cut at a rune
// boundary and ends with "…".
const MaxLen = 1024

// Cut returns text within MaxLen bytes.
func Cut(text string) string {
	if len(text) <= MaxLen {
		return text
	}
	const ellipsis = "…"
	n := MaxLen - len(ellipsis)
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	return text[:n] + ellipsis
}

// Set keeps text (cut to MaxLen) as the last error of entry id of group on
// topic, for TTL. Sending it twice sets the same value: it is safe to retry.
func Set(ctx context.Context, client redis.Cmdable, topic, group, id, text string) error {
	return client.Set(ctx, keys.LastError(topic, group, id), Cut(text), TTL).Err()
}

// Delete forgets the last errors of ids.
func Delete(ctx context.Context, client redis.Cmdable, topic, group string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	pipe := client.Pipeline()
	for _, id := range ids {
		pipe.Del(ctx, keys.LastError(topic, group, id))
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Get returns the last errors of ids, in their order, "" where none is
// kept, in one pipelined round trip.
func Get(ctx context.Context, client redis.Cmdable, topic, group string, ids ...string) ([]string, error) {
	out := make([]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	pipe := client.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for k, id := range ids {
		cmds[k] = pipe.Get(ctx, keys.LastError(topic, group, id))
	}
	_, _ = pipe.Exec(ctx)
	for k, c := range cmds {
		v, err := c.Result()
		if err != nil && !rediserr.IsNil(err) {
			return out, err
		}
		out[k] = v
	}
	return out, nil
}
