//go:build !unix

package main

import "os"

// flockExclusive does nothing where there is no flock(2): concurrent
// commands there may still lose each other's profile changes.
func flockExclusive(*os.File) error { return nil }
