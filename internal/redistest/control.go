package redistest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// RestartCommand returns the argv of restart.sh in Dir: run with
// exec.Command from the test process, it gracefully restarts the server
// (AOF flushed) on the same port with the same dir and config, and exits 0
// once the server answers again. It returns nil for an external server, which
// makes Watermill's test suite skip its reconnect test.
func (s *Server) RestartCommand() []string {
	if s.external != "" {
		return nil
	}
	return []string{"/bin/sh", s.path(restartFile)}
}

// Restart runs RestartCommand and waits until the server answers.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.skipExternal(tb)
	if out, err := run(s.RestartCommand()...); err != nil {
		s.fatalf(tb, "restart %s: %v\n%s", s.addr, err, out)
	}
	if err := s.waitReady(); err != nil {
		s.fatalf(tb, "restart %s: %v", s.addr, err)
	}
}

// StartAgain starts the server again after Kill or Stop, with the same port,
// dir and config; what was written before Kill is reloaded from the AOF. On a
// running server it is the same as Restart.
func (s *Server) StartAgain(tb testing.TB) {
	tb.Helper()
	s.Restart(tb)
}

// Pid returns the pid of the running server process, or 0 if there is none
// (after Kill or Stop, or for an external server).
func (s *Server) Pid() int {
	if s.external != "" {
		return 0
	}
	b, err := os.ReadFile(s.path(pidFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !alive(pid) {
		return 0
	}
	return pid
}

// running reports whether the server process exists and is not frozen.
func (s *Server) running() bool {
	pid := s.Pid()
	return pid != 0 && procState(pid) != 'T'
}

// Kill sends SIGKILL and waits until the process is gone. Only what the AOF
// already had survives: with the default appendfsync always, every write
// that was acknowledged. Like Freeze and Thaw, it reports failures to the
// test that started the server, so call it from that test's goroutine.
func (s *Server) Kill() {
	s.tb.Helper()
	pid := s.signal(syscall.SIGKILL)
	if err := waitFor(func() error {
		if alive(pid) {
			return fmt.Errorf("pid %d still alive", pid)
		}
		return nil
	}); err != nil {
		s.fatalf(s.tb, "kill %s: %v", s.addr, err)
	}
	os.Remove(s.path(pidFile)) // a stale pidfile could name a reused pid later
}

// Freeze sends SIGSTOP and waits until the process is stopped: its sockets
// stay open but nothing is answered, like a hung or partitioned server.
func (s *Server) Freeze() {
	s.tb.Helper()
	s.waitState(s.signal(syscall.SIGSTOP), true)
}

// Thaw sends SIGCONT to a frozen server and waits until it runs again.
func (s *Server) Thaw() {
	s.tb.Helper()
	s.waitState(s.signal(syscall.SIGCONT), false)
}

// signal sends sig to the server process and returns its pid.
func (s *Server) signal(sig syscall.Signal) int {
	s.tb.Helper()
	s.skipExternal(s.tb)
	pid := s.Pid()
	if pid == 0 {
		s.fatalf(s.tb, "%v %s: server is not running", sig, s.addr)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		s.fatalf(s.tb, "%v %s: %v", sig, s.addr, err)
	}
	return pid
}

// waitState waits until pid is stopped (state 'T') or, with !stopped, not.
func (s *Server) waitState(pid int, stopped bool) {
	s.tb.Helper()
	if err := waitFor(func() error {
		if (procState(pid) == 'T') != stopped {
			return fmt.Errorf("pid %d in state %q", pid, procState(pid))
		}
		return nil
	}); err != nil {
		s.fatalf(s.tb, "%s: %v", s.addr, err)
	}
}

// Stop kills the server (SIGKILL: its data is thrown away with the temp dir)
// and waits until it is gone. Besides the pid in the pidfile it kills every
// process working in Dir, so a restart.sh still running, or the server it is
// starting, is not left behind either. Stop is idempotent, runs at cleanup,
// and does nothing for an external server.
func (s *Server) Stop() {
	if s.external != "" {
		return
	}
	err := waitFor(func() error {
		pids := procsIn(s.dir)
		if pid := s.Pid(); pid != 0 {
			pids = append(pids, pid)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(pids) > 0 {
			return fmt.Errorf("pids %v still alive", pids)
		}
		return nil
	})
	if err != nil {
		s.tb.Errorf("redistest: stop %s: %v", s.addr, err)
	}
	os.Remove(s.path(pidFile))
}
