//go:build !unix

package server

import "os"

// tryLock: without flock(2) the data directory is not locked; a second
// server on it is not detected.
func tryLock(*os.File) error { return nil }

func unlock(*os.File) error { return nil }
