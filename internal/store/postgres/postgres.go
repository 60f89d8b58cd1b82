// Package postgres is the scale-out store backend: several tenantbridge
// processes share one PostgreSQL database. It is sqlstore over pgx's
// database/sql driver.
package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock serialises migrations of one schema across processes. The
// lock is a transaction-level advisory lock, released by the migration
// transaction's commit or rollback, keyed by the schema so that separate
// schemas (one per test, say) migrate in parallel.
const migrationLock = `SELECT pg_advisory_xact_lock(hashtext('tenantbridge.schema_migrations:' || coalesce(current_schema(), '')))`

// Dialect returns the PostgreSQL dialect of sqlstore, with its migrations.
func Dialect() (sqlstore.Dialect, error) {
	ms, err := sqlstore.LoadMigrations(migrations, "migrations")
	if err != nil {
		return sqlstore.Dialect{}, err
	}
	return sqlstore.Dialect{
		Name:          "postgres",
		Placeholder:   sqlstore.Dollar,
		Classify:      classify,
		BindTime:      func(t time.Time) any { return t },
		MigrationLock: migrationLock,
		Migrations:    ms,
	}, nil
}

// classify maps SQLSTATEs to the violations the store reports.
func classify(err error) sqlstore.Violation {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return sqlstore.NoViolation
	}
	switch pe.Code {
	case "23505": // unique_violation
		return sqlstore.UniqueViolation
	case "23503": // foreign_key_violation
		return sqlstore.ForeignKeyViolation
	case "55P03", // lock_not_available (lock_timeout, NOWAIT)
		"40001", // serialization_failure
		"40P01": // deadlock_detected
		// https://www.postgresql.org/docs/current/errcodes-appendix.html:
		// the transaction was rolled back and may succeed if retried.
		return sqlstore.Busy
	case "57014": // query_canceled: busy only when statement_timeout
		// fired, not when the client cancelled the query.
		if strings.Contains(pe.Message, "statement timeout") {
			return sqlstore.Busy
		}
	}
	return sqlstore.NoViolation
}

// Pool limits: enough for a busy node, well under PostgreSQL's default
// max_connections (100) when a few nodes share a server.
const (
	maxConns        = 20
	maxIdleConns    = 5
	connMaxIdleTime = 5 * time.Minute
)

// Open connects to the PostgreSQL database named by dsn (a postgres:// URL
// or a keyword/value string, as pgx parses them) and brings its schema up
// to date. The schema used is the connection's search_path, which the DSN
// can set (search_path=name). The returned store is a *sqlstore.Store; it
// listens for other processes' changes (see listenForChanges) until closed.
func Open(ctx context.Context, dsn string) (store.Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // pgx redacts the password
	}
	// The pool's connections name this process, so that the change
	// listener can tell its own commits from other processes'.
	self := "tenantbridge-" + rand.Text()[:12]
	listenCfg := cfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = self
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxIdleConns)
	db.SetConnMaxIdleTime(connMaxIdleTime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect to %s:%d/%s: %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	d, err := Dialect()
	if err != nil {
		db.Close()
		return nil, err
	}
	st, err := sqlstore.New(ctx, db, d)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	// Other processes write this database: hear their commits (migration
	// 0006's notifications), and until then serve nothing from caches.
	st.SetHearing(false)
	lctx, stop := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		listenForChanges(lctx, listenCfg, self, st, ready)
	}()
	st.AddCloser(func() { stop(); <-done })
	select {
	case <-ready:
	case <-ctx.Done():
	}
	return st, nil
}
