package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/conformance"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlite"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlstore"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) store.Store { return storetest.SQLite(t) })
}

func migrationCount(t *testing.T, st store.Store) int {
	t.Helper()
	var n int
	if err := st.(*sqlstore.Store).DB().QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatalf("count migrations: %v", err)
	}
	return n
}

// TestReopen: migrations run once, data survives a restart.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tb.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := sqlite.Dialect()
	if err != nil {
		t.Fatal(err)
	}
	if got := migrationCount(t, st); got != len(d.Migrations) {
		t.Errorf("%d migrations recorded, want %d", got, len(d.Migrations))
	}
	tn := store.Tenant{ID: "t1", Name: "contoso", Domain: "contoso.example"}
	if err := st.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		st, err = sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if got := migrationCount(t, st); got != len(d.Migrations) {
			t.Errorf("after reopen: %d migrations recorded, want %d", got, len(d.Migrations))
		}
		if _, err := st.GetTenant(ctx, "t1"); err != nil {
			t.Errorf("after reopen: %v", err)
		}
		st.Close()
	}
}

// TestConcurrentOpen: processes (here, pools) opening one new file at once
// migrate it once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tb.db")
	const n = 4
	stores := make([]store.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = sqlite.Open(t.Context(), path)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	d, _ := sqlite.Dialect()
	if got := migrationCount(t, stores[0]); got != len(d.Migrations) {
		t.Errorf("%d migrations recorded, want %d", got, len(d.Migrations))
	}
}

// TestFileMode: the database and its WAL hold secrets' metadata and must
// not be readable by other users.
func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tb.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(t.Context(), store.Tenant{ID: "t", Name: "t", Domain: "t.example"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "missing-dir", "tb.db")} {
		if st, err := sqlite.Open(context.Background(), p); err == nil {
			st.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

// TestOddPath: characters that mean something in a URI are part of the name.
func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c%20 d.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %q: %v", path, err)
	}
}

func BenchmarkCreateObject(b *testing.B) { conformance.BenchmarkCreateObject(b, storetest.SQLite(b)) }
func BenchmarkGetObject(b *testing.B)    { conformance.BenchmarkGetObject(b, storetest.SQLite(b)) }

// TestBusyIsErrBusy: a write that cannot get the write lock within
// busy_timeout, because another connection holds it, fails with
// store.ErrBusy (so that the surfaces answer it as retriable), whether it
// is a single statement, a multi-statement write or a transaction.
func TestBusyIsErrBusy(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tb.db")
	restore := sqlite.SetBusyTimeoutForTest(50 * time.Millisecond)
	st, err := sqlite.Open(ctx, path)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t1", Name: "a", Domain: "a.example"}); err != nil {
		t.Fatal(err)
	}

	other, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	holder, err := other.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	writes := map[string]func() error{
		"single statement": func() error {
			_, err := st.AppendAudit(ctx, store.AuditRecord{Time: time.Now(), Actor: "x", Action: "y", Result: "success"})
			return err
		},
		"transaction": func() error {
			return st.InTx(ctx, func(tx store.Store) error {
				return tx.CreateTenant(ctx, store.Tenant{ID: "t2", Name: "b", Domain: "b.example"})
			})
		},
		"multi-statement write": func() error {
			return st.AppendAudits(ctx, []store.AuditRecord{{Time: time.Now(), Actor: "x", Action: "y", Result: "success"}})
		},
	}
	for name, write := range writes {
		if err := write(); !errors.Is(err, store.ErrBusy) {
			t.Errorf("%s while another connection holds the write lock: %v, want store.ErrBusy", name, err)
		}
	}
	if _, err := st.GetTenant(ctx, "t1"); err != nil {
		t.Errorf("read while the write lock is held (WAL): %v", err)
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	for name, write := range writes {
		if err := write(); err != nil {
			t.Errorf("%s once the lock is free: %v", name, err)
		}
	}
}
