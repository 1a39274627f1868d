package millrace

import (
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
