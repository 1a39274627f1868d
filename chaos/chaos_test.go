package chaos

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	RunConsumerIfAsked()
	goleak.VerifyTestMain(m)
}

// Flags of TestChaos; `make chaos` sets them through CHAOS_ARGS.
var (
	flagDuration  = flag.Duration("chaos.duration", 30*time.Second, "how long to publish and inject faults")
	flagSeed      = flag.Uint64("chaos.seed", 1, "seed of the fault schedule")
	flagRate      = flag.Int("chaos.rate", 100, "messages published per second")
	flagConsumers = flag.Int("chaos.consumers", 3, "consumer processes")
	flagGap       = flag.Duration("chaos.gap", 3*time.Second, "mean time between the starts of two faults")
	flagWork      = flag.Duration("chaos.work", 2*time.Millisecond, "how long the handler works on each message")
	flagDrain     = flag.Duration("chaos.drain", 2*time.Minute, "how long to wait at most for every confirmed message after the faults")
	flagDir       = flag.String("chaos.dir", "", "directory for the event logs, report.txt and chaos.svg (default: a temp dir)")
	flagStrict    = flag.Bool("chaos.strict", true, "fail on publish-side duplicates and on delivery-side duplicates without a cause")
)

// TestChaos is the chaos run: 30 s with seed 1 in `make test`, as long as
// -chaos.duration says in `make chaos`. It fails if Check finds a confirmed
// message lost or a poison message missing from the dead-letter stream, if
// a consumer process crashed on its own, or if a consumer reported a data
// race; with -chaos.strict (the default) also on a publish-side duplicate
// or a delivery-side duplicate without a cause. Timings are reported, never
// asserted.
func TestChaos(t *testing.T) {
	res := Run(t, Config{
		Duration: *flagDuration, Seed: *flagSeed, Rate: *flagRate, Consumers: *flagConsumers,
		MeanGap: *flagGap, Work: *flagWork, Drain: *flagDrain, Dir: *flagDir, Lenient: !*flagStrict,
	})
	var report bytes.Buffer
	if err := res.Report(&report); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(res.Config.Dir, "report.txt"), report.Bytes())
	var svg bytes.Buffer
	if err := res.Plot(&svg); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(res.Config.Dir, "chaos.svg"), svg.Bytes())
	t.Logf("%s\n\n%s\nreport.txt and chaos.svg are in %s", res, report.String(), res.Config.Dir)

	for _, f := range res.Verdict.Failures() {
		t.Errorf("check: %s", f)
	}
	for _, f := range res.Verdict.StrictFailures() {
		if *flagStrict {
			t.Errorf("check (-chaos.strict): %s; the report details them", f)
		} else {
			t.Logf("not failing (-chaos.strict=false): %s", f)
		}
	}
	if len(res.Unexpected) > 0 {
		t.Errorf("consumer processes exited on their own: %v (see their .out files)", res.Unexpected)
	}
	if len(res.Races) > 0 {
		t.Errorf("data races reported by consumer processes: %v", res.Races)
	}
	kinds := map[string]bool{}
	for _, f := range res.Log.Faults {
		kinds[f.Kind] = true
	}
	for _, k := range []string{KillConsumer, CutConnections, Blackhole, FreezeReplica, FreezeMaster, KillMaster} {
		if !kinds[k] {
			t.Errorf("no %s fault was injected", k)
		}
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
