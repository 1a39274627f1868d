//go:build race

package millrace_test

// raceEnabled reports a -race build.
const raceEnabled = true
