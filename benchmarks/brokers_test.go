package benchmarks

import (
	"os"
	"testing"

	"github.com/millrace/millrace/benchmarks/internal/harness"
)

// TestRedisWithAOF starts the durable Redis of cmd/brokers and checks its
// persistence settings and what /proc says of it.
func TestRedisWithAOF(t *testing.T) {
	srv, err := harness.StartRedis(t.Context(), harness.RedisConfig{AOF: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c := harness.NewClient(srv.Addr)
	defer c.Close()
	got, err := c.ConfigGet(t.Context(), "append*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if got["appendonly"] != "yes" || got["appendfsync"] != "everysec" {
		t.Fatalf("persistence %v, want appendonly yes, appendfsync everysec", got)
	}
	st, err := harness.TreeStats(srv.Pid())
	if err != nil || st.N != 1 || st.RSS <= 0 || srv.StartUp <= 0 {
		t.Fatalf("redis-server: %+v, %v; start-up %s", st, err, srv.StartUp)
	}
	self, err := harness.TreeStats(os.Getpid())
	if err != nil || self.N < 2 || self.RSS <= st.RSS {
		// This process and its redis-server child, at least.
		t.Fatalf("this process's tree: %+v, %v", self, err)
	}
}
