package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// backuper is what modernc.org/sqlite's driver connection offers for
// SQLite's online backup API (conn.NewBackup in its conn.go).
type backuper interface {
	NewBackup(dstURI string) (*sqlite.Backup, error)
}

// Backup writes a consistent copy of the SQLite database at src into dst,
// a file that must not exist yet (created 0600), and returns its size. It
// is meant for a database a running server is writing to: it never writes
// to src, and it takes no lock a server holds.
//
// The copy is made with SQLite's online backup API, all pages in one
// sqlite3_backup_step(-1) call: "If N is negative, all remaining source
// pages are copied" under one read transaction
// (https://www.sqlite.org/c3ref/backup_finish.html). In WAL mode, which the
// store uses, a read transaction sees the database as of one commit and
// neither blocks the writer nor sees its later commits ("readers do not
// block writers and a writer does not block readers"; "each reader sees a
// snapshot": https://www.sqlite.org/wal.html#concurrency and
// https://www.sqlite.org/isolation.html), so the copy holds exactly the
// transactions committed before that step began, while the server goes
// on writing.
func Backup(ctx context.Context, src, dst string) (int64, error) {
	if src == "" || dst == "" {
		return 0, errors.New("sqlite backup: empty path")
	}
	srcAbs, err := filepath.Abs(src)
	if err != nil {
		return 0, fmt.Errorf("sqlite backup: %w", err)
	}
	dstAbs, err := filepath.Abs(dst)
	if err != nil {
		return 0, fmt.Errorf("sqlite backup: %w", err)
	}
	// mode=ro below never creates a database; say plainly when there is none.
	if fi, err := os.Stat(srcAbs); err != nil {
		return 0, fmt.Errorf("sqlite backup: %w", err)
	} else if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("sqlite backup: %s is not a regular file", srcAbs)
	}
	// Create the copy ourselves, so that it is 0600 whatever the umask
	// (SQLite would create it 0644) and an existing file is never
	// overwritten. SQLite takes an empty file as an empty database.
	f, err := os.OpenFile(dstAbs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("sqlite backup: %w", err)
	}
	f.Close()
	if err := copyOnline(ctx, srcAbs, dstAbs); err != nil {
		os.Remove(dstAbs)
		os.Remove(dstAbs + "-journal")
		return 0, err
	}
	fi, err := os.Stat(dstAbs)
	if err != nil {
		return 0, fmt.Errorf("sqlite backup: %w", err)
	}
	return fi.Size(), nil
}

// copyOnline runs the backup from srcAbs into dstAbs, retrying while the
// source is busy (a reader is refused only while the WAL is being
// recovered or reset) until ctx ends.
func copyOnline(ctx context.Context, srcAbs, dstAbs string) error {
	// Read-only: the backup never changes the server's database. The
	// busy timeout covers the short moments a WAL reader must wait.
	db, err := sql.Open("sqlite", "file:"+uriPath(srcAbs)+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("sqlite backup: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite backup: open %s: %w", srcAbs, err)
	}
	defer conn.Close()
	for {
		err = conn.Raw(func(dc any) error {
			b, ok := dc.(backuper)
			if !ok {
				return fmt.Errorf("sqlite backup: the driver's connection (%T) has no backup API", dc)
			}
			bk, err := b.NewBackup("file:" + uriPath(dstAbs))
			if err != nil {
				return fmt.Errorf("sqlite backup: %w", err)
			}
			more, err := bk.Step(-1)
			ferr := bk.Finish()
			switch {
			case err != nil:
				return err
			case ferr != nil:
				return ferr
			case more:
				return errors.New("sqlite backup: pages remain after copying all of them")
			}
			return nil
		})
		if err == nil || !busy(err) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sqlite backup: %w (the database stayed busy: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("sqlite backup of %s: %w", srcAbs, err)
	}
	return nil
}

// busy reports whether err is SQLITE_BUSY or SQLITE_LOCKED, which
// sqlite3_backup_step says may be retried later.
func busy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// Check opens the SQLite database file at path without changing it and
// reports whether it is an intact tenantbridge store: PRAGMA quick_check
// answers "ok" (https://www.sqlite.org/pragma.html#pragma_quick_check) and
// it records applied migrations. It is for a file no one else has open,
// such as a backup's copy before it is put in place.
func Check(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("sqlite check: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("sqlite check: %w", err)
	}
	// immutable=1: read the file as it is, with no locks, -wal or -shm
	// (https://www.sqlite.org/uri.html#uriimmutable); nothing else has it
	// open.
	db, err := sql.Open("sqlite", "file:"+uriPath(abs)+"?mode=ro&immutable=1")
	if err != nil {
		return fmt.Errorf("sqlite check: %w", err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&result); err != nil {
		return fmt.Errorf("sqlite check: %s is not a readable SQLite database: %w", abs, err)
	}
	if result != "ok" {
		return fmt.Errorf("sqlite check: %s is damaged: %s", abs, result)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n == 0 {
		return fmt.Errorf("sqlite check: %s is an SQLite database but not a tenantbridge store (no schema migrations recorded)", abs)
	}
	return nil
}
