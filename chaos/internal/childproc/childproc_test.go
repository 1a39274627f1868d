package childproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

const testEnv = "MILLRACE_CHILDPROC_TEST"

type testSpec struct {
	Name string
	Exit int // exit with this status at once; 0: run until killed
}

func TestMain(m *testing.M) {
	if spec, ok := Spec[testSpec](testEnv); ok {
		ExitWithParent()
		fmt.Printf("child %s\n", spec.Name)
		if spec.Exit != 0 {
			os.Exit(spec.Exit)
		}
		select {} // until killed; ExitWithParent's goroutine keeps the runtime from calling it a deadlock
	}
	goleak.VerifyTestMain(m)
}

// A pool starts each slot's incarnations under new names with the spec in
// the environment, records and restarts a process that exited on its own,
// and kills on request.
func TestPool(t *testing.T) {
	dir := t.TempDir()
	p := New(t, Config[testSpec]{
		Env: testEnv, Dir: dir, Slots: 2, Prefix: "test",
		Spec: func(name string) testSpec {
			s := testSpec{Name: name}
			if name == "c1.0" {
				s.Exit = 2
			}
			return s
		},
	})
	p.Start(0)
	p.Start(1)
	<-p.procs[1].done // c1.0 exits with status 2
	p.RestartExited()
	require.Equal(t, []string{"c1.0 (exit status 2)"}, p.Unexpected())
	require.Equal(t, []int{0, 1}, p.Up())
	require.Equal(t, "c1.1", p.procs[1].name)

	name, pid := p.Kill(0)
	require.Equal(t, "c0.0", name)
	require.Positive(t, pid)
	require.Equal(t, []int{1}, p.Up())
	name, pid = p.Kill(0)
	require.Equal(t, "", name, "a slot already down")
	require.Zero(t, pid)
	p.RestartExited()
	require.Len(t, p.Unexpected(), 1, "a killed process is not unexpected")

	p.Start(0)
	require.Equal(t, "c0.1", p.procs[0].name)
	p.StopAll()
	require.Empty(t, p.Up())
	for _, n := range []string{"c0.0", "c0.1", "c1.0", "c1.1"} {
		out, err := os.ReadFile(filepath.Join(dir, "consumer-"+n+".out"))
		require.NoError(t, err)
		// A child killed before it printed leaves its file empty.
		if len(out) > 0 {
			require.Equal(t, "child "+n, strings.TrimSpace(string(out)))
		}
	}
	out, err := os.ReadFile(filepath.Join(dir, "consumer-c1.0.out"))
	require.NoError(t, err)
	require.Equal(t, "child c1.0\n", string(out), "c1.0 ran to its exit")
}

func TestSpec_NotAChild(t *testing.T) {
	t.Setenv(testEnv, "")
	_, ok := Spec[testSpec](testEnv)
	require.False(t, ok)
}

// A child whose spec does not decode exits with status 3.
func TestSpec_BadSpec(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), testEnv+"={")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 3, exit.ExitCode())
	require.Contains(t, string(out), "bad "+testEnv)
}
