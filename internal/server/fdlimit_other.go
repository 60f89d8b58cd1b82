//go:build !unix

package server

// openFileLimit is unknown here: no connection budget.
func openFileLimit() (uint64, bool) { return 0, false }
