package ui

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
)

// messageJSON is a decoded entry: a message of a topic or a dead letter.
type messageJSON struct {
	ID       string            `json:"id"`
	Time     int64             `json:"time"`
	UUID     string            `json:"uuid"`
	Metadata map[string]string `json:"metadata"`
	// Payload is the payload as text when it is UTF-8, else
	// PayloadBase64 holds it.
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 *string `json:"payloadBase64,omitempty"`
	Foreign       bool    `json:"foreign"`
	Error         string  `json:"error,omitempty"`
	// Dead letters only.
	Topic      string `json:"topic,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Group      string `json:"group,omitempty"`
	Consumer   string `json:"consumer,omitempty"`
	OriginalID string `json:"originalId,omitempty"`
	Deliveries int64  `json:"deliveries,omitempty"`
}

func newMessageJSON(m admin.Message) messageJSON {
	j := messageJSON{ID: m.ID, Time: m.Time.UnixMilli(), UUID: m.UUID, Metadata: m.Metadata, Foreign: m.Foreign, Error: m.DecodeError}
	if j.Metadata == nil {
		j.Metadata = map[string]string{}
	}
	if utf8.Valid(m.Payload) {
		j.Payload = ptr(string(m.Payload))
	} else {
		j.PayloadBase64 = ptr(base64.StdEncoding.EncodeToString(m.Payload))
	}
	return j
}

func deadLetterJSON(d admin.DeadLetter) messageJSON {
	j := newMessageJSON(admin.Message{ID: d.ID, Time: d.Time, UUID: d.UUID, Payload: d.Payload, Metadata: d.Metadata, Foreign: d.Foreign, DecodeError: d.DecodeError})
	j.Topic, j.Reason, j.Group, j.Consumer, j.OriginalID, j.Deliveries = d.Topic, d.Reason, d.Group, d.Consumer, d.OriginalID, d.Deliveries
	return j
}

type pendingJSON struct {
	ID         string `json:"id"`
	Consumer   string `json:"consumer"`
	Idle       int64  `json:"idleMs"`
	Deliveries int64  `json:"deliveries"`
}

func (s *Server) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("cannot write a response", "err", err)
	}
}

// fail answers an error of admin: 404 for what does not exist, 400 for a
// bad argument, 502 for Redis.
func (s *Server) fail(w http.ResponseWriter, err error) {
	code := http.StatusBadGateway
	switch {
	case errors.Is(err, admin.ErrNoSuchGroup), errors.Is(err, admin.ErrNoSuchDeadLetter):
		code = http.StatusNotFound
	case errors.Is(err, admin.ErrGroupExists):
		code = http.StatusConflict
	case errors.Is(err, millrace.ErrEmptyTopic), errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	}
	http.Error(w, err.Error(), code)
}

var errBadRequest = errors.New("bad request")

func (s *Server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.Timeout)
}

// count reads a positive count parameter, def when absent, at most 1000.
func count(r *http.Request, def int64) int64 {
	n, err := strconv.ParseInt(r.URL.Query().Get("count"), 10, 64)
	if err != nil || n <= 0 {
		return def
	}
	return min(n, 1000)
}

func (s *Server) getOverview(w http.ResponseWriter, _ *http.Request) {
	s.writeJSON(w, overview(s.sampler.snapshot(), s.cfg.Interval, s.cfg.Thresholds, overviewSpan))
}

// getTopic serves one topic's figures and its whole history, from memory.
func (s *Server) getTopic(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("topic")
	snap := s.sampler.snapshot()
	for _, t := range snap.stats {
		if t.Topic == name {
			s.writeJSON(w, struct {
				Seq   uint64    `json:"seq"`
				At    int64     `json:"at"`
				Error string    `json:"error,omitempty"`
				Topic topicJSON `json:"topic"`
			}{snap.seq, snap.at.UnixMilli(), errText(snap.err), topicView(t, snap, snap.history, s.cfg.Thresholds, true)})
			return
		}
	}
	http.Error(w, "no such topic: "+name, http.StatusNotFound)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// getMessages reads a topic's newest messages and the pending entries of
// each of its groups from Redis.
func (s *Server) getMessages(w http.ResponseWriter, r *http.Request) {
	topic := r.URL.Query().Get("topic")
	ctx, cancel := s.ctx(r)
	defer cancel()
	msgs, err := s.admin.Messages(ctx, topic, count(r, 20))
	if err != nil {
		s.fail(w, err)
		return
	}
	out := struct {
		Messages []messageJSON            `json:"messages"`
		Pending  map[string][]pendingJSON `json:"pending"`
	}{Messages: []messageJSON{}, Pending: map[string][]pendingJSON{}}
	for _, m := range msgs {
		out.Messages = append(out.Messages, newMessageJSON(m))
	}
	for _, t := range s.sampler.snapshot().stats {
		if t.Topic != topic {
			continue
		}
		for _, g := range t.Groups {
			pending, err := s.admin.Pending(ctx, topic, g.Name, count(r, 20))
			if errors.Is(err, admin.ErrNoSuchGroup) {
				continue // deleted since the last round
			}
			if err != nil {
				s.fail(w, err)
				return
			}
			list := []pendingJSON{}
			for _, p := range pending {
				list = append(list, pendingJSON{ID: p.ID, Consumer: p.Consumer, Idle: p.Idle.Milliseconds(), Deliveries: p.Deliveries})
			}
			out.Pending[g.Name] = list
		}
	}
	s.writeJSON(w, out)
}

// getDeadLetters lists a topic's dead letters from Redis, oldest first.
func (s *Server) getDeadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ctx, cancel := s.ctx(r)
	defer cancel()
	dls, err := s.admin.DeadLetters(ctx, q.Get("topic"), admin.DeadLetterQuery{After: q.Get("after"), Count: count(r, 100)})
	if err != nil {
		s.fail(w, err)
		return
	}
	out := struct {
		DeadLetters []messageJSON `json:"deadLetters"`
	}{DeadLetters: []messageJSON{}}
	for _, d := range dls {
		out.DeadLetters = append(out.DeadLetters, deadLetterJSON(d))
	}
	s.writeJSON(w, out)
}

func (s *Server) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !entryid.Valid(q.Get("id")) {
		http.Error(w, "invalid entry ID "+strconv.Quote(q.Get("id")), http.StatusBadRequest)
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	d, err := s.admin.DeadLetter(ctx, q.Get("topic"), q.Get("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	s.writeJSON(w, deadLetterJSON(d))
}
