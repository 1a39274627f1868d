package millrace

import (
	"sync"
	"time"
)

// heldSet is the set of entries a subscription has read from its group and
// not yet acknowledged: queued, in a handler or waiting for redelivery. The
// claimer extends their leases and skips them; at the end they are released.
type heldSet struct {
	mu      sync.Mutex
	touched map[string]time.Time // when the entry's idle time was last reset
}

func newHeldSet() *heldSet { return &heldSet{touched: map[string]time.Time{}} }

// add records entries just delivered to this consumer by Redis. It returns
// those that were not held yet.
func (h *heldSet) add(es []*entry) []*entry {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	fresh := es[:0:0]
	for _, e := range es {
		if _, ok := h.touched[e.id]; ok {
			continue
		}
		h.touched[e.id] = now
		fresh = append(fresh, e)
	}
	return fresh
}

func (h *heldSet) remove(ids ...string) {
	h.mu.Lock()
	for _, id := range ids {
		delete(h.touched, id)
	}
	h.mu.Unlock()
}

func (h *heldSet) has(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.touched[id]
	return ok
}

// renewable returns the entries whose idle time was last reset more than
// age ago.
func (h *heldSet) renewable(age time.Duration) []string {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for id, t := range h.touched {
		if now.Sub(t) >= age {
			ids = append(ids, id)
		}
	}
	return ids
}

// renewed records that ids had their idle time reset now, except lost,
// which are no longer pending at this consumer and are no longer held.
func (h *heldSet) renewed(ids, lost []string) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if _, ok := h.touched[id]; ok {
			h.touched[id] = now
		}
	}
	for _, id := range lost {
		delete(h.touched, id)
	}
}

func (h *heldSet) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.touched))
	for id := range h.touched {
		ids = append(ids, id)
	}
	return ids
}
