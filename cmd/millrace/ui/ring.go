package ui

// ring keeps the last cap values pushed, oldest first: the history behind
// the charts, bounded whatever the uptime.
type ring[T any] struct {
	buf   []T
	start int // index of the oldest value
	n     int // values held
}

func newRing[T any](capacity int) *ring[T] {
	return &ring[T]{buf: make([]T, max(capacity, 1))}
}

// push adds v, dropping the oldest value when full.
func (r *ring[T]) push(v T) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = v
		r.n++
		return
	}
	r.buf[r.start] = v
	r.start = (r.start + 1) % len(r.buf)
}

// values returns the values held, oldest first, in a new slice.
func (r *ring[T]) values() []T {
	out := make([]T, r.n)
	for k := range out {
		out[k] = r.buf[(r.start+k)%len(r.buf)]
	}
	return out
}
