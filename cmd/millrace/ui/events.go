package ui

import (
	"fmt"
	"net/http"
	"time"
)

// keepAlive is how often an idle event stream sends a comment, so that
// proxies keep it open and a closed tab is noticed.
const keepAlive = 20 * time.Second

// events is the server-sent event stream of a page: a "round" event with
// the round number after each sampling round. The page then reads the
// figures it shows (from memory); the stream itself never reads Redis.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming not supported", http.StatusInternalServerError)
		return
	}
	rounds, unsubscribe := s.sampler.subscribe()
	defer unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	fmt.Fprintf(w, "retry: 2000\nevent: round\ndata: %d\n\n", s.sampler.snapshot().seq)
	flusher.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case seq := <-rounds:
			fmt.Fprintf(w, "event: round\ndata: %d\n\n", seq)
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		}
		flusher.Flush()
	}
}
