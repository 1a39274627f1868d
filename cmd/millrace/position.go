package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/entryid"
)

// position is a place in a stream given on the command line: an entry ID,
// or a time (all entries added at or after it).
type position struct {
	id string    // "0", "$" or an entry ID; "" when t is set
	t  time.Time // set for a time
}

const positionHelp = `an entry ID (1700000000000-0), "oldest" (or 0), "newest" (or $), a time (RFC 3339,
2024-05-01T12:00:00Z, or Unix milliseconds) or a duration ago (15m, 2h, 7d)`

// parsePosition parses s; newest allows "newest"/"$".
func parsePosition(s string, now time.Time, newest bool) (position, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "oldest", "0", "0-0", "-":
		return position{id: millrace.StartOldest}, nil
	case "newest", "$":
		if !newest {
			return position{}, fmt.Errorf("%q is not allowed here", s)
		}
		return position{id: millrace.StartNewest}, nil
	}
	if entryid.Valid(s) {
		return position{id: s}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return position{t: time.UnixMilli(n)}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return position{t: t}, nil
	}
	if d, ok := parseAgo(s); ok {
		return position{t: now.Add(-d)}, nil
	}
	return position{}, fmt.Errorf("invalid position %q: want %s", s, positionHelp)
}

// parseAgo parses a Go duration or a number of days ("7d").
func parseAgo(s string) (time.Duration, bool) {
	s = strings.TrimPrefix(s, "-")
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err == nil && n >= 0 {
			return time.Duration(n * float64(24*time.Hour)), true
		}
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d >= 0
}

// minID is the first entry ID at or after the position.
func (p position) minID() string {
	if p.id == "" {
		return entryid.MinAt(p.t)
	}
	if p.id == millrace.StartOldest {
		return "0-0"
	}
	return p.id
}

func (p position) String() string {
	switch p.id {
	case "":
	case millrace.StartOldest:
		return "0 (oldest)"
	case millrace.StartNewest:
		return "$ (newest)"
	default:
		return p.id
	}
	return p.t.UTC().Format(time.RFC3339Nano)
}
