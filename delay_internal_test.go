package millrace

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDueTime(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	md := func(until, forDur string) message.Metadata {
		m := message.Metadata{}
		if until != "" {
			m[delay.DelayedUntilKey] = until
		}
		if forDur != "" {
			m[delay.DelayedForKey] = forDur
		}
		return m
	}
	cases := []struct {
		name    string
		md      message.Metadata
		delayed bool
		due     time.Time
		exact   bool
	}{
		{name: "no metadata", md: md("", "")},
		{name: "past", md: md("2025-01-02T03:00:00Z", "1s")},
		// delay.For(300ms) at 03:04:05.600: until is truncated to :05, in the past.
		{name: "sub-second, truncated into the past", md: md("2025-01-02T03:04:05Z", "300ms"),
			delayed: true, due: now.Add(300 * time.Millisecond), exact: true},
		// delay.For(1.5s) set at 03:04:05.500, published at .600: the true
		// due time is before 03:04:07, the end of the second :06 names.
		{name: "clamped to the named second", md: md("2025-01-02T03:04:06Z", "1.5s"),
			delayed: true, due: time.Date(2025, 1, 2, 3, 4, 6, 999_999_999, time.UTC), exact: true},
		{name: "whole seconds without a duration", md: md("2025-01-02T03:04:09Z", ""),
			delayed: true, due: time.Date(2025, 1, 2, 3, 4, 9, 0, time.UTC)},
		{name: "duration inconsistent with until", md: md("2025-01-02T04:00:00Z", "1s"),
			delayed: true, due: time.Date(2025, 1, 2, 4, 0, 0, 0, time.UTC)},
		{name: "exact until is taken as it is", md: md("2025-01-02T03:04:05.9Z", "10s"),
			delayed: true, due: time.Date(2025, 1, 2, 3, 4, 5, 900_000_000, time.UTC)},
		{name: "exact until in the past", md: md("2025-01-02T03:04:05.5Z", "300ms")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			due, exact, delayed, err := dueTime(c.md, now)
			require.NoError(t, err)
			assert.Equal(t, c.delayed, delayed)
			if !c.delayed {
				return
			}
			assert.True(t, c.due.Equal(due), "due %s, want %s", due, c.due)
			if c.exact {
				assert.Equal(t, c.due.Format(time.RFC3339Nano), exact)
				// The exact time is read back as it is, so a message that
				// is published again is not delayed again.
				again, _, delayedAgain, err := dueTime(md(exact, c.md[delay.DelayedForKey]), due)
				require.NoError(t, err)
				assert.False(t, delayedAgain, again)
			} else {
				assert.Empty(t, exact)
			}
		})
	}
	_, _, _, err := dueTime(md("soon", ""), now)
	require.Error(t, err)
}

func TestDueScore(t *testing.T) {
	assert.Equal(t, float64(1000), dueScore(time.UnixMilli(1000)))
	assert.Equal(t, float64(1001), dueScore(time.UnixMilli(1000).Add(time.Microsecond)), "rounded up: never early")
}
