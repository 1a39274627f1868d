package millrace

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// versionCheck refuses servers older than Redis 6.2 once, at first use. A
// failure to ask (Redis unreachable) is not remembered, so the next call
// asks again.
type versionCheck struct {
	ok atomic.Bool
	mu sync.Mutex
}

func (v *versionCheck) check(ctx context.Context, client redis.UniversalClient) error {
	if v.ok.Load() {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ok.Load() {
		return nil
	}
	info, err := client.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("cannot read redis version (INFO server): %w", err)
	}
	version := infoField(info, "redis_version")
	major, minor, ok := parseVersion(version)
	if !ok {
		return fmt.Errorf("cannot parse redis_version %q from INFO server", version)
	}
	if major < 6 || (major == 6 && minor < 2) {
		return fmt.Errorf("%w: the server runs %s", ErrUnsupportedRedis, version)
	}
	v.ok.Store(true)
	return nil
}

// infoField returns the value of one "key:value" line of an INFO reply.
func infoField(info, key string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if ok && k == key {
			return v
		}
	}
	return ""
}

func parseVersion(s string) (major, minor int, ok bool) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}
