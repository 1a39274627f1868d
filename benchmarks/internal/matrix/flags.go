package matrix

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseInts parses a comma-separated list of positive integers given to
// the flag -name.
func ParseInts(name, s string) ([]int, error) {
	var out []int
	for _, f := range SplitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s: %q is not a positive integer", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseDurations parses a comma-separated list of positive durations given
// to the flag -name.
func ParseDurations(name, s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range SplitList(s) {
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("-%s: %q is not a positive duration", name, f)
		}
		out = append(out, d)
	}
	return out, nil
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
