package millrace

import (
	"cmp"
	"strconv"
	"strings"
	"time"
)

// isEntryID reports whether s is a full stream entry ID, "<ms>-<seq>".
func isEntryID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

// EntryTime is the time Redis put in an entry ID when it was added.
func EntryTime(id string) (time.Time, bool) {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(n), true
}

// minIDBefore is the smallest entry ID at or after t, for MINID trimming.
func minIDBefore(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli(), 10) + "-0"
}

// nextID is the smallest entry ID greater than id.
func nextID(id string) string {
	ms, seq, ok := parseID(id)
	if !ok {
		return "0-1"
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq+1, 10)
}

// parseID splits an entry ID; a bare "<ms>" has sequence 0.
func parseID(id string) (ms, seq uint64, ok bool) {
	m, s, found := strings.Cut(id, "-")
	ms, err1 := strconv.ParseUint(m, 10, 64)
	if !found {
		return ms, 0, err1 == nil
	}
	seq, err2 := strconv.ParseUint(s, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

// compareIDs orders entry IDs numerically; an unparsable ID sorts first.
func compareIDs(a, b string) int {
	am, as, _ := parseID(a)
	bm, bs, _ := parseID(b)
	if c := cmp.Compare(am, bm); c != 0 {
		return c
	}
	return cmp.Compare(as, bs)
}
