// Package childproc runs the consumer processes of the chaos checks: copies
// of the test binary that a JSON spec in an environment variable turns into
// consumers, one per slot, SIGKILLed and started again at will.
//
// The parent side is a Pool; the child side calls Spec first thing in
// TestMain and, when it is a child, ExitWithParent before it consumes with
// Forever.
package childproc

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// Config is what a Pool starts.
type Config[S any] struct {
	// Env is the environment variable that carries the spec (JSON).
	Env string
	// Spec is the spec of the incarnation called name.
	Spec func(name string) S
	// Dir receives each process's stdout and stderr, in
	// "consumer-<name>.out".
	Dir string
	// Slots is the number of processes.
	Slots int
	// Prefix starts the pool's test failures ("chaos").
	Prefix string
}

// proc is one running process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	done   chan struct{} // closed once the process has exited and was waited for
	killed bool
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pool runs one process per slot. Every start of a slot is a new
// incarnation with a new name, "c<slot>.<incarnation>". Its methods are
// called from one goroutine.
type Pool[S any] struct {
	tb    testing.TB
	cfg   Config[S]
	procs []*proc // by slot; nil while the slot is down
	inc   []int   // incarnations started, by slot
	// unexpected lists the incarnations that exited without being killed.
	unexpected []string
}

// New returns a pool with every slot down; the test's cleanup kills what
// still runs.
func New[S any](tb testing.TB, cfg Config[S]) *Pool[S] {
	p := &Pool[S]{tb: tb, cfg: cfg, procs: make([]*proc, cfg.Slots), inc: make([]int, cfg.Slots)}
	tb.Cleanup(p.StopAll)
	return p
}

// Start starts slot's next incarnation.
func (p *Pool[S]) Start(slot int) {
	p.tb.Helper()
	name := fmt.Sprintf("c%d.%d", slot, p.inc[slot])
	p.inc[slot]++
	raw, err := json.Marshal(p.cfg.Spec(name))
	if err != nil {
		p.tb.Fatalf("%s: %v", p.cfg.Prefix, err)
	}
	out, err := os.Create(filepath.Join(p.cfg.Dir, "consumer-"+name+".out"))
	if err != nil {
		p.tb.Fatalf("%s: %v", p.cfg.Prefix, err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), p.cfg.Env+"="+string(raw))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		p.tb.Fatalf("%s: start consumer %s: %v", p.cfg.Prefix, name, err)
	}
	pr := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(pr.done)
	}()
	p.procs[slot] = pr
}

// Kill SIGKILLs slot's process and waits until it is gone. It returns the
// process's name and pid, or "" and 0 when the slot was down.
func (p *Pool[S]) Kill(slot int) (name string, pid int) {
	pr := p.procs[slot]
	if pr == nil {
		return "", 0
	}
	pr.killed = true
	pid = pr.cmd.Process.Pid
	_ = pr.cmd.Process.Signal(syscall.SIGKILL)
	<-pr.done
	p.procs[slot] = nil
	return pr.name, pid
}

// RestartExited starts again every slot whose process exited on its own,
// and records it in Unexpected.
func (p *Pool[S]) RestartExited() {
	for slot, pr := range p.procs {
		if pr != nil && !pr.killed && pr.exited() {
			p.unexpected = append(p.unexpected, fmt.Sprintf("%s (%v)", pr.name, pr.cmd.ProcessState))
			p.Start(slot)
		}
	}
}

// Up lists the slots whose process runs.
func (p *Pool[S]) Up() []int {
	var s []int
	for slot, pr := range p.procs {
		if pr != nil {
			s = append(s, slot)
		}
	}
	return s
}

// Unexpected lists the incarnations that exited on their own, each with
// its exit status: "c1.0 (exit status 2)".
func (p *Pool[S]) Unexpected() []string { return p.unexpected }

// StopAll kills every process.
func (p *Pool[S]) StopAll() {
	for slot := range p.procs {
		p.Kill(slot)
	}
}

// Spec returns the spec the parent put in env, and false when env is
// unset: the process is not a child. A spec that does not decode ends the
// process with status 3.
func Spec[S any](env string) (S, bool) {
	var spec S
	raw := os.Getenv(env)
	if raw == "" {
		return spec, false
	}
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "consumer process: bad %s: %v\n", env, err)
		os.Exit(3)
	}
	return spec, true
}

// orphanPoll is how often a child checks that its parent is still there.
const orphanPoll = 200 * time.Millisecond

// ExitWithParent ends the process with status 4 once its parent is gone,
// so that no consumer outlives a test killed mid-run.
func ExitWithParent() {
	parent := os.Getppid()
	go func() {
		for os.Getppid() == parent {
			time.Sleep(orphanPoll)
		}
		os.Exit(4)
	}()
}

// Forever runs a consumer's Router again and again, 200 ms apart, logging
// each stop, and never returns. run returns when the Router could not
// subscribe (Redis out of reach while the process started) or stopped.
func Forever(logger watermill.LoggerAdapter, run func() error) {
	for {
		err := run()
		logger.Error("Router stopped; starting it again", err, nil)
		time.Sleep(200 * time.Millisecond)
	}
}
