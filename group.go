package millrace

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/rediserr"
	"github.com/millrace/millrace/internal/streams"
)

// createGroup creates group on stream at start, creating the stream if it
// is missing (XGROUP CREATE ... MKSTREAM). An existing group is kept as is.
// A group created at an entry ID (NewGroupStartID, the stream's end, or
// where a group that vanished had read up to) is given the ENTRIESREAD that
// keeps the lag Redis reports right (see streams.CreateGroupAt); a user
// whose ACL does not allow XINFO STREAM gets a plain XGROUP CREATE.
func createGroup(ctx context.Context, client redis.UniversalClient, stream, group, start string) error {
	if _, err := streams.CreateGroupAt(ctx, client, stream, group, start); err != nil {
		return fmt.Errorf("cannot create consumer group %s on stream %s: %w", group, stream, err)
	}
	return nil
}

// lastEntryID is the ID of stream's newest entry, "0-0" when there is none:
// where a broadcast subscription starts.
func lastEntryID(ctx context.Context, client redis.UniversalClient, stream string) (string, error) {
	msgs, err := client.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil && !rediserr.IsNil(err) {
		return "", fmt.Errorf("cannot read the end of stream %s: %w", stream, err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}
