package millrace

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/redistest"
)

// A stream deleted while its Publisher trims it (KeepUnacked) is nothing to
// trim, not an error to log every round.
func TestTrimAcked_DeletedStream(t *testing.T) {
	c := redistest.Start(t, redistest.Options{NoAOF: true}).Client(t)
	ctx := context.Background()
	require.NoError(t, trimAcked(ctx, c, "gone", 0))

	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []string{"k", "v"}}).Err())
	require.NoError(t, c.XGroupCreate(ctx, "s", "g", "$").Err())
	require.NoError(t, trimAcked(ctx, c, "s", 0))
	assert.Zero(t, c.XLen(ctx, "s").Val(), "acknowledged by its only group: trimmed")
}
