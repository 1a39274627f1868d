package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// waitTimeout bounds every wait for a server to come up, go down or reach
	// a cluster or sentinel state; slow CI machines under -race need headroom.
	waitTimeout = 20 * time.Second
	// pollInterval is how often a readiness condition is checked.
	pollInterval = 20 * time.Millisecond
	// clusterBusOffset is the fixed distance from a cluster node's client port
	// to its cluster bus port.
	clusterBusOffset = 10000
	// maxStartAttempts bounds retries when a chosen port was taken between
	// probing it and redis-server binding it.
	maxStartAttempts = 5
)

// freePort returns a loopback port that nobody listened on a moment ago.
// With clusterBus it also requires port+10000 to be free, because a cluster
// node binds that port for its bus. Another process may still take the port
// before redis-server binds it; callers retry on "Address already in use".
func freePort(tb testing.TB, clusterBus bool) int {
	tb.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("redistest: listen on 127.0.0.1:0: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		if clusterBus {
			ok = port+clusterBusOffset <= 65535
			if ok {
				bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+clusterBusOffset)))
				ok = err == nil
				if ok {
					bus.Close()
				}
			}
		}
		l.Close()
		if ok {
			return port
		}
	}
	tb.Fatalf("redistest: found no free port pair (port, port+%d)", clusterBusOffset)
	return 0
}

// stopWaiting wraps a condition error after which polling is pointless,
// such as the server process having exited.
type stopWaiting struct{ error }

func (e stopWaiting) Unwrap() error { return e.error }

// waitFor calls cond every pollInterval until it returns nil, until it
// returns a stopWaiting error, or until waitTimeout has passed. It returns
// cond's last error, which should say what was still missing.
func waitFor(cond func() error) error {
	deadline := time.Now().Add(waitTimeout)
	for {
		err := cond()
		if err == nil || errors.As(err, new(stopWaiting)) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still not ready after %v: %w", waitTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// procState returns the state letter of pid from /proc/pid/stat ('R', 'S',
// 'T' for stopped, 'Z' for zombie, ...) or 0 if there is no such process.
// The daemonized servers are children of init, which in a container may never
// reap them, so a killed server can linger as a zombie: callers treat 'Z' as
// gone.
func procState(pid int) byte {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name in parentheses may contain spaces; the state follows
	// the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}

// alive reports whether pid is a process that has not yet exited.
func alive(pid int) bool {
	st := procState(pid)
	return st != 0 && st != 'Z' && st != 'X'
}

// procsIn returns the live processes whose working directory is dir, other
// than this one. Redis changes into its configured dir before daemonizing,
// and restart.sh cds there, so this finds every process a Server started,
// even when its pidfile is stale or not written yet.
func procsIn(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && cwd == dir && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// run runs argv and returns its combined output. It gives up after
// 2*waitTimeout, and does not wait for a daemon that kept the output pipe
// open after the command itself exited.
func run(argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = time.Second
	return cmd.CombinedOutput()
}

// logTail returns the last lines of the file at path, for failure messages.
func logTail(path string) string {
	const lines = 25
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
