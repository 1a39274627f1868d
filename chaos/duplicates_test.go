package chaos

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dupLog is a log of one confirmed good message m1, in the stream once,
// with lines added; ClaimMinIdle is 2s.
func dupLog(lines ...string) string {
	return strings.Join(append([]string{
		runLine(),
		"P m1 good " + at(0) + " " + at(5) + " ok",
		"E id-m1 m1",
	}, lines...), "\n") + "\n"
}

// causeOf checks s and returns the cause of its one delivery-side
// duplicate ("" if unexplained), checking that the counts agree.
func causeOf(t *testing.T, s string) Cause {
	t.Helper()
	v := Check(parse(t, s))
	require.Empty(t, v.Failures())
	require.Len(t, v.DeliveryDuplicates, 1)
	d := v.DeliveryDuplicates[0]
	if d.Cause == "" {
		assert.Equal(t, []Duplicate{d}, v.Unexplained)
		assert.Empty(t, v.ByCause)
		require.Len(t, v.StrictFailures(), 1)
		assert.Contains(t, v.StrictFailures()[0], "1 delivery-side duplicates without a cause (entry IDs): id-m1")
	} else {
		assert.Empty(t, v.Unexplained)
		assert.Equal(t, map[Cause]int{d.Cause: 1}, v.ByCause)
		assert.Empty(t, v.StrictFailures())
	}
	return d.Cause
}

func TestAttribute_Killed(t *testing.T) {
	first := hrun("m1", "c0.0", 1, 1000, 1002, "ok")
	again := hrun("m1", "c1.0", 2, 4000, 4002, "ok")
	for name, tc := range map[string]struct {
		lines []string
		want  Cause
	}{
		"killed right after its handler ran":   {[]string{first, kill("c0.0", 1010, 2000), again}, CauseKilled},
		"killed when its Ack was long through": {[]string{first, kill("c0.0", 2500, 3000), again}, ""},
		"another consumer killed":              {[]string{first, kill("c2.0", 1010, 2000), again}, ""},
		"another consumer killed, pid unknown": {[]string{first, fault(KillConsumer, "c2.0", 1010, 2000), again}, ""},
		"same name, another process": {[]string{first, strings.Replace(kill("c0.0", 1010, 2000),
			" "+at(2000)+" ", " "+at(2000)+" 1", 1), again}, ""},
		"redelivered before the kill": {[]string{first, kill("c0.0", 1010, 2000),
			hrun("m1", "c1.0", 2, 1003, 1005, "ok")}, ""},
		"redelivery Redis did not count": {[]string{first, kill("c0.0", 1010, 2000),
			hrun("m1", "c1.0", 1, 4000, 4002, "ok")}, ""},
		// A blackhole holds the Ack back: its retry comes at most one
		// backoff (twice the blackhole, 3 s) after the blackhole's end.
		"killed while a blackhole held its Ack back": {[]string{first, fault(Blackhole, "m", 900, 2400),
			kill("c0.0", 5000, 6000), hrun("m1", "c1.0", 2, 8000, 8002, "ok")}, CauseKilled},
		"killed after the retries following a blackhole": {[]string{first, fault(Blackhole, "m", 900, 2400),
			kill("c0.0", 7000, 7500), hrun("m1", "c1.0", 2, 9000, 9002, "ok")}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, causeOf(t, dupLog(tc.lines...)))
		})
	}
}

func TestAttribute_Failover(t *testing.T) {
	first := hrun("m1", "c0.0", 1, 10000, 10002, "ok")
	// The redeliveries below have the same delivery count, as when the
	// failover lost the delivery itself: nothing else explains that.
	again := hrun("m1", "c1.0", 1, 13000, 13002, "ok")
	for name, tc := range map[string]struct {
		lines []string
		want  Cause
	}{
		"master killed right after the XACK":  {[]string{first, fault(KillMaster, "m", 10200, 12000), again}, CauseFailover},
		"master killed long after the XACK":   {[]string{first, fault(KillMaster, "m", 12500, 14000), hrun("m1", "c1.0", 1, 16000, 16002, "ok")}, ""},
		"master killed, no failover":          {[]string{first, fault(KillMaster, "m"+noFailover, 10200, 12000), again}, ""},
		"redelivered before the failover":     {[]string{first, hrun("m1", "c1.0", 1, 10050, 10052, "ok"), fault(KillMaster, "m", 10200, 12000)}, ""},
		"handled while the master was frozen": {[]string{fault(Failover, "m->r", 9000, 12000), first, again}, CauseFailover},
		"handled after the failover was done": {[]string{fault(Failover, "m->r", 3000, 6000), first, again}, ""},
		"master killed just before delivery":  {[]string{fault(KillMaster, "m", 9500, 9600), first, again}, CauseFailover},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, causeOf(t, dupLog(tc.lines...)))
		})
	}
}

func TestAttribute_Unreachable(t *testing.T) {
	// c0.0 handles m1 in a blackhole from 10 s to 12 s; its lease cannot be
	// renewed, and c1.0 claims the entry after the blackhole.
	hole := fault(Blackhole, "m", 10000, 12000)
	first := hrun("m1", "c0.0", 1, 10500, 10502, "ok")
	for name, tc := range map[string]struct {
		lines []string
		want  Cause
	}{
		"claimed after the blackhole": {[]string{hole, first, hrun("m1", "c1.0", 2, 12300, 12302, "ok")}, CauseUnreachable},
		// The cut-off consumer's run may finish last: it had the entry
		// queued while c1.0 claimed it.
		"claimed before the cut-off run finished": {[]string{hole, hrun("m1", "c1.0", 2, 12300, 12302, "ok"),
			hrun("m1", "c0.0", 1, 12350, 12400, "ok")}, CauseUnreachable},
		"claimed before the lease could expire": {[]string{hole, first, hrun("m1", "c1.0", 2, 10700, 10702, "ok")}, ""},
		"claimed after c0.0 renewed the lease":  {[]string{hole, first, hrun("m1", "c1.0", 2, 16000, 16002, "ok")}, ""},
		"handled again by the same consumer":    {[]string{hole, first, hrun("m1", "c0.0", 2, 12300, 12302, "ok")}, ""},
		"redelivery Redis did not count":        {[]string{hole, first, hrun("m1", "c1.0", 1, 12300, 12302, "ok")}, ""},
		"acknowledged long before the blackhole": {[]string{hole, hrun("m1", "c0.0", 1, 6000, 6002, "ok"),
			hrun("m1", "c1.0", 2, 12300, 12302, "ok")}, ""},
		// Cut connections run into the blackhole: one outage.
		"cut connections, then the blackhole": {[]string{fault(CutConnections, "m", 9000, 10500), hole,
			hrun("m1", "c0.0", 1, 9100, 9102, "ok"), hrun("m1", "c1.0", 2, 12300, 12302, "ok")}, CauseUnreachable},
		// Two outages too short for a lease to expire, with time to renew
		// it between them.
		"two short outages": {[]string{fault(CutConnections, "m", 10000, 10300), fault(Blackhole, "m", 11500, 11800),
			first, hrun("m1", "c1.0", 2, 12900, 12902, "ok")}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, causeOf(t, dupLog(tc.lines...)))
		})
	}

	t.Run("no ClaimMinIdle in the log", func(t *testing.T) {
		s := dupLog(hole, first, hrun("m1", "c1.0", 2, 12300, 12302, "ok"))
		assert.Equal(t, Cause(""), causeOf(t, strings.Replace(s, runLine()+"\n", "", 1)))
	})
}

func TestAttribute_OnlySuccessesCount(t *testing.T) {
	// c0.0 fails m1 and is never killed, c1.0 succeeds on the redelivery,
	// then c2.0 is handed it again and fails: one success, no duplicate.
	v := Check(parse(t, dupLog(
		hrun("m1", "c0.0", 1, 1000, 1002, "fail"),
		hrun("m1", "c1.0", 2, 2000, 2002, "ok"),
		hrun("m1", "c2.0", 3, 3000, 3002, "fail"),
	)))
	assert.Empty(t, v.Failures())
	assert.Empty(t, v.StrictFailures())
	assert.Empty(t, v.DeliveryDuplicates)
	assert.Equal(t, 1, v.MaxHandled)

	// Three successes, with a kill behind only the first: the third has
	// no cause.
	v = Check(parse(t, dupLog(
		hrun("m1", "c0.0", 1, 1000, 1002, "ok"), kill("c0.0", 1010, 2000),
		hrun("m1", "c1.0", 2, 4000, 4002, "ok"),
		hrun("m1", "c2.0", 3, 9000, 9002, "ok"),
	)))
	require.Len(t, v.DeliveryDuplicates, 2)
	assert.Equal(t, 3, v.MaxHandled)
	assert.Equal(t, map[Cause]int{CauseKilled: 1}, v.ByCause)
	require.Len(t, v.Unexplained, 1)
	assert.Equal(t, "c2.0", v.Unexplained[0].Handling.Consumer)
	assert.Equal(t, "c1.0", v.Unexplained[0].Earlier.Consumer, "c1.0's Ack should have removed the entry")
	assert.Len(t, v.Unexplained[0].Handlings, 3)

	// A kill explains only the last of three: c0.0's Ack had no reason
	// to fail, and it would have removed the entry before c2.0 got it.
	v = Check(parse(t, dupLog(
		hrun("m1", "c0.0", 1, 1000, 1002, "ok"),
		hrun("m1", "c1.0", 2, 4000, 4002, "ok"), kill("c1.0", 4010, 5000),
		hrun("m1", "c2.0", 3, 9000, 9002, "ok"),
	)))
	assert.Empty(t, v.ByCause)
	require.Len(t, v.Unexplained, 2)
	assert.Equal(t, "c0.0", v.Unexplained[1].Earlier.Consumer)

	// The same with c1.0 killed after its run too: both Acks were lost.
	v = Check(parse(t, dupLog(
		hrun("m1", "c0.0", 1, 1000, 1002, "ok"), kill("c0.0", 1010, 2000),
		hrun("m1", "c1.0", 2, 4000, 4002, "ok"), kill("c1.0", 4010, 5000),
		hrun("m1", "c2.0", 3, 9000, 9002, "ok"),
	)))
	assert.Equal(t, map[Cause]int{CauseKilled: 2}, v.ByCause)
	assert.Empty(t, v.Unexplained)
}

func TestCheck_PublishSideDuplicates(t *testing.T) {
	// m1 is in two entries (an XADD sent twice), each handled once: a
	// publish-side duplicate, not a delivery-side one.
	v := Check(parse(t, dupLog(
		"E id-m1b m1",
		hrun("m1", "c0.0", 1, 1000, 1002, "ok"),
		hentry("m1", "id-m1b", "c1.0", 1, 1001, 1003, "ok"),
	)))
	assert.Empty(t, v.Failures())
	assert.Empty(t, v.DeliveryDuplicates)
	assert.Equal(t, 2, v.StreamEntries)
	assert.Equal(t, 1, v.PublishDuplicates)
	assert.Equal(t, []string{"m1"}, v.PublishDuplicated)
	assert.Equal(t, []string{"1 publish-side duplicates (entries beyond the first of a UUID): m1"}, v.StrictFailures())

	s := strings.Replace(dupLog(hrun("m1", "c0.0", 1, 1000, 1002, "ok")), "E id-m1 m1\n", "", 1)
	assert.Equal(t, []string{"the stream was not read after the run: publish-side duplicates unknown"}, Check(parse(t, s)).StrictFailures())
}

func TestEventLog_RoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	w, err := createEventLog(path)
	require.NoError(t, err)
	start := time.Unix(0, t0)
	h := Handling{UUID: "m1", Entry: "1-0", Consumer: "c0.0", Pid: 42, Delivery: 3, Start: start, At: start.Add(time.Millisecond), OK: true}
	f := Fault{Kind: KillConsumer, Target: "c0.0", Start: start, End: start.Add(time.Second), Pid: 42}
	g := Fault{Kind: KillMaster, Target: "127.0.0.1:1" + noFailover, Start: start, End: start.Add(time.Second)}
	require.NoError(t, w.run(start, 2*time.Second))
	require.NoError(t, w.handling(h))
	require.NoError(t, w.fault(f))
	require.NoError(t, w.fault(g))
	require.NoError(t, w.streamEntry(StreamEntry{ID: "1-0", UUID: "m1"}))
	require.NoError(t, w.Close())
	l, err := ReadLog(filepath.Dir(path))
	require.NoError(t, err)
	assert.Zero(t, l.Skipped)
	assert.True(t, l.Start.Equal(start))
	assert.Equal(t, 2*time.Second, l.ClaimMinIdle)
	require.Len(t, l.Handlings, 1)
	assert.True(t, l.Handlings[0].At.Equal(h.At) && l.Handlings[0].Start.Equal(h.Start))
	h.Start, h.At = l.Handlings[0].Start, l.Handlings[0].At
	assert.Equal(t, h, l.Handlings[0])
	require.Len(t, l.Faults, 2)
	assert.Equal(t, 42, l.Faults[0].Pid)
	assert.False(t, rollsBack(l.Faults[1]), "a master kill without failover")
	assert.Equal(t, []StreamEntry{{ID: "1-0", UUID: "m1"}}, l.Stream)
}

func TestReport_Unexplained(t *testing.T) {
	l := parse(t, dupLog(
		hrun("m1", "c0.0", 1, 1000, 1002, "ok"), kill("c2.0", 1500, 2000),
		hrun("m1", "c1.0", 2, 4000, 4002, "ok"),
	))
	res := Result{Start: time.Unix(0, t0), Log: l, Verdict: Check(l)}
	var b bytes.Buffer
	require.NoError(t, res.Report(&b))
	out := b.String()
	assert.Contains(t, out, "0 entries beyond the first of a UUID (0 UUIDs), of 1 entries in the stream")
	assert.Contains(t, out, "1 successful handlings of an entry beyond its first (at most 2 of one entry): 0 killed, 0 failover, 0 unreachable, 1 unexplained")
	assert.Contains(t, out, "CHECK FAILED")
	assert.Contains(t, out, "entry id-m1 (m1): the run finished at 4.002s by c1.0/")
	assert.Contains(t, out, "1.000s–1.002s")
	assert.Contains(t, out, "fault 1.500s–2.000s  kill-consumer c2.0/")

	res.Config.Lenient = true
	b.Reset()
	require.NoError(t, res.Report(&b))
	assert.NotContains(t, b.String(), "CHECK FAILED")
	assert.Contains(t, b.String(), "not failing (lenient)")
	assert.Contains(t, b.String(), "passed (lenient)")
	assert.NotContains(t, b.String(), "every delivery-side duplicate has a cause")
}
