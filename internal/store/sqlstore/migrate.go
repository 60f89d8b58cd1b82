package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// migrate brings the schema up to date in one transaction. The dialect's
// MigrationLock (or SQLite's BEGIN IMMEDIATE) makes a second process that
// opens the same database at the same time wait, and then find nothing left
// to do. Each applied migration is recorded in schema_migrations, so
// reopening is idempotent.
func (s *Store) migrate(ctx context.Context) (err error) {
	fail := func(what string, err error) error {
		return fmt.Errorf("sqlstore: %s: migrate: %s: %w", s.d.Name, what, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail("begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	r := runner{q: tx, d: s.d} // unprepared: the schema is changing
	if s.d.MigrationLock != "" {
		if _, err := tx.ExecContext(ctx, s.d.MigrationLock); err != nil {
			return fail("lock", err)
		}
	}
	// Portable DDL: the bookkeeping table is the same on every backend.
	if _, err := r.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version BIGINT NOT NULL PRIMARY KEY,
	name    TEXT NOT NULL,
	applied TEXT NOT NULL
)`); err != nil {
		return fail("create schema_migrations", err)
	}
	applied, err := appliedMigrations(ctx, r)
	if err != nil {
		return fail("read schema_migrations", err)
	}
	for v, name := range applied {
		if v < 1 || v > len(s.d.Migrations) {
			return fail("check", fmt.Errorf("database has migration %d (%s) that this build does not know (it knows 1..%d): it was written by a newer tenantbridge", v, name, len(s.d.Migrations)))
		}
		if want := s.d.Migrations[v-1].Name; name != want {
			return fail("check", fmt.Errorf("database has migration %d named %q, this build calls it %q: the schema histories diverged", v, name, want))
		}
	}
	for _, m := range s.d.Migrations {
		if _, ok := applied[m.Version]; ok {
			continue
		}
		// Run verbatim, not rebound: migration SQL may contain a literal
		// "?" (a comment, PostgreSQL's jsonb ? operator).
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fail(fmt.Sprintf("apply %d (%s)", m.Version, m.Name), err)
		}
		if _, err := r.exec(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
			m.Version, m.Name, FormatTime(time.Now())); err != nil {
			return fail(fmt.Sprintf("record %d (%s)", m.Version, m.Name), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail("commit", err)
	}
	return nil
}

// appliedMigrations returns the recorded migrations by version.
func appliedMigrations(ctx context.Context, r runner) (map[int]string, error) {
	rows, err := r.query(ctx, `SELECT version, name FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := map[int]string{}
	for rows.Next() {
		var v int64
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return nil, err
		}
		applied[int(v)] = name
	}
	return applied, rows.Err()
}
