package sqlstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync flushes f's data to the disk without its metadata other than
// the size: what a WAL's appended frames need, and what SQLite itself
// calls on Linux.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
