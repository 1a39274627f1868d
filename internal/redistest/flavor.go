package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
)

// ServerEnv names the environment variable that chooses which server the
// package starts: "redis" (the default when unset or empty) for
// redis-server, redis-sentinel and redis-cli, or "valkey" for
// valkey-server, valkey-sentinel and valkey-cli (Valkey 8, Debian 12's
// bookworm-backports; `make valkey-tools` installs it). Every server of a
// test process is of the one kind; REDIS_URL (StartFromEnv) still points at
// whatever server it names.
const ServerEnv = "REDISTEST_SERVER"

// flavor is a kind of server: its binaries and how to install them.
type flavor struct {
	name                              string // value of ServerEnv
	product                           string // what the server calls itself
	server, sentinel, cli             string // binaries, looked up on PATH
	serverHint, sentinelHint, cliHint string
}

var flavors = map[string]flavor{
	"redis": {
		name: "redis", product: "Redis",
		server: "redis-server", sentinel: "redis-sentinel", cli: "redis-cli",
		serverHint:   "redis-server not found: apt-get install redis-server",
		sentinelHint: "redis-sentinel not found: apt-get install redis-sentinel",
		cliHint:      "redis-cli not found: apt-get install redis-tools",
	},
	"valkey": {
		name: "valkey", product: "Valkey",
		server: "valkey-server", sentinel: "valkey-sentinel", cli: "valkey-cli",
		serverHint:   "valkey-server not found (" + ServerEnv + "=valkey): make valkey-tools, or apt-get install -t bookworm-backports valkey-server",
		sentinelHint: "valkey-sentinel not found (" + ServerEnv + "=valkey): make valkey-tools, or apt-get install -t bookworm-backports valkey-sentinel",
		cliHint:      "valkey-cli not found (" + ServerEnv + "=valkey): make valkey-tools, or apt-get install -t bookworm-backports valkey-tools",
	},
}

// currentFlavor returns the flavor ServerEnv chooses, failing tb on a value
// it does not know.
func currentFlavor(tb testing.TB) flavor {
	tb.Helper()
	f, err := lookupFlavor(os.Getenv(ServerEnv))
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	return f
}

func lookupFlavor(v string) (flavor, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		v = "redis"
	}
	f, ok := flavors[v]
	if !ok {
		names := make([]string, 0, len(flavors))
		for n := range flavors {
			names = append(names, n)
		}
		sort.Strings(names)
		return flavor{}, fmt.Errorf("%s=%q: want one of %s", ServerEnv, v, strings.Join(names, ", "))
	}
	return f, nil
}

// Flavor returns the kind of server the package starts, as ServerEnv
// chooses it: "redis" or "valkey" ("redis" as well for an unknown value,
// which fails every test that starts a server).
func Flavor() string {
	f, err := lookupFlavor(os.Getenv(ServerEnv))
	if err != nil {
		return "redis"
	}
	return f.name
}

// IsValkey reports whether the package starts Valkey servers
// (REDISTEST_SERVER=valkey).
func IsValkey() bool { return Flavor() == "valkey" }

// announced is the set of flavors whose choice has been logged to stderr
// once in this process.
var announced sync.Map

// announce says once per process, on stderr, which server the tests run on
// when it is not the default, so that the output of the run shows it (go
// test prints a package's output with -v or when the package fails).
func announce(f flavor, binPath string) {
	if f.name == "redis" {
		return
	}
	if _, loaded := announced.LoadOrStore(f.name, true); !loaded {
		version := ""
		if out, err := exec.Command(binPath, "--version").Output(); err == nil {
			version = ": " + strings.TrimSpace(string(out))
		}
		fmt.Fprintf(os.Stderr, "redistest: %s=%s: the tests run on %s (%s%s)\n", ServerEnv, f.name, f.product, binPath, version)
	}
}
