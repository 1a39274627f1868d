package soak

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Flags of TestSoak; `make soak` sets them through SOAK_ARGS. Without
// -soak.duration the test runs the short form (Short).
var (
	flagDuration = flag.Duration("soak.duration", 0, "how long to churn (default: the 20 s form of make test)")
	flagSample   = flag.Duration("soak.sample", 0, "sample interval (default 10s, 1s in the short form)")
	flagRedis    = flag.Duration("soak.redis", 0, "interval between redis-server restarts (default 4m, 7s in the short form)")
	flagDir      = flag.String("soak.dir", "", "directory for report.txt and soak.svg (default: a temp dir)")
)

// TestSoak churns and fails if a series grew beyond its tolerance or
// something was left behind once everything was closed.
func TestSoak(t *testing.T) {
	cfg := Short
	if *flagDuration > 0 {
		cfg = Config{Duration: *flagDuration}
	}
	if *flagSample > 0 {
		cfg.SampleEvery = *flagSample
	}
	if *flagRedis > 0 {
		cfg.RedisEvery = *flagRedis
	}
	res := Run(t, cfg)
	dir := *flagDir
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	var report, svg bytes.Buffer
	require.NoError(t, res.Report(&report))
	require.NoError(t, res.Plot(&svg))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "report.txt"), report.Bytes(), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "soak.svg"), svg.Bytes(), 0o644))
	t.Logf("\n%s\nreport.txt and soak.svg are in %s", report.String(), dir)
	for _, f := range res.Failures() {
		t.Errorf("soak: %s", f)
	}
	assert.Positive(t, res.Churned)
	assert.Positive(t, res.RouterRestarts)
	assert.NotEmpty(t, res.Restarts, "redis-server restarted")
}

func TestAnalyze(t *testing.T) {
	flat := func(i int) Sample {
		return Sample{At: time.Duration(i) * 10 * time.Second, RSS: 100 * mb, HeapInuse: 20 * mb, Goroutines: 150 + i%3, PoolConns: 10,
			RedisClients: 11, UsedMemory: 4 * mb, Keys: 3, Consumers: 8, Pending: 30}
	}
	var samples []Sample
	for i := range 20 {
		samples = append(samples, flat(i))
	}
	trends := Analyze(samples)
	require.Len(t, trends, len(metrics))
	for _, tr := range trends {
		assert.True(t, tr.OK(), tr.String())
	}

	// One goroutine and one consumer leaked per sample: 10 over the
	// second half, above the 1 consumer tolerated but within the 20
	// goroutines (goleak catches those at the end); RSS up 54 MB, above
	// a quarter of its median.
	for i := range samples {
		samples[i].Goroutines += i
		samples[i].Consumers += i
		samples[i].RSS += int64(i) * 6 * mb
	}
	failing := map[string]bool{}
	for _, tr := range Analyze(samples) {
		if !tr.OK() {
			failing[tr.Metric] = true
		}
	}
	want := map[string]bool{"consumers": true, "rss": true}
	if raceEnabled {
		delete(want, "rss") // the race detector's memory grows by design
	}
	assert.Equal(t, want, failing)
	assert.Empty(t, Analyze(samples[:2*minHalf-1]), "too few samples")
}

func TestFailures(t *testing.T) {
	r := Result{LeftOpen: []string{"id=7 name=soak-workload cmd=xreadgroup"}, KeysAfter: []string{"soak.a", "soak.b:dlq"}}
	assert.Equal(t, []string{
		"0 samples: too few to fit a trend (need 8)",
		"connection left open: id=7 name=soak-workload cmd=xreadgroup",
		"key left behind: soak.b:dlq",
	}, r.Failures())
}
