// Package testchild runs a test of the running test binary as a child
// process, for tests that need processes to kill: the parent starts the
// child with a spec (JSON in an environment variable) and signals it; the
// child, a test that does nothing unless the variable is set, reads the
// spec, works, and ends the process itself, so that the test framework's
// checks (goleak) never run in it.
package testchild

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Spec decodes the spec the parent passed in the environment variable env
// into spec. It reports false when this process is not a child (env is
// unset): the test then has nothing to do.
func Spec(tb testing.TB, env string, spec any) bool {
	raw := os.Getenv(env)
	if raw == "" {
		return false
	}
	if err := json.Unmarshal([]byte(raw), spec); err != nil {
		tb.Fatalf("child: bad %s: %v", env, err)
	}
	return true
}

// Fail ends a child process with status 3 after writing why to stderr.
func Fail(name, what string, err error) {
	os.Stderr.WriteString("child " + name + ": " + what + ": " + err.Error() + "\n")
	os.Exit(3)
}

// ExitWithParent ends the child process with status 4 once its parent is
// gone or lifetime has passed, in the background: children are meant to be
// stopped by their parent, and this keeps an orphan from lingering.
func ExitWithParent(lifetime time.Duration) {
	parent := os.Getppid()
	go func() {
		deadline := time.Now().Add(lifetime)
		for time.Now().Before(deadline) && os.Getppid() == parent {
			time.Sleep(200 * time.Millisecond)
		}
		os.Exit(4)
	}()
}

// Child is a running child process.
type Child struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been waited for
}

// Start runs the test named test of this binary as a child called name,
// with spec as JSON in the environment variable env. Its output goes to a
// file, logged if tb fails; the process is killed, if still running, when
// tb ends. lifetime is the child's own bound (see ExitWithParent): its
// test timeout is a minute more.
func Start(tb testing.TB, test, env, name string, spec any, lifetime time.Duration) *Child {
	tb.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1",
		"-test.timeout="+strconv.Itoa(int((lifetime+time.Minute)/time.Second))+"s")
	cmd.Env = append(os.Environ(), env+"="+string(raw))
	logPath := filepath.Join(tb.TempDir(), "child.log")
	out, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start child %s: %v", name, err)
	}
	c := &Child{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	tb.Cleanup(func() {
		c.Kill()
		if log, err := os.ReadFile(logPath); tb.Failed() && err == nil && len(log) > 0 {
			tb.Logf("output of child %s (pid %d):\n%s", name, cmd.Process.Pid, log)
		}
	})
	return c
}

// Signal sends sig to the process.
func (c *Child) Signal(sig syscall.Signal) { _ = c.cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits until the process is gone.
func (c *Child) Kill() {
	c.Signal(syscall.SIGKILL)
	<-c.done
}

// Wait waits up to d for the process to exit and reports whether it did.
func (c *Child) Wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

// Succeeded reports whether the process exited with status 0.
func (c *Child) Succeeded() bool { return c.ExitCode() == 0 }

// ExitCode is the process's exit status: -1 while it runs and when a signal
// ended it.
func (c *Child) ExitCode() int {
	select {
	case <-c.done:
		return c.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}
