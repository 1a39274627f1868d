package chaos

import (
	"math/rand/v2"
	"time"
)

// The kinds of faults a run injects.
const (
	// KillConsumer SIGKILLs a consumer process; it starts again (under a new
	// consumer name) when the fault ends.
	KillConsumer = "kill-consumer"
	// CutConnections cuts every client connection to the master at once,
	// then one at random every 100–300 ms until the fault ends.
	CutConnections = "cut-connections"
	// Blackhole cuts every client connection to the master, and swallows new
	// ones (accepted, never answered) until the fault ends.
	Blackhole = "blackhole"
	// FreezeReplica stops the replica with SIGSTOP: Publish's WAIT times out.
	FreezeReplica = "freeze-replica"
	// FreezeMaster stops the master with SIGSTOP, either briefly or long
	// enough for the sentinels to fail over.
	FreezeMaster = "freeze-master"
	// KillMaster SIGKILLs the master; the fault ends once the sentinels'
	// new master is in place, and the old one rejoins as a replica later.
	KillMaster = "kill-master"
	// Failover is not injected: it marks a failover the sentinels made
	// while the master was frozen (KillMaster records its own), from the
	// start of the freeze until the new master was in place.
	Failover = "failover"
)

// noFailover ends the target of a KillMaster fault after which the sentinels
// did not fail over: the old master started again from its AOF and lost
// nothing. The target is one field of the event log, so it has no space.
const noFailover = "/no-failover"

// kinds lists the injected kinds; weights how often each is drawn after the
// first round, in which every kind comes once.
var (
	kinds   = []string{KillConsumer, CutConnections, Blackhole, FreezeReplica, FreezeMaster, KillMaster}
	weights = []int{3, 2, 1, 1, 1, 1}
)

// planned is one fault of a run's schedule.
type planned struct {
	At   time.Duration // after the run's start
	Kind string
	For  time.Duration // how long the cause lasts; for KillMaster, how long the old master stays down after the failover
	Slot int           // the consumer process, for KillConsumer
}

// warmup is how long a run works without faults first.
const warmup = 3 * time.Second

// plan draws the faults of a run from seed: the first round has every kind
// once in random order, then kinds are drawn by weight; starts are apart by
// a quarter to 1.75 times meanGap, so faults often overlap. Every fault
// starts after warmup; after the first round, only faults that end within
// run are planned.
func plan(seed uint64, run, meanGap time.Duration, consumers int) []planned {
	rng := rand.New(rand.NewPCG(seed, 0x6d696c6c72616365))
	first := rng.Perm(len(kinds))
	total := 0
	for _, w := range weights {
		total += w
	}
	var out []planned
	at := warmup
	for i := 0; ; i++ {
		var kind string
		if i < len(first) {
			kind = kinds[first[i]]
		} else {
			n := rng.IntN(total)
			for k, w := range weights {
				if n < w {
					kind = kinds[k]
					break
				}
				n -= w
			}
		}
		f := planned{At: at, Kind: kind, For: faultLength(kind, rng), Slot: rng.IntN(consumers)}
		if i >= len(kinds) && at+f.For > run {
			return out
		}
		out = append(out, f)
		at += time.Duration((0.25 + 1.5*rng.Float64()) * float64(meanGap))
	}
}

// faultLength draws how long a fault of kind lasts.
func faultLength(kind string, rng *rand.Rand) time.Duration {
	between := func(lo, hi float64) time.Duration {
		return time.Duration((lo + (hi-lo)*rng.Float64()) * float64(time.Second))
	}
	switch kind {
	case KillConsumer:
		return between(0.3, 3)
	case CutConnections:
		return between(0.5, 3)
	case Blackhole:
		return between(0.5, 2.5)
	case FreezeReplica:
		return between(0.3, 2.5)
	case FreezeMaster:
		// Shorter than down-after-milliseconds (1 s), or long enough that
		// the sentinels fail over; not in between, where it is a coin toss.
		if rng.IntN(2) == 0 {
			return between(0.2, 0.8)
		}
		return between(2.5, 3.5)
	default: // KillMaster
		return between(1, 4)
	}
}
