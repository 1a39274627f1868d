// Package matrix runs the cells of a benchmark program (each measured
// several times per implementation, the implementations alternating) and
// describes the machine it ran on.
package matrix

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Machine describes where and with what a report was measured.
type Machine struct {
	cpus      int
	cpuModel  string
	kernel    string
	loadAvg   string // at start
	goVersion string
	Redis     string // redis_version of the server, "unknown" if INFO failed
	modules   string // versions of the libraries under test
	millrace  string // git revision of the repo
}

// DescribeMachine gathers the header of a report; admin is a client of the
// Redis server measured.
func DescribeMachine(ctx context.Context, admin *redis.Client) Machine {
	m := Machine{
		cpus:      runtime.NumCPU(),
		cpuModel:  cpuModel(),
		kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		loadAvg:   loadAverage(),
		goVersion: runtime.Version(),
		Redis:     "unknown",
		modules:   moduleVersions(),
		millrace:  gitRevision(ctx),
	}
	if info, err := admin.Info(ctx, "server").Result(); err == nil {
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				m.Redis = v
			}
		}
	}
	return m
}

// Write prints the header as a markdown list; servers says what the
// clients talked to, e.g. "one redis-server on loopback, no persistence".
func (m Machine) Write(w io.Writer, started time.Time, args, command, servers string) {
	fmt.Fprintf(w, "- date: %s\n", started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- machine: %d CPUs (nproc), %s, Linux %s, %s/%s, load average at start %s\n",
		m.cpus, m.cpuModel, m.kernel, runtime.GOOS, runtime.GOARCH, m.loadAvg)
	fmt.Fprintf(w, "- Go %s, GOMAXPROCS %d; Redis %s (%s)\n",
		m.goVersion, runtime.GOMAXPROCS(0), m.Redis, servers)
	fmt.Fprintf(w, "- Millrace %s; %s\n", m.millrace, m.modules)
	fmt.Fprintf(w, "- command: `%s %s`\n\n", command, args)
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	sc := bufio.NewScanner(strings.NewReader(readFile("/proc/cpuinfo")))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// moduleVersions lists the versions this binary was built with.
func moduleVersions() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "module versions unknown"
	}
	want := map[string]string{
		"github.com/ThreeDotsLabs/watermill-redisstream": "peer watermill-redisstream",
		"github.com/ThreeDotsLabs/watermill-amqp/v3":     "watermill-amqp",
		"github.com/ThreeDotsLabs/watermill":             "watermill",
		"github.com/redis/go-redis/v9":                   "go-redis",
	}
	var parts []string
	for _, d := range bi.Deps {
		if name, ok := want[d.Path]; ok {
			parts = append(parts, name+" "+d.Version)
		}
	}
	return strings.Join(parts, ", ")
}

// gitRevision is the short HEAD of the repo, marked when the tree has
// uncommitted changes; "(revision unknown)" outside a git checkout.
func gitRevision(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	head, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "(revision unknown)"
	}
	rev := "at " + strings.TrimSpace(string(head))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += " with uncommitted changes"
	}
	return rev
}

// loadAverage is the 1, 5 and 15 minute load average.
func loadAverage() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	return strings.Join(f[:min(3, len(f))], " ")
}

// readFile returns the file's content, "" when unreadable.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}
