package millrace

import (
	"sync"
	"time"
)

// heldSet is the set of entries that the subscriptions of one consumer name
// on one topic, in one Subscriber, have read from their group and not yet
// acknowledged: queued, in a handler or waiting for redelivery. It is shared
// by those subscriptions (two Router handlers on one topic), so that an
// entry one of them holds is never handed out by another: each sees the
// consumer's whole pending list as its own. Each subscription holds its
// entries through a holder; the claimer skips what any holder has, the
// leaser extends and Close releases only its own.
type heldSet struct {
	mu      sync.Mutex
	entries map[string]heldEntry
}

type heldEntry struct {
	by      *holder
	touched time.Time // when the entry's idle time was last reset
}

func newHeldSet() *heldSet { return &heldSet{entries: map[string]heldEntry{}} }

// holder is one subscription's share of a heldSet.
type holder struct{ set *heldSet }

func (s *heldSet) holder() *holder { return &holder{set: s} }

// add records entries just delivered to this consumer by Redis. It returns
// those that no subscription of the consumer held yet, now held by h.
func (h *holder) add(es []*entry) []*entry {
	now := time.Now()
	h.set.mu.Lock()
	defer h.set.mu.Unlock()
	fresh := es[:0:0]
	for _, e := range es {
		if _, ok := h.set.entries[e.id]; ok {
			continue
		}
		h.set.entries[e.id] = heldEntry{by: h, touched: now}
		fresh = append(fresh, e)
	}
	return fresh
}

// remove stops holding ids: acknowledged, released, or taken over by
// another consumer.
func (h *holder) remove(ids ...string) {
	h.set.mu.Lock()
	defer h.set.mu.Unlock()
	for _, id := range ids {
		if e, ok := h.set.entries[id]; ok && e.by == h {
			delete(h.set.entries, id)
		}
	}
}

// has reports whether h holds id.
func (h *holder) has(id string) bool {
	h.set.mu.Lock()
	defer h.set.mu.Unlock()
	e, ok := h.set.entries[id]
	return ok && e.by == h
}

// renewable returns the entries of h whose idle time was last reset more
// than age ago.
func (h *holder) renewable(age time.Duration) []string {
	now := time.Now()
	h.set.mu.Lock()
	defer h.set.mu.Unlock()
	var ids []string
	for id, e := range h.set.entries {
		if e.by == h && now.Sub(e.touched) >= age {
			ids = append(ids, id)
		}
	}
	return ids
}

// renewed records that ids had their idle time reset now, except lost,
// which are no longer pending at this consumer and are no longer held.
func (h *holder) renewed(ids, lost []string) {
	now := time.Now()
	h.set.mu.Lock()
	defer h.set.mu.Unlock()
	for _, id := range ids {
		if e, ok := h.set.entries[id]; ok && e.by == h {
			e.touched = now
			h.set.entries[id] = e
		}
	}
	for _, id := range lost {
		if e, ok := h.set.entries[id]; ok && e.by == h {
			delete(h.set.entries, id)
		}
	}
}

// all returns the entries h holds.
func (h *holder) all() []string {
	h.set.mu.Lock()
	defer h.set.mu.Unlock()
	var ids []string
	for id, e := range h.set.entries {
		if e.by == h {
			ids = append(ids, id)
		}
	}
	return ids
}
