package partition

import (
	"slices"
	"strings"

	"github.com/millrace/millrace/internal/membership"
)

// assignment is the share of the n partitions of a topic one member should
// own, computed from a view of the group that every member computes alike.
type assignment struct {
	// target is every partition the member should own, ascending.
	target []int
	// busy are partitions other members report owning: the member takes
	// one of its target only once its owner has released it.
	busy map[int]bool
	// contested are partitions two members report: each releases it.
	contested map[int]bool
	// members counts the members sharing the partitions (not leaving).
	members int
}

// assign shares n partitions among the members of a view that are not
// leaving, evenly and moving as few as possible:
//
//   - each of the M members gets n/M partitions, and the n%M members that
//     own the most (ties: by name) one more;
//   - a member keeps what it owns up to its share (its lowest partitions),
//     and releases the rest;
//   - the partitions nobody keeps (free, released, owned by members that
//     left, expired or are leaving) go, in ascending order, to the members
//     below their share, in name order.
//
// A partition reported by two members (one of them lost its lease while
// it could not reach Redis, and has not noticed yet) is kept by neither:
// both release it, and it is taken afresh, pending entries first. Self is
// added to the members if the view lacks it.
func assign(self string, n int, own []int, members []membership.Member) assignment {
	members = withSelf(self, own, members)
	owner := make(map[int]string, n)
	contested := map[int]bool{}
	for _, m := range members {
		for _, p := range m.Owned {
			if p < 0 || p >= n {
				continue
			}
			if _, taken := owner[p]; taken {
				contested[p] = true
			}
			owner[p] = m.Name
		}
	}
	a := assignment{busy: map[int]bool{}, contested: contested}
	for p, name := range owner {
		if name != self || contested[p] {
			a.busy[p] = true
		}
	}
	var active []string
	held := map[string][]int{}
	for _, m := range members {
		if !m.Leaving {
			active = append(active, m.Name)
		}
	}
	if len(active) == 0 {
		return a
	}
	a.members = len(active)
	for p := range n {
		if name, ok := owner[p]; ok && !contested[p] {
			held[name] = append(held[name], p) // ascending
		}
	}

	// The members owning the most get the extra partitions.
	byHeld := slices.Clone(active)
	slices.SortStableFunc(byHeld, func(x, y string) int { return len(held[y]) - len(held[x]) })
	quota := make(map[string]int, len(active))
	for i, name := range byHeld {
		quota[name] = n / len(active)
		if i < n%len(active) {
			quota[name]++
		}
	}

	kept := make(map[int]bool, n)
	share := make(map[string][]int, len(active))
	for _, name := range active {
		keep := held[name][:min(len(held[name]), quota[name])]
		share[name] = slices.Clone(keep)
		for _, p := range keep {
			kept[p] = true
		}
	}
	next := 0
	for _, name := range active {
		for len(share[name]) < quota[name] {
			for kept[next] {
				next++
			}
			share[name] = append(share[name], next)
			kept[next] = true
		}
	}
	a.target = share[self]
	slices.Sort(a.target)
	return a
}

// withSelf returns members with self in them, sorted by name.
func withSelf(self string, own []int, members []membership.Member) []membership.Member {
	for _, m := range members {
		if m.Name == self {
			return members
		}
	}
	members = append(slices.Clone(members), membership.Member{Name: self, Record: membership.Record{Owned: own}})
	slices.SortFunc(members, func(x, y membership.Member) int { return strings.Compare(x.Name, y.Name) })
	return members
}
