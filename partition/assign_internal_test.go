package partition

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/membership"
)

func mem(name string, leaving bool, owned ...int) membership.Member {
	return membership.Member{Name: name, Record: membership.Record{Owned: owned, Leaving: leaving}}
}

// targets computes every member's target from one view.
func targets(n int, members []membership.Member) map[string][]int {
	out := map[string][]int{}
	for _, m := range members {
		if !m.Leaving {
			out[m.Name] = assign(m.Name, n, m.Owned, members).target
		}
	}
	return out
}

func TestAssign(t *testing.T) {
	t.Parallel()
	fresh := []membership.Member{mem("a", false), mem("b", false), mem("c", false)}
	assert.Equal(t, map[string][]int{"a": {0, 1, 2, 3}, "b": {4, 5, 6, 7}, "c": {8, 9, 10, 11}}, targets(12, fresh))

	// A fourth member joins: each keeps three and gives up its highest.
	joined := []membership.Member{
		mem("a", false, 0, 1, 2, 3), mem("b", false, 4, 5, 6, 7), mem("c", false, 8, 9, 10, 11), mem("d", false),
	}
	assert.Equal(t, map[string][]int{"a": {0, 1, 2}, "b": {4, 5, 6}, "c": {8, 9, 10}, "d": {3, 7, 11}}, targets(12, joined))

	// It leaves again: its partitions go back, but stay busy until it has
	// released them; once it is gone (or expired), they are free.
	leaving := []membership.Member{
		mem("a", false, 0, 1, 2), mem("b", false, 4, 5, 6), mem("c", false, 8, 9, 10), mem("d", true, 3, 7, 11),
	}
	assert.Equal(t, map[string][]int{"a": {0, 1, 2, 3}, "b": {4, 5, 6, 7}, "c": {8, 9, 10, 11}}, targets(12, leaving))
	a := assign("a", 12, []int{0, 1, 2}, leaving)
	assert.True(t, a.busy[3])
	assert.False(t, a.busy[0], "its own partitions are not busy")
	assert.Equal(t, 3, a.members)
	gone := leaving[:3]
	assert.Empty(t, assign("a", 12, []int{0, 1, 2}, gone).busy[3])

	// Uneven: the members owning the most keep the extra partitions.
	uneven := []membership.Member{mem("a", false, 0), mem("b", false, 1, 2, 3, 4, 5), mem("c", false, 6)}
	assert.Equal(t, map[string][]int{"a": {0, 4}, "b": {1, 2, 3}, "c": {5, 6}}, targets(7, uneven))

	// More members than partitions: the owners keep theirs, the rest wait.
	many := []membership.Member{mem("a", false), mem("b", false, 1), mem("c", false)}
	assert.Equal(t, map[string][]int{"a": {0}, "b": {1}, "c": nil}, targets(2, many))

	// A partition two members report is kept by neither, and busy until
	// both have released it.
	double := []membership.Member{mem("a", false, 0), mem("b", false, 0)}
	assert.Equal(t, map[string][]int{"a": {0}, "b": {1}}, targets(2, double))
	assert.True(t, assign("a", 2, []int{0}, double).busy[0], "a waits for b to release it")
	assert.True(t, assign("a", 2, []int{0}, double).contested[0], "and releases it itself")
	contested := []membership.Member{mem("a", false, 0, 1), mem("b", false, 1, 2, 3)}
	got := targets(4, contested)
	assert.Equal(t, map[string][]int{"a": {0, 1}, "b": {2, 3}}, got, "1 is released by both, then taken by a")

	// Self missing from the view (its first beat failed): counted anyway.
	assert.Equal(t, []int{1}, assign("b", 2, nil, []membership.Member{mem("a", false, 0)}).target)
	assert.Empty(t, assign("a", 2, nil, []membership.Member{mem("a", true)}).target, "nobody active")
}

// From any view, the members' targets cover every partition once, are even
// (sizes differ by at most one), and a member keeps what it owns up to its
// share.
func TestAssign_Properties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + rng.IntN(16)
		count := 1 + rng.IntN(6)
		var members []membership.Member
		for i := range count {
			members = append(members, mem("m"+strconv.Itoa(i), rng.IntN(5) == 0))
		}
		for p := range n {
			if owner := rng.IntN(count + 2); owner < count {
				members[owner].Owned = append(members[owner].Owned, p)
			}
		}
		got := targets(n, members)
		if len(got) == 0 {
			continue
		}
		seen := map[int]string{}
		minShare, maxShare := n, 0
		for name, target := range got {
			for _, p := range target {
				require.Empty(t, seen[p], "partition %d given to %s and %s: %v", p, seen[p], name, members)
				seen[p] = name
			}
			minShare, maxShare = min(minShare, len(target)), max(maxShare, len(target))
		}
		require.Len(t, seen, n, "every partition given: %v → %v", members, got)
		require.LessOrEqual(t, maxShare-minShare, 1, "even: %v", got)
		for _, m := range members {
			if m.Leaving {
				continue
			}
			kept := 0
			for _, p := range m.Owned {
				if slices.Contains(got[m.Name], p) {
					kept++
				}
			}
			require.Equal(t, min(len(m.Owned), len(got[m.Name])), kept, "sticky: %s owned %v, got %v", m.Name, m.Owned, got[m.Name])
		}
	}
}
