// Package sqlstore is the one implementation of store.Store over
// database/sql. The SQLite and PostgreSQL backends are this code with a
// different Dialect, so the rules of the store.Store contract (uniqueness,
// case-insensitive lookups, optimistic concurrency, cascades, transactions)
// are written once and the conformance suite proves both backends equal.
//
// # Schema conventions
//
// Case-insensitive keys (tenant name and domain, object display names and
// Names) are folded with strings.ToLower in Go and stored in *_key columns,
// rather than with SQL lower(): SQLite's lower() folds ASCII only while
// PostgreSQL's follows the collation, and the two backends must agree.
// Key columns sort bytewise (SQLite BINARY, PostgreSQL COLLATE "C") so that
// ID cursors behave the same everywhere and match Go string order.
//
// Every table that holds per-tenant state references tenants(id), directly
// or through objects, with ON DELETE CASCADE; that is what makes
// DeleteTenant remove everything under a tenant. A subsystem that adds a
// table (vault secrets, queues, ARM resources) appends a migration per
// dialect that does the same, and DeleteTenant needs no change.
//
// # Transactions
//
// Outside InTx, a multi-statement write runs in a transaction of its own;
// inside InTx, every write runs in a savepoint of the caller's transaction.
// The savepoint is what lets a
// caller recover from ErrConflict inside a transaction on PostgreSQL, which
// otherwise aborts the whole transaction on the first failed statement;
// SQLite behaves the same way for free, and the savepoint keeps the two
// equal. Inside an InTx callback, use the Store passed to it, not the outer one: on
// SQLite the transaction holds the database's write lock, so a write
// through the outer Store waits for it (up to busy_timeout) and then fails.
//
// # Extending
//
// A subsystem that persists state (vault secrets, queues, ARM resources)
// adds the next NNNN_name.sql to both sqlite/migrations and
// postgres/migrations, with the same number and name (a test in backends
// checks), and implements its store interface as methods of *Store in a
// new file here, using read and write like the directory methods do. Both
// backends then get it at once, and migrations apply on the next Open.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Store implements store.Store over a *sql.DB and a Dialect.
type Store struct {
	db    *sql.DB
	d     *Dialect
	stmts *stmtCache
	// clock counts the writes that can make a cached read stale; shared
	// with the transaction Stores derived from this one.
	clock *changeClock
	// tx is set on the Store handed to an InTx callback; nil otherwise.
	tx *txState

	closersMu sync.Mutex
	closers   []func()

	// queueWriter runs the queue batches of a SQLite store (queue.go).
	queueWriter *queueWriter
	// wakes holds the function told of other processes' queue wake-ups
	// (store.QueueWakeFeed, queuewake.go).
	wakes *wakeFeed
}

var _ store.Store = (*Store)(nil)

// txState is the transaction shared by a Store handed to InTx and every
// Store derived from it by nested InTx calls.
type txState struct {
	// mu serialises use of the one connection that a transaction is:
	// drivers do not allow two statements on it at once, and the store
	// promises that every method is safe for concurrent use.
	mu   sync.Mutex
	tx   *sql.Tx
	next int // numbers savepoints so that nested ones never collide
	// changes is what the transaction's writes changed, which the clock
	// moves for once it commits; guarded by mu.
	changes changes
}

// New returns a Store over db, first bringing the schema up to date with
// d.Migrations. The Store owns db from then on: Close closes it. On error
// db is left open for the caller to close.
func New(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	s := &Store{db: db, d: &d, clock: &changeClock{}, queueWriter: &queueWriter{}, wakes: &wakeFeed{}}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	s.stmts = newStmtCache(db, s.d) // after migrating: statements are planned against the final schema
	return s, nil
}

// DB returns the underlying pool, for backend-specific tests and tools.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database. On a Store handed to InTx it does nothing:
// the transaction ends when the callback returns.
func (s *Store) Close() error {
	if s.tx != nil {
		return nil
	}
	s.closersMu.Lock()
	closers := s.closers
	s.closers = nil
	s.closersMu.Unlock()
	for _, fn := range closers {
		fn()
	}
	s.queueWriter.close()
	if s.stmts != nil {
		s.stmts.close()
	}
	return s.db.Close()
}

// InTx implements store.Store. A nested call runs fn in a savepoint of the
// same transaction: if fn fails, its own writes are undone and the error is
// returned unchanged, and the outer transaction stays usable; nothing is
// committed until the outermost fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(tx store.Store) error) (err error) {
	if s.tx != nil {
		return s.tx.nested(ctx, s.d, func() error { return fn(s) })
	}
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.txFail("begin transaction", err)
	}
	committed := false
	defer func() {
		// Also reached when fn panics: the transaction must not stay open
		// holding locks (SQLite's write lock above all).
		if !committed {
			_ = sqlTx.Rollback()
		}
	}()
	txs := &Store{db: s.db, d: s.d, stmts: s.stmts, clock: s.clock, tx: &txState{tx: sqlTx}}
	if err := fn(txs); err != nil {
		return err
	}
	txs.tx.mu.Lock()
	defer txs.tx.mu.Unlock()
	// The generation moves after the commit, never before: a reader that
	// loads between the two labels the new data with the old generation,
	// which is merely conservative; the other order could cache old data
	// under the new generation. A transaction whose writes named the
	// parts they changed moves those; any other (one with a write that
	// could not name them, or with none through write) moves every part.
	defer s.clock.commit(&txs.tx.changes)
	if err := sqlTx.Commit(); err != nil {
		return s.txFail("commit", err)
	}
	committed = true
	return nil
}

// nested runs fn inside a savepoint. The lock is held only around the
// savepoint statements, because fn itself calls the store's methods.
func (t *txState) nested(ctx context.Context, d *Dialect, fn func() error) error {
	t.mu.Lock()
	name, err := t.savepoint(ctx, d)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	ferr := fn()
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.release(ctx, d, name, ferr != nil); err != nil {
		if ferr != nil {
			return errors.Join(ferr, err)
		}
		return err
	}
	return ferr
}

// savepoint opens a new savepoint; t.mu must be held.
func (t *txState) savepoint(ctx context.Context, d *Dialect) (string, error) {
	t.next++
	name := fmt.Sprintf("tb_sp_%d", t.next)
	if _, err := t.tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return "", fmt.Errorf("sqlstore: %s: savepoint: %w", d.Name, err)
	}
	return name, nil
}

// release ends a savepoint, first undoing its writes if rollback is set;
// t.mu must be held.
func (t *txState) release(ctx context.Context, d *Dialect, name string, rollback bool) error {
	if rollback {
		if _, err := t.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name); err != nil {
			return fmt.Errorf("sqlstore: %s: rollback to savepoint: %w", d.Name, err)
		}
	}
	if _, err := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return fmt.Errorf("sqlstore: %s: release savepoint: %w", d.Name, err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// runner runs the shared "?" queries on a pool or transaction in the
// dialect's placeholder style. On the pool it uses prepared statements.
type runner struct {
	q     querier
	d     *Dialect
	stmts *stmtCache // nil: run unprepared
}

// prepared returns the cached statement for query, or nil to run the query
// unprepared.
func (r runner) prepared(ctx context.Context, query string) *sql.Stmt {
	if r.stmts == nil {
		return nil
	}
	return r.stmts.get(ctx, query)
}

func (r runner) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := r.prepared(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return r.q.ExecContext(ctx, r.d.rebind(query), args...)
}

func (r runner) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.prepared(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.q.QueryContext(ctx, r.d.rebind(query), args...)
}

func (r runner) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := r.prepared(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.q.QueryRowContext(ctx, r.d.rebind(query), args...)
}

// read runs fn on the pool, or on the caller's transaction.
func (s *Store) read(fn func(r runner) error) error {
	if s.tx == nil {
		return fn(s.poolRunner())
	}
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	return fn(s.txRunner(s.tx.tx))
}

// write runs fn so that it either takes full effect or none. A single
// statement is atomic by itself and runs straight on the pool; several
// (multi) get a transaction of their own. Inside InTx, fn always runs in a
// savepoint, so that a failure undoes just fn and leaves the caller's
// transaction usable on every backend. Outside InTx the generation moves
// once fn's effect is committed (inside, when the transaction commits).
// A write through write may have changed anything: it moves every part's
// generation (store.Store.PartGeneration); see writeParts.
func (s *Store) write(ctx context.Context, multi bool, fn func(r runner) error) error {
	return s.writeParts(ctx, multi, func(r runner, ch *changes) error {
		ch.everything()
		return fn(r)
	})
}

// writeParts is write for a write that names, in ch and before it runs a
// statement, every part (tenant, subscription) whose rows it may change,
// cascades included, so that only those parts' generations move. A write
// that names none moves every part. Name a part by what selects the rows
// (the tenant_id the statement matches or inserts), never by what the
// caller claims they hold: a wrong name here lets a cache serve what a
// committed write changed.
func (s *Store) writeParts(ctx context.Context, multi bool, fn func(r runner, ch *changes) error) error {
	var ch changes
	if s.tx == nil {
		defer s.clock.commit(&ch)
	} else {
		defer func() {
			s.tx.mu.Lock()
			s.tx.changes.add(&ch)
			s.tx.mu.Unlock()
		}()
	}
	return s.appendLog(ctx, multi, func(r runner) error { return fn(r, &ch) })
}

// appendLog is write for the append-only logs that nothing caches (the
// audit log, one-time-use keys): their writes leave the generation alone,
// so that the steady stream of them does not empty every cache.
func (s *Store) appendLog(ctx context.Context, multi bool, fn func(r runner) error) error {
	if s.tx != nil {
		s.tx.mu.Lock()
		defer s.tx.mu.Unlock()
		name, err := s.tx.savepoint(ctx, s.d)
		if err != nil {
			return err
		}
		ferr := fn(s.txRunner(s.tx.tx))
		if err := s.tx.release(ctx, s.d, name, ferr != nil); err != nil {
			if ferr != nil {
				return errors.Join(ferr, err)
			}
			return err
		}
		return ferr
	}
	if !multi {
		return fn(s.poolRunner())
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.txFail("begin transaction", err)
	}
	if err := fn(s.txRunner(tx)); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.txFail("commit", err)
	}
	return nil
}

func (s *Store) poolRunner() runner { return runner{q: s.db, d: s.d, stmts: s.stmts} }

// txRunner runs unprepared. Binding the cached statements to transactions
// (Tx.StmtContext) left SQLite's write lock held under concurrent writers
// (SQLITE_BUSY after busy_timeout in TestConcurrentUpdatesLoseNothing), and
// the hot paths that preparing pays for are reads on the pool.
func (s *Store) txRunner(tx *sql.Tx) runner { return runner{q: tx, d: s.d} }

// fail wraps err with the operation that failed, turning the driver's
// constraint violations and sql.ErrNoRows into the store's sentinel errors
// so that errors.Is works the same on every backend. The driver's error
// stays in the chain for logs.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrPrecondition) || errors.Is(err, store.ErrBusy) {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrNotFound)
	}
	switch s.d.Classify(err) {
	case UniqueViolation:
		return fmt.Errorf("sqlstore: %s: %w: %w", op, store.ErrConflict, err)
	case ForeignKeyViolation:
		return fmt.Errorf("sqlstore: %s: %w (a referenced record does not exist): %w", op, store.ErrNotFound, err)
	case Busy:
		return fmt.Errorf("sqlstore: %s: %w: %w", op, store.ErrBusy, err)
	}
	return fmt.Errorf("sqlstore: %s: %s: %w", op, s.d.Name, err)
}

// txFail wraps an error of BEGIN or COMMIT, which do not go through fail:
// lock contention there (SQLite's BEGIN IMMEDIATE waits for the write
// lock; a commit can wait for it too) is store.ErrBusy like anywhere
// else, so that the surfaces answer it as a retriable "busy" and not as
// an internal error. The queue batches (queue.go) can use it too.
func (s *Store) txFail(op string, err error) error {
	if s.d.Classify(err) == Busy && !errors.Is(err, store.ErrBusy) {
		return fmt.Errorf("sqlstore: %s: %s: %w: %w", op, s.d.Name, store.ErrBusy, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// mustAffect turns "no row matched" into ErrNotFound for updates and
// deletes, which report it only through the affected row count.
func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// timeLayout is how timestamps are written where the column is text
// (SQLite): fixed width, so text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTime renders t as the store writes timestamps into text columns.
// Dialects whose timestamp columns are text use it as their BindTime.
func FormatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// normTime is the one place timestamps are normalised before they are
// written: UTC, truncated to the microsecond, which every backend keeps
// exactly (PostgreSQL's timestamptz has microsecond resolution).
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// bindTime normalises t, using now when t is zero, and converts it for the
// driver.
func (s *Store) bindTime(t, now time.Time) any {
	if t.IsZero() {
		t = now
	}
	return s.d.BindTime(normTime(t))
}

// now is the store's clock, already normalised.
func now() time.Time { return normTime(time.Now()) }

// timeCol scans a timestamp column whichever way the driver returns it.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*c.t = v.UTC()
		return nil
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	}
	return fmt.Errorf("sqlstore: cannot read a timestamp from %T", src)
}

func (c timeCol) parse(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("sqlstore: bad timestamp %q: %w", v, err)
	}
	*c.t = t.UTC()
	return nil
}

// fold is the case-insensitive key of a name, domain or display name.
func fold(s string) string { return strings.ToLower(s) }

// textOK reports whether every field is text that all backends can hold.
// PostgreSQL refuses NUL and invalid UTF-8 where SQLite stores them, so the
// store screens input first and both backends behave the same on hostile
// input: writes of such text fail plainly (checkText), and lookups by it
// find nothing, because nothing can have been stored under it.
func textOK(fields ...string) bool {
	for _, f := range fields {
		if !utf8.ValidString(f) || strings.IndexByte(f, 0) >= 0 {
			return false
		}
	}
	return true
}

// checkText rejects a write of text that textOK refuses.
func checkText(op string, fields ...string) error {
	if !textOK(fields...) {
		return fmt.Errorf("sqlstore: %s: text is not valid UTF-8 or contains NUL", op)
	}
	return nil
}

// notFound is the error of a lookup by a key that cannot exist.
func notFound(op string) error { return fmt.Errorf("sqlstore: %s: %w", op, store.ErrNotFound) }

// required rejects empty keys, which are always a caller's bug.
func required(op string, fields ...[2]string) error {
	for _, f := range fields {
		if f[1] == "" {
			return fmt.Errorf("sqlstore: %s: %s is required", op, f[0])
		}
	}
	return nil
}

// anys converts string arguments for the variadic query methods.
func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
