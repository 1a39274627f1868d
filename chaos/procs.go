package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// consumerProc is one running consumer process.
type consumerProc struct {
	name   string
	cmd    *exec.Cmd
	out    *os.File
	done   chan struct{} // closed once the process has exited and was waited for
	killed bool
}

// exited reports whether the process has exited.
func (p *consumerProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// consumers runs one consumer process per slot. Every start of a slot is a
// new incarnation with a new consumer name, "c<slot>.<incarnation>", and its
// own event log and output file in dir.
type consumers struct {
	tb    testing.TB
	spec  consumerSpec // Consumer and Log are set per incarnation
	dir   string
	procs []*consumerProc // by slot; nil while the slot is down
	inc   []int           // incarnations started, by slot
	// unexpected lists the incarnations that exited without being killed.
	unexpected []string
}

func newConsumers(tb testing.TB, spec consumerSpec, dir string, n int) *consumers {
	c := &consumers{tb: tb, spec: spec, dir: dir, procs: make([]*consumerProc, n), inc: make([]int, n)}
	tb.Cleanup(c.stopAll)
	return c
}

// start starts slot's next incarnation.
func (c *consumers) start(slot int) {
	c.tb.Helper()
	spec := c.spec
	spec.Consumer = fmt.Sprintf("c%d.%d", slot, c.inc[slot])
	c.inc[slot]++
	spec.Log = filepath.Join(c.dir, "consumer-"+spec.Consumer+".log")
	raw, err := json.Marshal(spec)
	if err != nil {
		c.tb.Fatalf("chaos: %v", err)
	}
	out, err := os.Create(filepath.Join(c.dir, "consumer-"+spec.Consumer+".out"))
	if err != nil {
		c.tb.Fatalf("chaos: %v", err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), consumerEnv+"="+string(raw))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		c.tb.Fatalf("chaos: start consumer %s: %v", spec.Consumer, err)
	}
	p := &consumerProc{name: spec.Consumer, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	c.procs[slot] = p
}

// kill SIGKILLs slot's process and waits until it is gone.
func (c *consumers) kill(slot int) {
	p := c.procs[slot]
	if p == nil {
		return
	}
	p.killed = true
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	c.procs[slot] = nil
}

// restartExited starts again every slot whose process exited on its own,
// and records it in unexpected.
func (c *consumers) restartExited() {
	for slot, p := range c.procs {
		if p != nil && !p.killed && p.exited() {
			c.unexpected = append(c.unexpected, fmt.Sprintf("%s (%v)", p.name, p.cmd.ProcessState))
			c.start(slot)
		}
	}
}

// up lists the slots whose process runs.
func (c *consumers) up() []int {
	var s []int
	for slot, p := range c.procs {
		if p != nil {
			s = append(s, slot)
		}
	}
	return s
}

// stopAll kills every process.
func (c *consumers) stopAll() {
	for slot := range c.procs {
		c.kill(slot)
	}
}
