//go:build unix

package main

import (
	"os"
	"syscall"
)

// flockExclusive waits for an exclusive flock(2) on f (a file or a
// directory); closing f releases it. flock locks belong to the open file,
// so two commands in one process (the tests) exclude each other as two
// processes do.
func flockExclusive(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}
