// Package entryid parses, compares and builds Redis stream entry IDs
// ("<ms>-<seq>"), for the adapter, the operator API and the CLI alike.
package entryid

import (
	"cmp"
	"strconv"
	"strings"
	"time"
)

// maxSeq is the largest sequence number of an entry ID.
const maxSeq = "18446744073709551615"

// Valid reports whether s is a full entry ID, "<ms>-<seq>".
func Valid(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

// Parse splits an entry ID; a bare "<ms>" has sequence 0.
func Parse(id string) (ms, seq uint64, ok bool) {
	m, s, found := strings.Cut(id, "-")
	ms, err1 := strconv.ParseUint(m, 10, 64)
	if !found {
		return ms, 0, err1 == nil
	}
	seq, err2 := strconv.ParseUint(s, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

// Compare orders entry IDs numerically; an unparsable ID sorts first.
func Compare(a, b string) int {
	am, as, _ := Parse(a)
	bm, bs, _ := Parse(b)
	if c := cmp.Compare(am, bm); c != 0 {
		return c
	}
	return cmp.Compare(as, bs)
}

// Time is the time Redis put in an entry ID when it added the entry.
func Time(id string) (time.Time, bool) {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(n), true
}

// MinAt is the smallest entry ID at or after t: the MINID that trims the
// entries added before t.
func MinAt(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli(), 10) + "-0"
}

// Before is the largest entry ID before t: a consumer group set there reads
// the entries added at or after t.
func Before(t time.Time) string {
	ms := t.UnixMilli()
	if ms <= 0 {
		return "0-0"
	}
	return strconv.FormatInt(ms-1, 10) + "-" + maxSeq
}

// Next is the smallest entry ID greater than id ("0-1" for an unparsable id).
func Next(id string) string {
	ms, seq, ok := Parse(id)
	if !ok {
		return "0-1"
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq+1, 10)
}
