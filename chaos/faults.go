package chaos

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/millrace/millrace/chaos/internal/childproc"
	"github.com/millrace/millrace/internal/faultproxy"
	"github.com/millrace/millrace/internal/redistest"
)

// Timings of the executor.
const (
	// watchEvery is how often the executor asks a sentinel which master it
	// announces and checks that the consumer processes run.
	watchEvery = 250 * time.Millisecond
	// busyRetry is how long a fault waits when another one holds what it
	// needs (Redis, or the proxy's mode).
	busyRetry = 500 * time.Millisecond
	// settleQuiet is how long after a Redis fault ended the sentinels must
	// go on announcing the same master before the next Redis fault may
	// start: a long freeze may still turn into a failover meanwhile.
	settleQuiet = 2 * time.Second
	// failoverWait bounds the wait for the sentinels to replace a killed
	// master; after it the old master is started again in its place.
	failoverWait = 30 * time.Second
)

// action is something the executor does at a time.
type action struct {
	at    time.Time
	begin string // the kind of fault it starts, "" for other actions
	do    func()
}

type actionHeap []action

func (h actionHeap) Len() int           { return len(h) }
func (h actionHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h actionHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *actionHeap) Push(x any)        { *h = append(*h, x.(action)) }
func (h *actionHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	*h = old[:len(old)-1]
	return a
}

// executor injects the faults of a plan, one action at a time, from the
// test's goroutine: overlapping faults are interleaved actions. Faults that
// act on Redis (freezes, kills) run one at a time, and so do the proxy's
// modes; consumer kills overlap with anything.
type executor struct {
	tb     testing.TB
	tp     *topology
	cons   *childproc.Pool[consumerSpec]
	events *eventWriter
	rng    *rand.Rand // the choices made while faults run
	logf   func(format string, args ...any)

	queue     actionHeap
	active    int  // faults begun and not ended, settling included
	redisBusy bool // a Redis fault runs or settles
	netBusy   bool // a proxy fault runs
	slotDown  []bool
	killed    *redistest.Server // a killed master waiting for the failover
	killedAt  time.Time
	killedFor time.Duration // how long it stays down after the failover
	start     time.Time
	// redisStart is when the last Redis fault began: where a failover that
	// a frozen master caused starts.
	redisStart time.Time
	faults     []Fault
	injected   map[string]bool // kinds injected at least once
}

func (e *executor) push(at time.Time, begin string, do func()) {
	heap.Push(&e.queue, action{at: at, begin: begin, do: do})
}

// run injects plan from start until end, then lets the faults still running
// end and Redis settle. A fault postponed past end (what it needs was
// taken) is dropped, unless no fault of its kind has been injected yet.
func (e *executor) run(plan []planned, start, end time.Time) {
	e.start = start
	e.injected = map[string]bool{}
	for _, f := range plan {
		e.push(start.Add(f.At), f.Kind, func() { e.begin(f) })
	}
	var watch func()
	watch = func() {
		e.watch()
		e.push(time.Now().Add(watchEvery), "", watch)
	}
	e.push(start, "", watch)
	for {
		a := heap.Pop(&e.queue).(action)
		if a.begin != "" && a.at.After(end) && e.injected[a.begin] {
			continue
		}
		if a.at.After(end) && e.active == 0 && !e.beginsLeft(end) {
			return
		}
		time.Sleep(time.Until(a.at)) // the schedule's pause between faults
		a.do()
	}
}

// beginsLeft reports whether a fault is still to be injected.
func (e *executor) beginsLeft(end time.Time) bool {
	for _, a := range e.queue {
		if a.begin != "" && (!a.at.After(end) || !e.injected[a.begin]) {
			return true
		}
	}
	return false
}

// record ends a fault that began at start.
func (e *executor) record(kind, target string, start time.Time) {
	e.add(Fault{Kind: kind, Target: target, Start: start, End: time.Now()})
}

// add records fault f, which has ended.
func (e *executor) add(f Fault) {
	e.faults = append(e.faults, f)
	if err := e.events.fault(f); err != nil {
		e.tb.Errorf("chaos: event log: %v", err)
	}
	e.logf("%6.1fs %-15s %-22s %v", f.Start.Sub(e.start).Seconds(), f.Kind, f.Target, f.End.Sub(f.Start).Round(time.Millisecond))
}

// begin starts planned fault f, or tries again later if what it needs is
// taken.
func (e *executor) begin(f planned) {
	retry := func() { e.push(time.Now().Add(busyRetry), f.Kind, func() { e.begin(f) }) }
	now := time.Now()
	switch f.Kind {
	case KillConsumer:
		slot := f.Slot
		if e.slotDown[slot] {
			up := e.cons.Up()
			if len(up) <= 1 { // keep one consumer running
				retry()
				return
			}
			slot = up[e.rng.IntN(len(up))]
		}
		name, pid := e.cons.Kill(slot)
		e.slotDown[slot] = true
		e.active++
		e.injected[f.Kind] = true
		e.push(now.Add(f.For), "", func() {
			e.cons.Start(slot)
			e.slotDown[slot] = false
			e.active--
			e.add(Fault{Kind: f.Kind, Target: name, Start: now, End: time.Now(), Pid: pid})
		})
	case CutConnections, Blackhole:
		if e.netBusy {
			retry()
			return
		}
		e.netBusy = true
		e.active++
		e.injected[f.Kind] = true
		p := e.tp.masterProxy()
		target := e.tp.st.Master.Addr()
		if f.Kind == Blackhole {
			p.SetMode(faultproxy.Blackhole)
		}
		p.CutAll()
		e.cutUntil(f, now, target, p)
	default:
		if e.redisBusy {
			retry()
			return
		}
		e.redisBusy = true
		e.active++
		e.injected[f.Kind] = true
		e.beginRedis(f, now)
	}
}

// cutUntil cuts a random connection to the master every 100–300 ms until
// the end of f, or, for a blackhole, lets clients hang until then.
func (e *executor) cutUntil(f planned, start time.Time, target string, p *faultproxy.Proxy) {
	end := start.Add(f.For)
	next := time.Now().Add(time.Duration(100+e.rng.IntN(200)) * time.Millisecond)
	if f.Kind == CutConnections && next.Before(end) {
		e.push(next, "", func() {
			e.tp.masterProxy().CutRandom(e.rng)
			e.cutUntil(f, start, target, p)
		})
		return
	}
	e.push(end, "", func() {
		if f.Kind == Blackhole {
			p.SetMode(faultproxy.Forward)
			p.CutAll() // the swallowed connections never reached Redis
		}
		e.netBusy = false
		e.active--
		e.record(f.Kind, target, start)
	})
}

// beginRedis starts a freeze or a master kill.
func (e *executor) beginRedis(f planned, start time.Time) {
	st := e.tp.st
	e.redisStart = start
	switch f.Kind {
	case FreezeReplica, FreezeMaster:
		s := st.Master
		if f.Kind == FreezeReplica {
			s = st.Replicas[0]
		}
		s.Freeze()
		e.push(start.Add(f.For), "", func() {
			s.Thaw()
			e.record(f.Kind, s.Addr(), start)
			e.settle(time.Now())
		})
	case KillMaster:
		s := st.Master
		e.killed, e.killedAt, e.killedFor = s, start, f.For
		s.Kill()
		e.push(start.Add(failoverWait), "", func() {
			if e.killed == s && e.killedAt.Equal(start) { // no failover: start the master again
				e.killed = nil
				st.Rejoin(e.tb, s)
				e.record(f.Kind, s.Addr()+noFailover, start)
				e.settle(time.Now())
			}
		})
	}
}

// watch takes over a failover the sentinels made, brings a killed master
// back once its replacement is in place, and starts again consumer
// processes that exited on their own.
func (e *executor) watch() {
	st := e.tp.st
	if a := e.tp.announcedMaster(0); a != "" && a != st.Master.Addr() {
		old := st.Master
		st.AwaitFailover(e.tb, old.Addr())
		if e.killed != old {
			e.record(Failover, old.Addr()+"->"+st.Master.Addr(), e.redisStart)
		}
		if e.killed == old {
			e.killed = nil
			e.record(KillMaster, old.Addr(), e.killedAt)
			e.push(time.Now().Add(e.killedFor), "", func() {
				st.Rejoin(e.tb, old)
				e.settle(time.Now())
			})
		}
	}
	e.cons.RestartExited()
}

// settle ends a Redis fault once every sentinel has announced the same
// master for settleQuiet since from, with every other server rejoined.
func (e *executor) settle(from time.Time) {
	if !e.tp.settled() || e.killed != nil {
		e.push(time.Now().Add(watchEvery), "", func() { e.settle(time.Now()) })
		return
	}
	if time.Since(from) < settleQuiet {
		e.push(time.Now().Add(watchEvery), "", func() { e.settle(from) })
		return
	}
	for _, r := range e.tp.st.Replicas {
		e.tp.st.Rejoin(e.tb, r)
	}
	e.redisBusy = false
	e.active--
}
