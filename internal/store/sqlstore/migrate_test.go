package sqlstore_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/tenantbridge/tenantbridge/internal/store/sqlite"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlstore"
)

// open opens a raw SQLite pool; the schema-history guards are the same
// code for every dialect.
func open(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_txlock=immediate&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrationHistoryGuards(t *testing.T) {
	ctx := t.Context()
	d, err := sqlite.Dialect()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.db")
	if _, err := sqlstore.New(ctx, open(t, path), d); err != nil {
		t.Fatal(err)
	}

	// A later migration is applied on the next open, once.
	next := d
	next.Migrations = append(append([]sqlstore.Migration(nil), d.Migrations...),
		sqlstore.Migration{Version: len(d.Migrations) + 1, Name: "guard_probe", SQL: "CREATE TABLE migration_guard_probe (id TEXT PRIMARY KEY); -- a ? in a comment"})
	for range 2 {
		if _, err := sqlstore.New(ctx, open(t, path), next); err != nil {
			t.Fatalf("apply appended migration: %v", err)
		}
	}
	var n int
	if err := open(t, path).QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(next.Migrations) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(next.Migrations))
	}

	// An older build refuses a database migrated by a newer one.
	if _, err := sqlstore.New(ctx, open(t, path), d); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("older build opening a newer database: %v", err)
	}
	// A build whose history diverged refuses too.
	diverged := next
	diverged.Migrations = append([]sqlstore.Migration(nil), next.Migrations...)
	diverged.Migrations[len(diverged.Migrations)-1].Name = "queues"
	if _, err := sqlstore.New(ctx, open(t, path), diverged); err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Errorf("diverged history: %v", err)
	}
	// A failing migration leaves nothing half-applied.
	broken := next
	broken.Migrations = append(append([]sqlstore.Migration(nil), next.Migrations...),
		sqlstore.Migration{Version: len(next.Migrations) + 1, Name: "broken", SQL: "CREATE TABLE ok_table (x INT); THIS IS NOT SQL;"})
	if _, err := sqlstore.New(ctx, open(t, path), broken); err == nil {
		t.Fatal("broken migration applied")
	}
	if err := open(t, path).QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'ok_table'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("half of a failed migration was kept (%d, %v)", n, err)
	}
}
