//go:build race

package transport

// raceEnabled: the race detector's sync.Pool drops a quarter of what is
// put back, by design, so pooled operations allocate now and then.
const raceEnabled = true
