package millrace

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/faultproxy"
	"github.com/millrace/millrace/internal/redistest"
)

// A dead letter copied to a topic of another Cluster slot (the XADD apart
// from its XACK) is added once when the reply of its script is lost:
// go-redis sends the script again, and so does a later retry, and the
// marker makes both add nothing.
func TestDeadLetterCopy_ReplyLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	direct := srv.Client(t)
	proxy, err := faultproxy.Start(srv.Addr())
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	o := srv.Options(t)
	o.Addr = proxy.Addr() // go-redis's default MaxRetries: it resends
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })

	m := member{client: c, stream: "orders", group: "g", consumer: "c1"}
	const dlq = "elsewhere:dlq"
	values := []interface{}{"payload", "x"}
	require.NoError(t, m.deadLetterCopy(ctx, dlq, values, "1-1")) // caches the script

	lost := proxy.LoseReply(func(args []string) bool {
		return len(args) > 4 && strings.EqualFold(args[0], "evalsha") && args[3] == dlq
	})
	require.NoError(t, m.deadLetterCopy(ctx, dlq, values, "1-2"))
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the reply of the copy was not lost")
	}
	require.NoError(t, m.deadLetterCopy(ctx, dlq, values, "1-2"), "a retry of the dead letter")
	assert.EqualValues(t, 2, direct.XLen(ctx, dlq).Val(), "entry 1-2 copied once")
}
