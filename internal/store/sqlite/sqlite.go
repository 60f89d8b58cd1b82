// Package sqlite is the embedded store backend: one file, no server, the
// default for development, CI, demos and single-node deployments. It is
// sqlstore over modernc.org/sqlite, a pure-Go SQLite, so the binary needs
// no C toolchain.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect returns the SQLite dialect of sqlstore, with its migrations.
func Dialect() (sqlstore.Dialect, error) {
	ms, err := sqlstore.LoadMigrations(migrations, "migrations")
	if err != nil {
		return sqlstore.Dialect{}, err
	}
	return sqlstore.Dialect{
		Name:        "sqlite",
		Placeholder: sqlstore.QuestionMark,
		Classify:    classify,
		BindTime:    func(t time.Time) any { return sqlstore.FormatTime(t) },
		// BEGIN IMMEDIATE (see connParams) already takes the write lock.
		MigrationLock: "",
		Migrations:    ms,
	}, nil
}

// classify maps SQLite's extended result codes (which the driver turns on)
// to the violations the store reports. SQLITE_BUSY (another connection
// held the write lock past busy_timeout) and SQLITE_LOCKED (a conflict
// within the shared cache), with every extended code of theirs
// (https://www.sqlite.org/rescode.html: the primary code is the low 8
// bits), are contention: sqlstore reports them as store.ErrBusy.
func classify(err error) sqlstore.Violation {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return sqlstore.NoViolation
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return sqlstore.UniqueViolation
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlstore.ForeignKeyViolation
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return sqlstore.Busy
	}
	return sqlstore.NoViolation
}

// connParams configure every connection of the pool:
//   - busy_timeout: a writer waits up to 10 s for another's lock instead
//     of failing with SQLITE_BUSY at once;
//   - foreign_keys: off by default in SQLite, and the cascades that
//     DeleteObject and DeleteTenant rely on need it;
//   - journal_mode WAL: readers do not block the writer nor it them;
//   - synchronous FULL: a committed write survives power loss, not only a
//     crash (the design allows no lost writes);
//   - _txlock=immediate: transactions take the write lock at BEGIN, so two
//     transactions never both read and then deadlock upgrading to write,
//     which busy_timeout cannot resolve.
//
// busy_timeout is busyTimeout, which tests of contention shorten
// (SetBusyTimeoutForTest).
const connParams = "_pragma=foreign_keys(1)" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(FULL)" +
	"&_txlock=immediate"

// busyTimeout is how long a connection waits for another's write lock
// before the write fails with SQLITE_BUSY (store.ErrBusy).
var busyTimeout = 10 * time.Second

// SetBusyTimeoutForTest makes the stores opened from now on wait d
// instead of 10 s for the write lock, until restore is called: a test of
// what clients see under contention holds the lock itself and must not
// wait 10 s per write. It is for tests only; stores already open keep
// their timeout.
func SetBusyTimeoutForTest(d time.Duration) (restore func()) {
	old := busyTimeout
	busyTimeout = d
	return func() { busyTimeout = old }
}

// maxConns bounds the pool. SQLite has one writer at a time anyway; a few
// connections let WAL readers run beside it. Idle connections are kept so
// that the pragmas are not re-run per query.
const maxConns = 8

// Open opens (creating if needed, with mode 0600) the SQLite database at
// path and brings its schema up to date. The parent directory must exist.
// The returned store is a *sqlstore.Store.
func Open(ctx context.Context, path string) (store.Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		// Each pooled connection would get its own in-memory database,
		// and URIs would bypass the 0600 creation below.
		return nil, fmt.Errorf("sqlite: %q: want a file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// Create the file ourselves: SQLite would create it 0644. Its -wal and
	// -shm files take the database file's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: open database file: %w", err)
	}
	params := fmt.Sprintf("_pragma=busy_timeout(%d)&", busyTimeout.Milliseconds()) + connParams
	db, err := sql.Open("sqlite", "file:"+uriPath(abs)+"?"+params)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	d, err := Dialect()
	if err != nil {
		db.Close()
		return nil, err
	}
	st, err := sqlstore.New(ctx, db, d)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	return st, nil
}

// uriPath escapes the characters that would end or corrupt the path part
// of an SQLite file: URI.
func uriPath(p string) string {
	p = filepath.ToSlash(p)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows: file:/C:/dir/db
	}
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}
