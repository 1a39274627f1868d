package stagecheck

import (
	"flag"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	RunConsumerIfAsked()
	goleak.VerifyTestMain(m)
}

// Flags of TestStageCheck; `make stage-check` sets them through
// STAGE_CHECK_ARGS.
var (
	flagDuration  = flag.Duration("stagecheck.duration", 10*time.Second, "how long to publish inputs and inject faults")
	flagSeed      = flag.Uint64("stagecheck.seed", 1, "seed of the fault schedule")
	flagRate      = flag.Int("stagecheck.rate", 100, "inputs published per second")
	flagConsumers = flag.Int("stagecheck.consumers", 3, "stage consumer processes")
	flagKillGap   = flag.Duration("stagecheck.killgap", 400*time.Millisecond, "mean time between two SIGKILLs of a consumer process")
	flagCutGap    = flag.Duration("stagecheck.cutgap", 700*time.Millisecond, "mean time between two connection faults")
	flagWork      = flag.Duration("stagecheck.work", 40*time.Millisecond, "how long the handler works on each input, ± half")
	flagDrain     = flag.Duration("stagecheck.drain", 90*time.Second, "how long to wait at most for every input after the faults")
	flagPlain     = flag.Bool("stagecheck.plain", false, "run the handler through the plain Router (no Stage): the check must then fail")
	flagDir       = flag.String("stagecheck.dir", "", "directory for the consumers' output (default: a temp dir)")
)

// TestStageCheck is the stage check: 10 s with seed 1 in `make test`, as
// long as -stagecheck.duration says in `make stage-check`.
func TestStageCheck(t *testing.T) {
	res := Run(t, Config{
		Seed: *flagSeed, Duration: *flagDuration, Rate: *flagRate, Consumers: *flagConsumers,
		KillGap: *flagKillGap, CutGap: *flagCutGap, Work: *flagWork, ClaimMinIdle: time.Second,
		Drain: *flagDrain, Plain: *flagPlain, Dir: *flagDir,
	})
	t.Log(res)
	for _, f := range res.Failures() {
		t.Errorf("check: %s", f)
	}
	if res.Kills == 0 || res.Cuts+res.LostReplies == 0 || res.Reruns == 0 {
		t.Errorf("the run injected too few faults to check anything: %d kills, %d cuts, %d lost replies, %d inputs rerun",
			res.Kills, res.Cuts, res.LostReplies, res.Reruns)
	}
}

// TestStageCheck_CatchesThePlainRouter runs the short form on the build
// without the feature, the same handler through the plain Router (Publish,
// then Ack): the check must find outputs added twice, by consumers killed
// between the two, and nothing else wrong. Skipped when the flags ask for
// the plain build already (TestStageCheck then runs it).
func TestStageCheck_CatchesThePlainRouter(t *testing.T) {
	if *flagPlain {
		t.Skip("-stagecheck.plain: TestStageCheck runs the plain Router")
	}
	res := Run(t, Config{
		Seed: *flagSeed, Duration: 8 * time.Second, Rate: *flagRate, Consumers: *flagConsumers,
		KillGap: 250 * time.Millisecond, CutGap: *flagCutGap, Work: *flagWork, ClaimMinIdle: time.Second,
		Drain: *flagDrain, Plain: true,
	})
	t.Log(res)
	if len(res.Duplicated) == 0 {
		t.Errorf("the check found no output twice on the plain Router, after %d kills", res.Kills)
	}
	for _, f := range res.Failures() {
		if !strings.Contains(f, "more than once") {
			t.Errorf("check: %s", f)
		}
	}
}

// Check finds outputs missing, twice and unknown.
func TestCheck(t *testing.T) {
	counts := map[string]int{}
	for i := range 5 {
		for j := range Outputs(i) {
			counts[OutputPayload(i, j)] = 1
		}
	}
	expected, missing, dup, unexpected := Check(5, counts)
	if len(missing)+len(dup)+len(unexpected) != 0 || expected != len(counts) {
		t.Fatalf("a clean run: %d expected, %v %v %v", expected, missing, dup, unexpected)
	}
	counts[OutputPayload(0, 0)] = 2
	delete(counts, OutputPayload(4, 0))
	counts["9/9"] = 1
	_, missing, dup, unexpected = Check(5, counts)
	if len(missing) != 1 || missing[0] != "4/0" || len(dup) != 1 || dup[0] != "0/0×2" || len(unexpected) != 1 || unexpected[0] != "9/9" {
		t.Fatalf("got missing %v, duplicated %v, unexpected %v", missing, dup, unexpected)
	}
	seen := map[int]bool{}
	for i := range 100 {
		n := Outputs(i)
		if n < 1 || n > 3 {
			t.Fatalf("Outputs(%d) = %d", i, n)
		}
		seen[n] = true
	}
	if len(seen) != 3 {
		t.Fatalf("Outputs takes %d of the values 1 to 3", len(seen))
	}
}
