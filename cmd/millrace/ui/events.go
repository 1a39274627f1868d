package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// keepAlive is how often an idle event stream sends a comment, so that
// proxies keep it open and a closed tab is noticed.
const keepAlive = 20 * time.Second

// roundEvent is the data of a "round" event: the round number and, while
// the rounds fail, since when and why (the page's header says so instead
// of "live").
type roundEvent struct {
	Seq       uint64 `json:"seq"`
	DownSince int64  `json:"downSince,omitempty"` // Unix ms
	Error     string `json:"error,omitempty"`
}

func (s *Server) roundData() string {
	snap := s.sampler.snapshot()
	ev := roundEvent{Seq: snap.seq, Error: errText(snap.err)}
	if !snap.downSince.IsZero() {
		ev.DownSince = snap.downSince.UnixMilli()
	}
	b, _ := json.Marshal(ev) // cannot fail
	return string(b)
}

// events is the server-sent event stream of a page: a "round" event
// (roundEvent) after each sampling round. The page then reads the figures
// it shows (from memory); the stream itself never reads Redis.
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
	fmt.Fprintf(w, "retry: 2000\nevent: round\ndata: %s\n\n", s.roundData())
	flusher.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-rounds:
			fmt.Fprintf(w, "event: round\ndata: %s\n\n", s.roundData())
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		}
		flusher.Flush()
	}
}
