package millrace_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// The README and docs/reliability.md: Durability{AOF: true} sends WAITAOF
// after the pipeline, which needs Redis 7.2 (Valkey 8 has it) and
// appendonly yes. On Redis 7.0 Publish fails naming WAITAOF, though the
// message was added (a retry may duplicate, as with ErrNotDurable).
func TestClaims_DurabilityAOF(t *testing.T) {
	for _, aof := range []bool{true, false} {
		name := map[bool]string{true: "appendonly yes", false: "appendonly no"}[aof]
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{NoAOF: !aof})
			client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { client.Close() })
			pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{
				Durability: millrace.Durability{AOF: true},
			}, testLogger)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, pub.Close()) })

			topic := newTopic()
			err = pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x")))
			assert.EqualValues(t, 1, xlen(t, client, topic), "the message is added before WAITAOF answers")
			switch {
			case !hasWaitAOF(t, client):
				require.Error(t, err, "Redis before 7.2 has no WAITAOF")
				assert.Contains(t, strings.ToLower(err.Error()), "waitaof")
			case aof:
				require.NoError(t, err, "WAITAOF 1 0 confirmed the local fsync")
			default:
				require.Error(t, err, "WAITAOF needs appendonly yes")
				assert.Contains(t, strings.ToLower(err.Error()), "appendonly")
			}
			t.Logf("%s on %s: %v", name, serverVersion(t, client), err)
		})
	}
}

// hasWaitAOF reports whether the server knows WAITAOF (Redis 7.2+, Valkey).
func hasWaitAOF(t *testing.T, c *redis.Client) bool {
	t.Helper()
	info, err := c.Do(ctxTimeout(t, 5*time.Second), "command", "info", "waitaof").Slice()
	require.NoError(t, err)
	return len(info) == 1 && info[0] != nil
}

func serverVersion(t *testing.T, c *redis.Client) string {
	t.Helper()
	info, err := c.Info(ctxTimeout(t, 5*time.Second), "server").Result()
	require.NoError(t, err)
	version := map[string]string{}
	for _, line := range strings.Split(info, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			version[k] = v
		}
	}
	if v, ok := version["valkey_version"]; ok {
		return "valkey " + v
	}
	if v, ok := version["redis_version"]; ok {
		return "redis " + v
	}
	return "unknown"
}
