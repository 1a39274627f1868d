package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server process started by [StartRedis]: loopback
// only, in a temp dir removed by Stop.
type RedisServer struct {
	Addr string
	// StartUp is the time from starting the process to its first answer
	// to PING.
	StartUp time.Duration
	dir     string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
}

// RedisConfig is how [StartRedis] runs redis-server.
type RedisConfig struct {
	// AOF persists every write in the append-only file, fsynced once a
	// second (appendonly yes, appendfsync everysec: a durable Redis's
	// usual setting). Otherwise nothing is persisted.
	AOF bool
}

// StartRedis starts redis-server on a free 127.0.0.1 port and waits (at most
// 10s) until it answers PING. The process gets SIGKILL if this one dies, so
// it never outlives the benchmark.
func StartRedis(ctx context.Context, cfg RedisConfig) (*RedisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found: apt-get install redis-server")
	}
	dir, err := os.MkdirTemp("", "millrace-bench-redis-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &RedisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, done: make(chan struct{})}
	persistence := []string{"--appendonly", "no"}
	if cfg.AOF {
		persistence = []string{"--appendonly", "yes", "--appendfsync", "everysec"}
	}
	s.cmd = exec.Command(bin, append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--dir", dir,
		"--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"),
	}, persistence...)...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t0 := time.Now()
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
		return nil, fmt.Errorf("redis-server on %s: %w\n%s", s.Addr, err, log)
	}
	s.StartUp = time.Since(t0)
	return s, nil
}

// Pid is the server's process ID.
func (s *RedisServer) Pid() int { return s.cmd.Process.Pid }

// waitReady polls PING until it succeeds, the process exits or 10s pass.
func (s *RedisServer) waitReady(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	return pollUntil(ctx, 10*time.Second, s.done, "redis-server exited", func() bool { return c.Ping(ctx).Err() == nil })
}

// pollUntil calls ready every 5ms until it returns true, failing when
// timeout passes or, saying exited, when done is closed (nil: never).
func pollUntil(ctx context.Context, timeout time.Duration, done <-chan struct{}, exited string, ready func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !ready() {
		select {
		case <-done:
			return errors.New(exited)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// Stop terminates the server (SIGTERM, then SIGKILL after 5s) and removes
// its dir. It is safe to call more than once.
func (s *RedisServer) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitNoFork waits until the server runs no AOF rewrite and no RDB save,
// whose forked child would otherwise be counted in its process tree.
func WaitNoFork(ctx context.Context, c *redis.Client) error {
	for {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return fmt.Errorf("INFO persistence: %w", err)
		}
		if !strings.Contains(info, "aof_rewrite_in_progress:1") && !strings.Contains(info, "rdb_bgsave_in_progress:1") {
			return nil
		}
		if err := Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}
