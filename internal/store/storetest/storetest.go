// Package storetest gives tests real, isolated stores: a fresh SQLite file
// or a fresh PostgreSQL schema per test, removed when the test ends. Tests
// of every package that persists state use it instead of mocks, and
// ForEach runs them against both backends.
//
// PostgreSQL tests need a server: set TENANTBRIDGE_TEST_POSTGRES_DSN (for
// example postgres://postgres@127.0.0.1:5432/test?sslmode=disable). Without
// it they are skipped, except under CI (CI=true), where a PostgreSQL test
// that cannot run fails: CI must never pass by skipping the scale-out
// backend.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/postgres"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlite"
)

// Environment variables read by this package.
const (
	// PostgresDSNEnv names the PostgreSQL server that tests use. Each test
	// gets a schema of its own in that database.
	PostgresDSNEnv = "TENANTBRIDGE_TEST_POSTGRES_DSN"
	// CIEnv, when true, turns a missing PostgreSQL into a failure.
	CIEnv = "CI"
)

// setupTimeout bounds connecting to the server and creating a schema, so
// that a wrong DSN fails the test promptly instead of hanging it.
const setupTimeout = 15 * time.Second

// SQLite returns a store over a new database file in t.TempDir(), closed
// when the test ends.
func SQLite(t testing.TB) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tenantbridge.db"))
	if err != nil {
		t.Fatalf("storetest: open sqlite: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("storetest: close sqlite: %v", err)
		}
	})
	return st
}

// Postgres returns a store over a new, empty schema of the database named
// by TENANTBRIDGE_TEST_POSTGRES_DSN; the schema is dropped when the test
// ends. See the package doc for when it skips.
func Postgres(t testing.TB) store.Store {
	t.Helper()
	dsn := PostgresSchemaDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("storetest: open postgres: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("storetest: close postgres: %v", err)
		}
	})
	return st
}

// PostgresSchemaDSN creates a uniquely named, empty schema and returns a
// DSN whose search_path selects it, for tests that open the database
// themselves (for example twice, to test migrations). The schema is
// dropped when the test ends, after cleanups registered later (such as
// closing the store) have run.
func PostgresSchemaDSN(t testing.TB) string {
	t.Helper()
	dsn := RequirePostgres(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("storetest: %s: %v", PostgresDSNEnv, err)
	}
	admin := stdlib.OpenDB(*cfg)
	var b [8]byte
	_, _ = rand.Read(b[:])
	// The name is ours, lower-case hex: safe to splice into DDL.
	schema := "tb_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("storetest: PostgreSQL at %s is not usable (%s is set, so this fails rather than skips): %v", cfg.Host, PostgresDSNEnv, err)
	}
	t.Cleanup(func() { dropSchema(t, admin, schema) })
	return withSearchPath(dsn, schema)
}

// RequirePostgres returns the DSN of the test server, or ends the test:
// skipped when none is configured, failed when none is configured under CI.
// A test that runs many PostgreSQL subtests calls it first to skip once.
func RequirePostgres(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresDSNEnv)
	if dsn == "" {
		if ci, _ := strconv.ParseBool(os.Getenv(CIEnv)); ci {
			t.Fatalf("storetest: %s is not set, and under CI a PostgreSQL test must run, not skip", PostgresDSNEnv)
		}
		t.Skipf("storetest: skipping PostgreSQL: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run it", PostgresDSNEnv)
	}
	return dsn
}

func dropSchema(t testing.TB, admin *sql.DB, schema string) {
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		t.Errorf("storetest: drop schema %s: %v", schema, err)
	}
}

// withSearchPath sets search_path in a URL or keyword/value DSN; pgx sends
// unknown parameters to the server as run-time settings.
func withSearchPath(dsn, schema string) string {
	if strings.Contains(dsn, "://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// ForEach runs fn as the subtests "sqlite" and "postgres", each with a
// fresh store of that backend.
func ForEach(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}
