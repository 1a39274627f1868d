package partition_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// handling is one handling of a message of a key, as a member recorded it
// before its Ack.
type handling struct {
	seq    int
	member string
}

// checkOrder reads every key's handled sequence, in the order the handlings
// happened, and checks it against per-key order with at-least-once
// delivery:
//
//  1. every published message of the key was handled;
//  2. a message is handled only after every earlier message of its key was
//     handled at least once: the first handlings come in publish order
//     (seq 0, 1, 2, ...), i.e. each seq is at most one above every seq
//     handled before it;
//  3. a message handled again (a redelivery) had been handled by a member
//     that was SIGKILLed later: its acknowledgement died with it. Members
//     that leave with Close acknowledge what they handled before they hand
//     a partition over, so nothing else is handled twice.
func (r *orderRun) checkOrder(perKey map[string]int) {
	t := r.t
	keys := make([]string, 0, len(perKey))
	for k := range perKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	pipe := r.client.Pipeline()
	lists := make([]*redis.StringSliceCmd, len(keys))
	for i, k := range keys {
		lists[i] = pipe.LRange(context.Background(), r.record+k, 0, -1)
	}
	_, err := pipe.Exec(context.Background())
	require.NoError(t, err)

	var violations []string
	total, again, keysAgain := 0, 0, 0
	for i, key := range keys {
		hs := parseHandlings(lists[i].Val())
		total += len(hs)
		v, repeats := verifyKey(key, perKey[key], hs, r.killed)
		violations = append(violations, v...)
		again += repeats
		if repeats > 0 {
			keysAgain++
		}
	}
	t.Logf("%d handlings of %d messages over %d keys: %d redeliveries after a SIGKILL, on %d keys",
		total, total-again, len(keys), again, keysAgain)
	if len(violations) > 0 {
		t.Errorf("%d violations of per-key order; the first:\n  %s", len(violations),
			strings.Join(violations[:min(len(violations), 20)], "\n  "))
	}
}

func parseHandlings(raw []string) []handling {
	hs := make([]handling, 0, len(raw))
	for _, line := range raw {
		seq, member, _ := strings.Cut(line, " ")
		n, err := strconv.Atoi(seq)
		if err != nil {
			n = -1
		}
		hs = append(hs, handling{seq: n, member: member})
	}
	return hs
}

// verifyKey checks the handlings hs of key, which got published messages,
// against the rules of checkOrder; it returns what breaks them and how
// many handlings were redeliveries.
func verifyKey(key string, published int, hs []handling, killed map[string]bool) (violations []string, repeats int) {
	top := -1                         // the highest seq handled so far
	by := make([][]string, published) // who handled each seq so far
	for j, h := range hs {
		switch {
		case h.seq < 0 || h.seq >= published:
			violations = append(violations, fmt.Sprintf("%s: handling %d is of seq %d, never published", key, j, h.seq))
			continue
		case h.seq > top+1:
			violations = append(violations, fmt.Sprintf("%s: handling %d is of seq %d by %s before seq %d was ever handled", key, j, h.seq, h.member, top+1))
		case len(by[h.seq]) > 0:
			repeats++
			if !slices.ContainsFunc(by[h.seq], func(m string) bool { return killed[m] }) {
				violations = append(violations, fmt.Sprintf("%s: seq %d handled again by %s, first by %v, none of them killed", key, h.seq, h.member, by[h.seq]))
			}
		}
		top = max(top, h.seq)
		by[h.seq] = append(by[h.seq], h.member)
	}
	for seq, members := range by {
		if len(members) == 0 {
			violations = append(violations, fmt.Sprintf("%s: seq %d never handled", key, seq))
		}
	}
	return violations, repeats
}

// The checker accepts redeliveries after a kill and rejects everything
// else: a skip, a repeat without a kill, a loss, a stranger.
func TestVerifyKey(t *testing.T) {
	t.Parallel()
	hs := func(pairs ...string) []handling {
		var out []handling
		for _, p := range pairs {
			out = append(out, parseHandlings([]string{p})...)
		}
		return out
	}
	killed := map[string]bool{"dead": true}
	v, repeats := verifyKey("k", 4, hs("0 a", "1 dead", "2 dead", "1 b", "2 b", "3 b"), killed)
	assert.Empty(t, v)
	assert.Equal(t, 2, repeats)
	v, _ = verifyKey("k", 3, hs("0 a", "2 a", "1 a"), killed)
	assert.Len(t, v, 1, "2 before 1")
	v, _ = verifyKey("k", 2, hs("0 a", "1 a", "1 b"), killed)
	assert.Len(t, v, 1, "a repeat without a kill")
	v, _ = verifyKey("k", 3, hs("0 a", "1 a"), killed)
	assert.Equal(t, []string{"k: seq 2 never handled"}, v)
	v, _ = verifyKey("k", 1, hs("0 a", "5 a", "x a"), killed)
	assert.Len(t, v, 2, "seqs never published")
}
