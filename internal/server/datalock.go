package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFileName is the file in the data directory that a running server
// holds an exclusive lock on. Two servers on one data directory would
// each issue certificates, rotate keys and own the embedded store; the
// second one is refused at start, with one line naming the first.
const lockFileName = "serve.lock"

// errDataDirInUse is the refusal of a second server on a data directory.
var errDataDirInUse = errors.New("data directory in use")

// dataDirLock is a held lock on a data directory.
type dataDirLock struct{ f *os.File }

// lockDataDir takes the data directory's lock without waiting, and writes
// the process id into the lock file for the next one's message. The
// operating system drops the lock when the process ends, however it ends.
func lockDataDir(dir string) (*dataDirLock, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf(" (process %d)", pid)
			}
		}
		return nil, fmt.Errorf("%w: another tenantbridge server%s is running on %s; stop it, or give this one another --data", errDataDirInUse, holder, dir)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataDirLock{f: f}, nil
}

// release lets the next server take the data directory.
func (l *dataDirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = unlock(l.f)
	_ = l.f.Close()
	l.f = nil
}

// LockDataDir takes the data directory's lock as a server does, for a
// command that must not change a directory a server is running on
// (tenantbridge restore); it fails as a second server would. release lets
// a server start on it again.
func LockDataDir(dir string) (release func(), err error) {
	l, err := lockDataDir(dir)
	if err != nil {
		return nil, err
	}
	return l.release, nil
}
