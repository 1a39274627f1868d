package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux this runs on).
const clockTicks = 100

// ProcStats is what Linux says of a set of processes.
type ProcStats struct {
	RSS int64 // resident set size, bytes, summed over the processes
	// CPU is user+sys CPU so far, summed over the processes and the
	// children they have waited for (such as Redis's AOF rewrites, or the
	// df that RabbitMQ's disk monitor runs).
	CPU time.Duration
	N   int // processes counted
}

// TreeStats returns the summed stats of the processes roots and all their
// descendants, from /proc. Processes that exit meanwhile are skipped.
func TreeStats(roots ...int) (ProcStats, error) {
	procs, err := allProcs()
	if err != nil {
		return ProcStats{}, err
	}
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	var st ProcStats
	seen := map[int]bool{}
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		p, ok := procs[pid]
		if !ok || seen[pid] {
			continue
		}
		seen[pid] = true
		st.RSS += p.rss
		st.CPU += p.cpu
		st.N++
		queue = append(queue, children[pid]...)
	}
	if st.N == 0 {
		return st, fmt.Errorf("none of the processes %v is running", roots)
	}
	return st, nil
}

// proc is one line of /proc/<pid>/stat, the fields used.
type proc struct {
	ppid int
	rss  int64
	cpu  time.Duration
}

// allProcs reads every /proc/<pid>/stat.
func allProcs() (map[int]proc, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	pageSize := int64(os.Getpagesize())
	procs := make(map[int]proc, len(dirs))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // exited
		}
		if p, ok := parseStat(b, pageSize); ok {
			procs[pid] = p
		}
	}
	return procs, nil
}

// parseStat reads ppid, utime, stime, cutime, cstime and rss from a
// /proc/<pid>/stat line.
// The command name, in parentheses, may hold spaces: fields are counted
// from the last ')'.
func parseStat(b []byte, pageSize int64) (proc, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return proc{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime
	// 16, cstime 17, rss 24.
	if len(f) < 22 {
		return proc{}, false
	}
	num := func(field int) int64 {
		n, _ := strconv.ParseInt(f[field-3], 10, 64)
		return n
	}
	return proc{
		ppid: int(num(4)),
		cpu:  time.Duration(num(14)+num(15)+num(16)+num(17)) * time.Second / clockTicks,
		rss:  num(24) * pageSize,
	}, true
}
