//go:build race

package soak

// raceEnabled: the race detector keeps memory for every goroutine ever
// started, so under it the RSS of a churning process grows by design.
const raceEnabled = true
