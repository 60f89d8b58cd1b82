//go:build !unix

package bench

// openFileLimit is not known on this platform.
func openFileLimit() (uint64, bool) { return 0, false }
