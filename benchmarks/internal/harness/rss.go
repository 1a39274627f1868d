package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// ChildFlag is the command-line flag that makes cmd/bench run as the child
// of the peak-RSS figure: -child-drain NAME drains a backlog with NAME and
// prints a [ChildReport]. The other flags it gets are -addr, -topic, -group,
// -n and -timeout.
const ChildFlag = "child-drain"

// ChildReport is what the drain child prints, as one JSON line on stdout.
type ChildReport struct {
	// MaxRSS is getrusage's MaxRSS. On Linux it is at least the parent's
	// RSS at the time of the fork, which exec carries over, so use VmHWM.
	MaxRSS int64 `json:"maxrss_bytes"`
	// VmHWM is /proc/self/status VmHWM: the child's own peak RSS.
	VmHWM     int64  `json:"vmhwm_bytes"`
	ElapsedNs int64  `json:"elapsed_ns"`
	CPUNs     int64  `json:"cpu_ns"`
	Err       string `json:"error,omitempty"`
}

// RSSConfig is one peak-RSS run.
type RSSConfig struct {
	ConsumeConfig        // the backlog and the drain, with one subscriber
	Exe           string // the cmd/bench binary to re-execute
}

// PeakRSSOfDrain pre-fills topic with a backlog of N entries, then runs Exe
// as a child process that drains it with one subscriber of impl through a
// Router, and returns the child's peak RSS. Running the drain in its own
// process keeps the parent's heap (and earlier runs) out of the figure. The
// stream is left in place; the caller deletes it.
func PeakRSSOfDrain(ctx context.Context, impl Impl, cfg RSSConfig) (ChildReport, error) {
	admin := NewClient(cfg.Addr)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.Timeout+10*time.Second)
	defer cancel()
	if err := Prefill(ctx, admin, impl, cfg.Topic, cfg.Payload, cfg.N); err != nil {
		return ChildReport{}, err
	}
	cmd := exec.CommandContext(ctx, cfg.Exe,
		"-"+ChildFlag, impl.Name(),
		"-addr", cfg.Addr, "-topic", cfg.Topic, "-group", cfg.Group,
		"-n", strconv.Itoa(cfg.N), "-timeout", cfg.Timeout.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return ChildReport{}, fmt.Errorf("drain child: %w", err)
	}
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	var rep ChildReport
	if err := json.Unmarshal(lines[len(lines)-1], &rep); err != nil {
		return ChildReport{}, fmt.Errorf("drain child printed %q: %w", out, err)
	}
	if rep.Err != "" {
		return ChildReport{}, fmt.Errorf("drain child: %s", rep.Err)
	}
	return rep, nil
}

// RunChild is the child's side of [PeakRSSOfDrain]: it drains the backlog
// and writes its report to w. It fails only if the report cannot be written.
func RunChild(ctx context.Context, impl Impl, cfg ConsumeConfig, w io.Writer) error {
	var rep ChildReport
	res, err := Drain(ctx, impl, cfg)
	if err != nil {
		rep.Err = err.Error()
	}
	rep.ElapsedNs, rep.CPUNs = int64(res.Elapsed), int64(res.CPU)
	rep.MaxRSS, rep.VmHWM = PeakRSS()
	return json.NewEncoder(w).Encode(rep)
}
