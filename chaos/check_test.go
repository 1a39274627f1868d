package chaos

import (
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// t0 is the start of the synthetic runs, in Unix nanoseconds.
const t0 = int64(1_700_000_000_000_000_000)

// at is the time ms milliseconds after t0, as a log field.
func at(ms int) string { return fmt.Sprint(t0 + int64(ms)*int64(time.Millisecond)) }

// pidOf is the process id of a consumer name in the synthetic logs.
func pidOf(consumer string) int {
	h := fnv.New32a()
	h.Write([]byte(consumer))
	return 1000 + int(h.Sum32()%100000)
}

// entryOf is the entry ID of a message published once.
func entryOf(uuid string) string { return "id-" + uuid }

// hrun is the H line of a handler run on uuid's entry from startMs to endMs.
func hrun(uuid, consumer string, delivery, startMs, endMs int, outcome string) string {
	return hentry(uuid, entryOf(uuid), consumer, delivery, startMs, endMs, outcome)
}

// hentry is hrun on a given entry.
func hentry(uuid, entry, consumer string, delivery, startMs, endMs int, outcome string) string {
	return fmt.Sprintf("H %s %s %s %d %d %s %s %s", uuid, entry, consumer, pidOf(consumer), delivery, at(startMs), at(endMs), outcome)
}

// kill is the F line of consumer's SIGKILL at ms, restarted at endMs.
func kill(consumer string, ms, endMs int) string {
	return fmt.Sprintf("F %s %s %s %s %d", KillConsumer, consumer, at(ms), at(endMs), pidOf(consumer))
}

// fault is the F line of a fault other than a consumer kill.
func fault(kind, target string, ms, endMs int) string {
	return fmt.Sprintf("F %s %s %s %s", kind, target, at(ms), at(endMs))
}

// runLine is the R line of a run that starts at t0 with ClaimMinIdle 2s.
func runLine() string { return "R " + at(0) + " " + fmt.Sprint(int64(2*time.Second)) }

// healthyLog is a synthetic log of a run in which nothing went wrong:
// m1 handled twice (c2.0 was killed before its XACK), m2 failed
// once and was handled on its redelivery, m3 poison and dead-lettered, m4
// unconfirmed and handled anyway, m5 unconfirmed and never seen.
func healthyLog() string {
	return strings.Join([]string{
		runLine(),
		"P m1 good " + at(0) + " " + at(5) + " ok",
		"P m2 nack-once " + at(10) + " " + at(15) + " ok",
		"P m3 poison-panic " + at(20) + " " + at(25) + " ok",
		"P m4 good " + at(30) + " " + at(1030) + " not-durable",
		"P m5 good " + at(40) + " " + at(2040) + " network",
		hrun("m1", "c2.0", 1, 6, 8, "ok"),
		hrun("m1", "c1.0", 2, 2098, 2100, "ok"),
		hrun("m2", "c0.0", 1, 16, 18, "fail"),
		hrun("m2", "c0.0", 2, 128, 130, "ok"),
		hrun("m3", "c0.0", 1, 26, 28, "fail"),
		hrun("m3", "c1.0", 2, 148, 150, "fail"),
		hrun("m4", "c1.0", 1, 1038, 1040, "ok"),
		kill("c2.0", 9, 1000),
		"E id-m1 m1",
		"E id-m2 m2",
		"E id-m3 m3",
		"E id-m4 m4",
		"D m3 3 delivered 3 times, more than MaxDeliveries 2",
	}, "\n") + "\n"
}

func parse(t *testing.T, s string) Log {
	t.Helper()
	l, err := ParseLog(strings.NewReader(s))
	require.NoError(t, err)
	return l
}

func TestCheck_HealthyRun(t *testing.T) {
	v := Check(parse(t, healthyLog()))
	assert.Empty(t, v.Failures())
	assert.True(t, v.Complete())
	assert.Equal(t, 5, v.Published)
	assert.Equal(t, 3, v.Confirmed)
	assert.Equal(t, map[string]int{"not-durable": 1, "network": 1}, v.Unconfirmed)
	assert.Equal(t, 1, v.UnconfirmedHandled)
	assert.Equal(t, 2, v.Good)
	assert.Equal(t, 2, v.Handled)
	assert.Empty(t, v.StrictFailures())
	require.Len(t, v.DeliveryDuplicates, 1)
	assert.Equal(t, map[Cause]int{CauseKilled: 1}, v.ByCause)
	assert.Empty(t, v.Unexplained)
	assert.Zero(t, v.PublishDuplicates)
	assert.Equal(t, 4, v.StreamEntries)
	assert.Equal(t, 2, v.MaxHandled)
	assert.Equal(t, 1, v.Redelivered, "m1; m2's redelivery was planned")
	assert.Equal(t, 1, v.Poison)
	assert.Equal(t, 1, v.PoisonInDLQ)
	assert.Equal(t, map[string]int{"delivered N times, more than MaxDeliveries 2": 1}, v.Reasons)
	assert.Equal(t, 7, v.HandlerRuns)
	assert.Equal(t, 3, v.FailedRuns)
	assert.Zero(t, v.SameDelivery)

	l := parse(t, healthyLog()+hrun("m2", "c0.0", 2, 138, 140, "ok")+"\n")
	v = Check(l)
	assert.Equal(t, 1, v.SameDelivery, "c0.0 ran m2's delivery 2 twice")
	require.Len(t, v.Unexplained, 1, "nothing explains a delivery handed out twice")
	assert.Equal(t, "id-m2", v.Unexplained[0].Entry)
}

// TestCheck_AckFirstBuild is the log of a consumer built with the
// deliberately broken ack-first middleware (brokenEnv): it Acked m1 and m2,
// was SIGKILLed in the middle of handling them, and nothing redelivered
// them; it Acked the poison message m3 too, so it never reached the
// dead-letter stream. The last line was cut by the kill.
func TestCheck_AckFirstBuild(t *testing.T) {
	l := parse(t, strings.Join([]string{
		"P m1 good " + at(0) + " " + at(5) + " ok",
		"P m2 good " + at(1) + " " + at(6) + " ok",
		"P m3 poison-nack " + at(2) + " " + at(7) + " ok",
		"P m4 good " + at(3) + " " + at(8) + " ok",
		hrun("m3", "c0.0", 1, 7, 9, "fail"),
		hrun("m4", "c0.0", 1, 8, 10, "ok"),
		kill("c0.0", 11, 500),
		"H m1 id-m1 c0.0 4242 1 17000000",
	}, "\n"))
	assert.Equal(t, 1, l.Skipped, "the line cut by the kill")
	v := Check(l)
	assert.False(t, v.Complete())
	assert.Equal(t, []string{"m1", "m2"}, v.Lost)
	assert.Equal(t, map[string]int{"good": 2}, v.LostByClass)
	assert.Equal(t, []string{"m3"}, v.PoisonMissing)
	f := v.Failures()
	require.Len(t, f, 2)
	assert.Equal(t, "2 confirmed messages lost (neither handled nor dead-lettered): m1 m2", f[0])
	assert.Equal(t, "1 confirmed poison messages not in the dead-letter stream: m3", f[1])
}

func TestCheck_EachFailure(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(string) string
		want string
	}{
		"message dropped by a handler": {
			edit: func(s string) string {
				return strings.ReplaceAll(s, hrun("m2", "c0.0", 2, 128, 130, "ok"), hrun("m2", "c0.0", 2, 128, 130, "fail"))
			},
			want: "1 confirmed messages lost (neither handled nor dead-lettered): m2",
		},
		"poison message handled": {
			edit: func(s string) string {
				return strings.ReplaceAll(s, hrun("m3", "c1.0", 2, 148, 150, "fail"), hrun("m3", "c1.0", 2, 148, 150, "ok"))
			},
			want: "1 poison messages handled successfully: m3",
		},
		"dead letter without a reason": {
			edit: func(s string) string {
				return strings.ReplaceAll(s, "D m3 3 delivered 3 times, more than MaxDeliveries 2", "D m3 3")
			},
			want: "1 dead letters without a reason: m3",
		},
		"handled but never published": {
			edit: func(s string) string { return s + hrun("m9", "c1.0", 1, 48, 50, "ok") + "\n" },
			want: "1 handled messages that were never published",
		},
		"nothing confirmed": {
			edit: func(string) string { return "P m1 good " + at(0) + " " + at(5) + " network\n" },
			want: "nothing was published and confirmed: the run checked nothing",
		},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, []string{tc.want}, Check(parse(t, tc.edit(healthyLog()))).Failures())
		})
	}
}

func TestCheck_GoodMessageDeadLetteredIsReportedNotLost(t *testing.T) {
	l := parse(t, healthyLog()+"D m1 7 delivered 7 times, more than MaxDeliveries 6\n")
	require.Equal(t, "m1", l.Handlings[1].UUID)
	l.Handlings = l.Handlings[2:] // m1 was never handled
	v := Check(l)
	assert.Empty(t, v.Failures())
	assert.Equal(t, []string{"m1"}, v.GoodDeadLettered)
	assert.Empty(t, v.Lost)
}

func TestRecoveries(t *testing.T) {
	// 10 msg/s: one good message every 100 ms for 10 s, each handled 20 ms
	// later, except that nothing is handled from 3 s to 5 s, when the fault
	// ends; the backlog is handled at 5.5 s.
	var lines []string
	for i := range 100 {
		ms := i * 100
		h := ms + 20
		if h >= 3000 && h < 5500 {
			h = 5500
		}
		lines = append(lines, fmt.Sprintf("P m%d good %s %s ok", i, at(ms), at(ms+5)),
			hrun(fmt.Sprintf("m%d", i), "c0.0", 1, h-2, h, "ok"))
	}
	lines = append(lines, fault(FreezeMaster, "x", 3000, 5000))
	l := parse(t, strings.Join(lines, "\n"))
	s := NewSeries(l, time.Unix(0, t0))
	assert.Equal(t, 0, s.Lag(time.Unix(0, t0).Add(2050*time.Millisecond)))
	assert.Equal(t, 25, s.Lag(time.Unix(0, t0).Add(5500*time.Millisecond-time.Nanosecond)))
	assert.Equal(t, 1, s.Lag(time.Unix(0, t0).Add(5500*time.Millisecond)), "only m55, sent at that moment")
	r := s.Recoveries(l.Faults, 10)
	require.Len(t, r, 1)
	assert.Equal(t, 0, r[0].Overlapped)
	assert.Equal(t, 25, r[0].PeakLag, "the backlog handled at 5.5 s")
	// The second before 5.5 s had no handling; the one up to 5.5 s has the
	// burst.
	assert.Equal(t, 500*time.Millisecond, r[0].Throughput)
}

func TestPlan(t *testing.T) {
	p := plan(7, 5*time.Minute, 3*time.Second, 3)
	assert.Equal(t, p, plan(7, 5*time.Minute, 3*time.Second, 3), "a seed gives one plan")
	assert.NotEqual(t, p, plan(8, 5*time.Minute, 3*time.Second, 3))
	first := map[string]bool{}
	for _, f := range p[:len(kinds)] {
		first[f.Kind] = true
	}
	assert.Len(t, first, len(kinds), "every kind in the first round")
	overlaps := 0
	for i, f := range p {
		assert.GreaterOrEqual(t, f.At, warmup)
		assert.LessOrEqual(t, f.At+f.For, 5*time.Minute)
		assert.Less(t, f.At, 5*time.Minute)
		if i > 0 && p[i-1].At+p[i-1].For > f.At {
			overlaps++
		}
	}
	assert.Greater(t, overlaps, len(p)/10, "faults overlap")
	assert.Greater(t, len(p), 60)

	short := plan(3, 10*time.Second, 3*time.Second, 3)
	require.GreaterOrEqual(t, len(short), len(kinds), "the first round even if it outlasts the run")
	assert.Greater(t, short[len(kinds)-1].At+short[len(kinds)-1].For, 10*time.Second)
}
