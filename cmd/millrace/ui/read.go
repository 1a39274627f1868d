package ui

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"
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
	LastError  string `json:"lastError,omitempty"`
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
	j.LastError = d.LastError
	return j
}

// pendingJSON is one pending entry. Idle is the time since its last
// delivery (a claim or a hand-over by Close restarts it); Age is the time
// since it was added, from its ID: how long the message has waited.
type pendingJSON struct {
	ID         string `json:"id"`
	Consumer   string `json:"consumer"`
	Idle       int64  `json:"idleMs"`
	Age        int64  `json:"ageMs"`
	Deliveries int64  `json:"deliveries"`
	LastError  string `json:"lastError,omitempty"`
}

func newPendingJSON(p admin.PendingEntry, now time.Time) pendingJSON {
	j := pendingJSON{ID: p.ID, Consumer: p.Consumer, Idle: p.Idle.Milliseconds(), Deliveries: p.Deliveries, LastError: p.LastError}
	if t, ok := entryid.Time(p.ID); ok {
		j.Age = max(now.Sub(t), 0).Milliseconds()
	}
	return j
}

func (s *Server) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("cannot write a response", "err", err)
	}
}

// fail answers an error of admin: 404 for what does not exist, 409 for
// what needs force or exists already, 400 for a bad argument, 502 for
// Redis.
func (s *Server) fail(w http.ResponseWriter, err error) {
	code := http.StatusBadGateway
	switch {
	case errors.Is(err, admin.ErrNoSuchGroup), errors.Is(err, admin.ErrNoSuchDeadLetter), errors.Is(err, admin.ErrNoSuchTopic):
		code = http.StatusNotFound
	case errors.Is(err, admin.ErrGroupExists), errors.Is(err, admin.ErrBeyondEnd), errors.Is(err, admin.ErrWouldLoseEntries):
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

// shown reports whether the console shows topic: every topic, or one of
// Config.Topics.
func (s *Server) shown(topic string) bool {
	return len(s.cfg.Topics) == 0 || slices.Contains(s.cfg.Topics, topic)
}

// topicStats returns the figures of topic from the last round; a shown
// topic the last round did not cover (created since the topics were last
// listed) is read from Redis now, and the next round lists the topics
// again. ok is false for a topic that is not shown or has neither a stream
// nor dead letters.
func (s *Server) topicStats(ctx context.Context, snap snapshot, name string) (admin.TopicStats, bool, error) {
	for _, t := range snap.stats {
		if t.Topic == name {
			return t, true, nil
		}
	}
	if name == "" || !s.shown(name) {
		return admin.TopicStats{}, false, nil
	}
	t, err := s.admin.Topic(ctx, name)
	if err != nil || (!t.Exists && t.DeadLetters == 0) {
		return admin.TopicStats{}, false, err
	}
	s.sampler.rediscover()
	s.sampler.refresh()
	return t, true, nil
}

// getTopic serves one topic's figures and its whole history, from memory
// (from Redis for a topic new since the last round).
func (s *Server) getTopic(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("topic")
	snap := s.sampler.snapshot()
	ctx, cancel := s.ctx(r)
	defer cancel()
	t, ok, err := s.topicStats(ctx, snap, name)
	if err != nil {
		s.fail(w, err)
		return
	}
	if !ok {
		http.Error(w, "no such topic: "+name, http.StatusNotFound)
		return
	}
	s.writeJSON(w, struct {
		Seq   uint64    `json:"seq"`
		At    int64     `json:"at"`
		Error string    `json:"error,omitempty"`
		Topic topicJSON `json:"topic"`
	}{snap.seq, snap.at.UnixMilli(), errText(snap.err), topicView(t, snap, snap.history, s.cfg.Thresholds, true)})
}

// getCounts reads a topic's figures from Redis now, for the dialogs: what
// they say an action will touch is what Redis holds when they open, not
// what a list or the last round showed.
func (s *Server) getCounts(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("topic")
	if !s.shown(name) {
		http.Error(w, "no such topic: "+name, http.StatusNotFound)
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	t, err := s.admin.Topic(ctx, name)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.writeJSON(w, topicView(t, snapshot{at: t.Time}, nil, s.cfg.Thresholds, false))
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
	t, _, err := s.topicStats(ctx, s.sampler.snapshot(), topic)
	if err != nil {
		s.fail(w, err)
		return
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
		now := time.Now()
		list := []pendingJSON{}
		for _, p := range pending {
			list = append(list, newPendingJSON(p, now))
		}
		out.Pending[g.Name] = list
	}
	s.writeJSON(w, out)
}

// getDeadLetters lists a page of a topic's dead letters from Redis,
// oldest first (newest with reverse=1), filtered by reason or last error
// (substring), original group and time (since, until: Unix ms), with the
// cursor of the next page and the count of all dead letters.
func (s *Server) getDeadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	dq := admin.DeadLetterQuery{After: q.Get("after"), Count: count(r, 100), Reverse: q.Get("reverse") == "1",
		Reason: q.Get("reason"), Group: q.Get("group")}
	if dq.After != "" && !entryid.Valid(dq.After) {
		http.Error(w, "invalid entry ID "+strconv.Quote(dq.After), http.StatusBadRequest)
		return
	}
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"since", &dq.Since}, {"until", &dq.Until}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			http.Error(w, b.name+" must be Unix milliseconds, got "+strconv.Quote(v), http.StatusBadRequest)
			return
		}
		*b.t = time.UnixMilli(ms)
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	page, err := s.admin.DeadLetterPage(ctx, q.Get("topic"), dq)
	if errors.Is(err, admin.ErrNoSuchTopic) {
		err = nil // no dead letters yet: an empty list
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	dls := page.DeadLetters
	t, err := s.admin.Topic(ctx, q.Get("topic"))
	if err != nil {
		s.fail(w, err)
		return
	}
	out := struct {
		DeadLetters []messageJSON `json:"deadLetters"`
		Total       int64         `json:"total"` // in Redis as the list was read
		Next        string        `json:"next"`
		Scanned     int64         `json:"scanned"`
	}{DeadLetters: []messageJSON{}, Total: t.DeadLetters, Next: page.Next, Scanned: page.Scanned}
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

// getPendingEntry reads one pending entry in full: the message, who holds
// it, how often it was delivered, its age and idle time and the handler's
// last error.
func (s *Server) getPendingEntry(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !entryid.Valid(q.Get("id")) {
		http.Error(w, "invalid entry ID "+strconv.Quote(q.Get("id")), http.StatusBadRequest)
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	d, err := s.admin.PendingEntry(ctx, q.Get("topic"), q.Get("group"), q.Get("id"))
	if errors.Is(err, admin.ErrNotPending) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	out := struct {
		messageJSON
		Idle    int64 `json:"idleMs"`
		Age     int64 `json:"ageMs"`
		Trimmed bool  `json:"trimmed"`
	}{Idle: d.Idle.Milliseconds(), Age: d.Age.Milliseconds(), Trimmed: d.Message.ID == ""}
	if !out.Trimmed {
		out.messageJSON = newMessageJSON(d.Message)
	} else {
		out.messageJSON = messageJSON{ID: d.ID, Time: d.Time.UnixMilli(), Metadata: map[string]string{}}
	}
	out.Group, out.Consumer, out.Deliveries, out.LastError = q.Get("group"), d.Consumer, d.Deliveries, d.LastError
	s.writeJSON(w, out)
}

// getReplayGroups says which groups a replay of topic's dead letters
// reaches: the one asked for, or every group of the topic.
func (s *Server) getReplayGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ctx, cancel := s.ctx(r)
	defer cancel()
	groups, err := s.admin.ReplayGroups(ctx, q.Get("topic"), admin.ReplayOptions{Group: q.Get("group")})
	if err != nil {
		s.fail(w, err)
		return
	}
	if groups == nil {
		groups = []string{}
	}
	s.writeJSON(w, map[string][]string{"groups": groups})
}

// getBrowse reads a page of a topic's entries from Redis: from an entry ID
// or a time (Unix ms), oldest first or newest first, continuing after a
// previous page's next.
func (s *Server) getBrowse(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	mq := admin.MessageQuery{Count: count(r, 20), Reverse: q.Get("reverse") == "1", After: q.Get("after")}
	if from := q.Get("from"); from != "" {
		if mq.Reverse {
			mq.End = from
		} else {
			mq.Start = from
		}
	}
	for _, b := range []string{q.Get("from"), mq.After} {
		if b != "" && !entryid.Valid(b) && !isMillis(b) {
			http.Error(w, "invalid bound "+strconv.Quote(b)+": want an entry ID like 1700000000000-0 or a time", http.StatusBadRequest)
			return
		}
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	page, err := s.admin.BrowseMessages(ctx, q.Get("topic"), mq)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := struct {
		Messages []messageJSON `json:"messages"`
		Next     string        `json:"next"`
	}{Messages: []messageJSON{}, Next: page.Next}
	for _, m := range page.Messages {
		out.Messages = append(out.Messages, newMessageJSON(m))
	}
	s.writeJSON(w, out)
}

// isMillis reports whether s is Unix milliseconds: digits only.
func isMillis(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}
