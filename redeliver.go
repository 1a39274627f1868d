package millrace

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// redeliverer hands Nacked entries out again when their backoff ends: one
// goroutine and one timer for all of them. In a group the worker that takes
// one claims it back with XCLAIM, which bumps Redis's delivery counter, so
// Redis sees every Nack. Entries still waiting at stop stay held and are
// released.
type redeliverer struct {
	loop
	claim bool // in a group: mark entries to be claimed again
	queue *queue

	mu   sync.Mutex
	due  dueHeap
	wake chan struct{}
}

type redelivererParams struct {
	parent context.Context // the subscription's soft end
	claim  bool            // in a group
	queue  *queue
}

func newRedeliverer(p redelivererParams) *redeliverer {
	return &redeliverer{loop: newLoop(p.parent), claim: p.claim, queue: p.queue, wake: make(chan struct{}, 1)}
}

func (r *redeliverer) start() { r.goRun(r.run) }

// schedule redelivers e after delay. It never blocks.
func (r *redeliverer) schedule(e *entry, delay time.Duration) {
	r.mu.Lock()
	heap.Push(&r.due, dueEntry{at: time.Now().Add(delay), e: e})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// pop returns the entries due now and the wait until the next one.
func (r *redeliverer) pop() ([]*entry, time.Duration) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var ready []*entry
	for r.due.Len() > 0 && !r.due[0].at.After(now) {
		ready = append(ready, heap.Pop(&r.due).(dueEntry).e)
	}
	wait := time.Hour
	if r.due.Len() > 0 {
		wait = r.due[0].at.Sub(now)
	}
	return ready, wait
}

func (r *redeliverer) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		ready, wait := r.pop()
		if len(ready) > 0 {
			if !r.deliver(ready) {
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-r.wake:
		case <-ctx.Done():
			return
		}
	}
}

// deliver pushes ready entries to the queue; false when stopping. In a group
// each is marked to be claimed, counting the redelivery, when a worker
// takes it.
func (r *redeliverer) deliver(ready []*entry) bool {
	for _, e := range ready {
		e.claim = r.claim
		if !r.queue.push(e) {
			return false
		}
	}
	return true
}

type dueEntry struct {
	at time.Time
	e  *entry
}

// dueHeap is a min-heap of entries by due time.
type dueHeap []dueEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
