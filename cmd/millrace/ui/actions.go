package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
)

// actionRequest is the JSON body of every action; each uses its fields.
type actionRequest struct {
	Topic string   `json:"topic"`
	Group string   `json:"group"` // replay: only this group ("" every group)
	IDs   []string `json:"ids"`   // replay, purge: these dead letters
	All   bool     `json:"all"`   // replay, purge: every dead letter
	To    string   `json:"to"`    // reset: "0", "$" or an entry ID
	Time  string   `json:"time"`  // reset: an RFC 3339 time instead of To
	Idle  string   `json:"idle"`  // prune: a Go duration
	Force bool     `json:"force"`
	// Confirm repeats the topic's name for deleting a topic.
	Confirm string `json:"confirm"`
	Dry     bool   `json:"dryRun"`
}

// actionFunc does one action and returns the JSON answer and the log
// attributes that say what it did.
type actionFunc func(ctx context.Context, req actionRequest) (any, []any, error)

// action wraps an actionFunc with the checks of checkAction, the decoding
// of the body, the log line and a sampling round afterwards.
func (s *Server) action(f actionFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.checkAction(w, r) {
			return
		}
		var req actionRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, "invalid request: "+err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := s.ctx(r)
		defer cancel()
		res, attrs, err := f(ctx, req)
		attrs = append([]any{"action", r.URL.Path, "topic", req.Topic}, attrs...)
		attrs = append(attrs, "remote", r.RemoteAddr)
		if s.cfg.Auth.Enabled() {
			who, _ := s.cfg.Auth.who(r, s.port)
			attrs = append(attrs, "user", who)
		}
		if err != nil {
			s.log.Warn("action failed", append(attrs, "err", err)...)
			s.fail(w, err)
			return
		}
		if req.Dry {
			s.log.Debug("dry run", attrs...)
		} else {
			s.log.Info("action done", attrs...)
			s.sampler.rediscover()
			s.sampler.refresh()
		}
		s.writeJSON(w, res)
	}
}

// maxLoggedIDs caps the entry IDs one log line lists.
const maxLoggedIDs = 20

// checkIDs refuses an empty selection without All and malformed IDs.
func checkIDs(req actionRequest) error {
	if req.All && len(req.IDs) > 0 {
		return fmt.Errorf("%w: give either ids or all", errBadRequest)
	}
	if !req.All && len(req.IDs) == 0 {
		return fmt.Errorf("%w: no dead letter selected", errBadRequest)
	}
	for _, id := range req.IDs {
		if !entryid.Valid(id) {
			return fmt.Errorf("%w: invalid entry ID %q", errBadRequest, id)
		}
	}
	return nil
}

func (s *Server) replay(ctx context.Context, req actionRequest) (any, []any, error) {
	if err := checkIDs(req); err != nil {
		return nil, nil, err
	}
	res, err := s.admin.ReplayDeadLetters(ctx, req.Topic, admin.ReplayOptions{IDs: req.IDs, Group: req.Group})
	moved := make([]string, 0, len(res.Replayed))
	for _, m := range res.Replayed[:min(len(res.Replayed), maxLoggedIDs)] {
		moved = append(moved, m.DeadLetterID+"->"+m.Topic+"/"+m.NewID)
	}
	to := req.Group
	if to == "" {
		to = "every group"
	}
	attrs := []any{"all", req.All, "to_group", to, "groups", res.Groups, "replayed", len(res.Replayed), "moved", moved, "missing", res.Missing, "skipped", len(res.Skipped)}
	if err != nil {
		return nil, attrs, err
	}
	type replayed struct {
		DeadLetterID string `json:"deadLetterId"`
		UUID         string `json:"uuid"`
		Topic        string `json:"topic"`
		NewID        string `json:"newId"`
	}
	out := struct {
		Replayed []replayed                `json:"replayed"`
		Missing  []string                  `json:"missing"`
		Skipped  []admin.SkippedDeadLetter `json:"skipped"`
		Groups   []string                  `json:"groups"`
	}{Replayed: []replayed{}, Missing: append([]string{}, res.Missing...), Skipped: append([]admin.SkippedDeadLetter{}, res.Skipped...),
		Groups: append([]string{}, res.Groups...)}
	for _, m := range res.Replayed {
		out.Replayed = append(out.Replayed, replayed{m.DeadLetterID, m.UUID, m.Topic, m.NewID})
	}
	return out, attrs, nil
}

func (s *Server) purge(ctx context.Context, req actionRequest) (any, []any, error) {
	if err := checkIDs(req); err != nil {
		return nil, nil, err
	}
	n, err := s.admin.PurgeDeadLetters(ctx, req.Topic, admin.PurgeOptions{IDs: req.IDs})
	attrs := []any{"all", req.All, "ids", req.IDs[:min(len(req.IDs), maxLoggedIDs)], "deleted", n}
	return map[string]int64{"deleted": n}, attrs, err
}

// groupBefore reads group before an action changes it, for the log line:
// where it was and what it held.
func (s *Server) groupBefore(ctx context.Context, topic, group string) (admin.GroupStats, []any, error) {
	g, err := s.admin.Group(ctx, topic, group)
	if err != nil {
		return g, []any{"group", group}, err
	}
	return g, []any{"group", group, "from", g.LastDeliveredID, "lag_before", g.Lag, "pending", g.Pending}, nil
}

// resetGroup moves a group; a position beyond the stream's end is
// refused (409) unless forced.
func (s *Server) resetGroup(ctx context.Context, req actionRequest) (any, []any, error) {
	to, attrs, err := resetTarget(req)
	if err != nil {
		return nil, nil, err
	}
	mv, err := s.admin.MoveGroup(ctx, req.Topic, req.Group, to, admin.MoveOptions{Force: req.Force})
	attrs = append([]any{"group", req.Group, "from", mv.Before.LastDeliveredID, "lag_before", mv.Before.Lag, "pending", mv.Before.Pending}, attrs...)
	if req.Force {
		attrs = append(attrs, "force", true)
	}
	if err != nil {
		return nil, attrs, err
	}
	attrs = append(attrs, "now_at", mv.After.LastDeliveredID, "lag_after", mv.After.Lag)
	return map[string]string{"to": to}, attrs, nil
}

// resetTarget is the position a reset asks for: 0, $, an entry ID, or the
// ID just before a time.
func resetTarget(req actionRequest) (string, []any, error) {
	switch {
	case req.Time != "" && req.To != "":
		return "", nil, fmt.Errorf("%w: give either to or time", errBadRequest)
	case req.Time != "":
		t, err := time.Parse(time.RFC3339Nano, req.Time)
		if err != nil {
			return "", nil, fmt.Errorf("%w: time: %v", errBadRequest, err)
		}
		return entryid.Before(t), []any{"time", t.UTC().Format(time.RFC3339Nano)}, nil
	case req.To == millrace.StartOldest, req.To == millrace.StartNewest, entryid.Valid(req.To):
		return req.To, []any{"to", req.To}, nil
	}
	return "", nil, fmt.Errorf("%w: to must be 0, $ or an entry ID, got %q", errBadRequest, req.To)
}

func (s *Server) deleteGroup(ctx context.Context, req actionRequest) (any, []any, error) {
	g, attrs, err := s.groupBefore(ctx, req.Topic, req.Group)
	if err != nil {
		return nil, attrs, err
	}
	attrs = append(attrs, "consumers", len(g.Consumers))
	err = s.admin.DeleteGroup(ctx, req.Topic, req.Group)
	return map[string]bool{"deleted": err == nil}, attrs, err
}

func (s *Server) pruneGroup(ctx context.Context, req actionRequest) (any, []any, error) {
	var idle time.Duration
	if req.Idle != "" {
		var err error
		if idle, err = time.ParseDuration(req.Idle); err != nil || idle < 0 {
			return nil, nil, fmt.Errorf("%w: idle must be a duration like 1h, got %q", errBadRequest, req.Idle)
		}
	}
	res, err := s.admin.PruneConsumers(ctx, req.Topic, req.Group, admin.PruneOptions{Idle: idle, DryRun: req.Dry})
	kept := make([]consumerJSON, 0, len(res.Kept))
	names := make([]string, 0, len(res.Kept))
	for _, c := range res.Kept {
		kept = append(kept, consumerJSON{Name: c.Name, Pending: c.Pending, Idle: c.Idle.Milliseconds(), Inactive: durMS(c.Inactive)})
		names = append(names, c.Name)
	}
	removed := res.Removed
	if removed == nil {
		removed = []string{}
	}
	attrs := []any{"group", req.Group, "idle", idle, "dry_run", req.Dry, "removed", removed, "kept", names}
	return map[string]any{"removed": removed, "kept": kept, "dryRun": req.Dry}, attrs, err
}

// deleteTopic deletes a topic with everything of it; the request repeats
// the topic's name, and a topic whose groups hold pending entries is
// refused (409) unless forced.
func (s *Server) deleteTopic(ctx context.Context, req actionRequest) (any, []any, error) {
	if req.Confirm != req.Topic {
		return nil, nil, fmt.Errorf("%w: confirm must repeat the topic's name", errBadRequest)
	}
	res, err := s.admin.DeleteTopic(ctx, req.Topic, req.Force)
	groups := make([]string, 0, len(res.Groups))
	for _, g := range res.Groups {
		groups = append(groups, fmt.Sprintf("%s:%d-pending", g.Name, g.Pending))
	}
	attrs := []any{"force", req.Force, "entries", res.Entries, "dead_letters", res.DeadLetters, "delayed", res.Delayed,
		"groups", groups, "partitions", res.Partitions, "keys", len(res.Keys)}
	if err != nil {
		return nil, attrs, err
	}
	return map[string]any{"entries": res.Entries, "deadLetters": res.DeadLetters, "delayed": res.Delayed,
		"groups": len(res.Groups), "partitions": res.Partitions, "keys": len(res.Keys)}, attrs, nil
}

// pauseGroup and resumeGroup pause and resume a group: its subscribers
// stop taking new entries within a second and finish what they hold.
func (s *Server) pauseGroup(ctx context.Context, req actionRequest) (any, []any, error) {
	changed, err := s.admin.PauseGroup(ctx, req.Topic, req.Group)
	return map[string]bool{"changed": changed, "paused": true}, []any{"group", req.Group, "paused", true, "changed", changed}, err
}

func (s *Server) resumeGroup(ctx context.Context, req actionRequest) (any, []any, error) {
	changed, err := s.admin.ResumeGroup(ctx, req.Topic, req.Group)
	return map[string]bool{"changed": changed, "paused": false}, []any{"group", req.Group, "paused", false, "changed", changed}, err
}
