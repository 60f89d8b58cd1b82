//go:build race

package servicebus

// raceEnabled: the race detector's instrumentation makes stacks larger,
// so the tests that measure them only log under it.
const raceEnabled = true
