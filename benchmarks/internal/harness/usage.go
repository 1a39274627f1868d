package harness

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUTime is the user plus system CPU time this process has used so far
// (getrusage RUSAGE_SELF), redis-server excluded.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PeakRSS returns this process's peak resident set size in bytes, as
// getrusage's MaxRSS and as /proc/self/status VmHWM (0 if unreadable).
func PeakRSS() (maxRSS, vmHWM int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		maxRSS = ru.Maxrss * 1024 // kilobytes on Linux
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return maxRSS, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			vmHWM = kb * 1024
		}
	}
	return maxRSS, vmHWM
}
