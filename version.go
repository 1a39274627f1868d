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

	"github.com/millrace/millrace/internal/rediserr"
)

// versionCheck refuses servers older than Redis 6.2 once, at first use. A
// failure to ask (Redis unreachable) is not remembered, so the next call
// asks again.
type versionCheck struct {
	ok atomic.Bool
	mu sync.Mutex
}

// check reads redis_version from INFO server. A server that does not answer
// INFO server (an emulator, a proxy, an ACL without +info) is probed instead
// with XAUTOCLAIM on stream, the newest command Millrace needs.
func (v *versionCheck) check(ctx context.Context, client redis.UniversalClient, stream string) error {
	if v.ok.Load() {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ok.Load() {
		return nil
	}
	info, err := client.Info(ctx, "server").Result()
	if err != nil && !rediserr.IsServer(err) {
		return fmt.Errorf("cannot reach redis: %w", err)
	}
	if err == nil {
		if known, unsupported := versionSupported(info); known {
			if unsupported != nil {
				return unsupported
			}
			v.ok.Store(true)
			return nil
		}
	}
	if err := probeAutoClaim(ctx, client, stream); err != nil {
		return err
	}
	v.ok.Store(true)
	return nil
}

// probeAutoClaim runs XAUTOCLAIM for a group that does not exist: Redis 6.2+
// answers NOGROUP, older servers do not know the command.
func probeAutoClaim(ctx context.Context, client redis.UniversalClient, stream string) error {
	err := client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: stream, Group: "millrace-version-probe", Consumer: "probe", Start: "0-0", Count: 1,
	}).Err()
	switch {
	case err == nil, rediserr.IsNoGroup(err), rediserr.IsNoPerm(err):
		return nil
	case rediserr.IsUnknownCommand(err):
		return fmt.Errorf("%w: the server does not know XAUTOCLAIM", ErrUnsupportedRedis)
	case rediserr.IsServer(err):
		return fmt.Errorf("cannot tell the redis version (INFO server and XAUTOCLAIM failed): %w", err)
	default:
		return fmt.Errorf("cannot reach redis: %w", err)
	}
}

// versionSupported judges the redis_version of an INFO server reply: err
// is nil for 6.2 or newer; known is false when the reply has no
// redis_version.
func versionSupported(info string) (known bool, err error) {
	version := infoField(info, "redis_version")
	if version == "" {
		return false, nil
	}
	major, minor, ok := parseVersion(version)
	if !ok {
		return true, fmt.Errorf("cannot parse redis_version %q from INFO server", version)
	}
	if major < 6 || (major == 6 && minor < 2) {
		return true, fmt.Errorf("%w: the server runs %s", ErrUnsupportedRedis, version)
	}
	return true, nil
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
