package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlite"
)

// TestBackupWhileWriting: a backup taken while another connection keeps
// committing holds every transaction committed before it began, none
// that began after it ended, and is an intact store that opens.
func TestBackupWhileWriting(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "tb.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	create := func(i int64) error {
		id := fmt.Sprintf("t%06d", i)
		return st.CreateTenant(ctx, store.Tenant{ID: id, Name: id, Domain: id + ".example"})
	}
	for i := range int64(50) {
		if err := create(i); err != nil {
			t.Fatal(err)
		}
	}
	// The writer numbers its tenants; committed is the highest number
	// known committed, started the highest number begun.
	var committed, started atomic.Int64
	committed.Store(49)
	started.Store(49)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(50); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			started.Store(i)
			if err := create(i); err != nil {
				t.Errorf("create tenant %d: %v", i, err)
				return
			}
			committed.Store(i)
		}
	})
	for committed.Load() < 60 { // writes are going on
		time.Sleep(time.Millisecond)
	}
	before := committed.Load()
	out := filepath.Join(dir, "copy.db")
	size, err := sqlite.Backup(ctx, path, out)
	after := started.Load()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != size || size == 0 {
		t.Errorf("Backup returned size %d; the file has %d", size, fi.Size())
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the copy's mode is %04o, want 0600", fi.Mode().Perm())
	}
	if err := sqlite.Check(ctx, out); err != nil {
		t.Fatal(err)
	}
	cp, err := sqlite.Open(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	tenants, err := cp.ListTenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The copy holds a prefix of the writer's tenants: 0..n-1, all of
	// those committed before the backup, none begun after it.
	n := int64(len(tenants))
	for i, tn := range tenants {
		if want := fmt.Sprintf("t%06d", i); tn.ID != want {
			t.Fatalf("tenant %d of the copy is %s, want %s: not a prefix of the commits", i, tn.ID, want)
		}
	}
	t.Logf("copy holds 0..%d; committed before 0..%d; begun before the end 0..%d", n-1, before, after)
	if n-1 < before || n-1 > after {
		t.Errorf("the copy holds tenants 0..%d; want at least 0..%d (committed before the backup) and at most 0..%d (begun before it ended)", n-1, before, after)
	}
}

// TestBackupRefusals: Backup never overwrites a file nor invents a
// database; Check refuses what is not an intact tenantbridge store.
func TestBackupRefusals(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "tb.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Backup(ctx, path, existing); !errors.Is(err, fs.ErrExist) {
		t.Errorf("backup over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("the existing file was changed: %q", b)
	}
	missing := filepath.Join(dir, "missing.db")
	if _, err := sqlite.Backup(ctx, missing, filepath.Join(dir, "out1")); err == nil {
		t.Error("backup of a missing database succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("backup of a missing database created it: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out1")); !os.IsNotExist(err) {
		t.Errorf("a failed backup left its output: %v", err)
	}

	for name, content := range map[string]string{
		"text":      "not a database at all, but long enough to be read as one: " + strings.Repeat("x", 200),
		"truncated": "SQLite format 3\x00" + strings.Repeat("\x00", 84),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := sqlite.Check(ctx, p); err == nil {
			t.Errorf("Check(%s) accepted it", name)
		}
	}
	// A real SQLite database, but not a store.
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE notes (body TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := sqlite.Check(ctx, other); err == nil || !strings.Contains(err.Error(), "not a tenantbridge store") {
		t.Errorf("Check of an SQLite database that is no store: %v", err)
	}
	// A good copy passes.
	good := filepath.Join(dir, "good.db")
	if _, err := sqlite.Backup(ctx, path, good); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Check(ctx, good); err != nil {
		t.Errorf("Check of a good copy: %v", err)
	}
	if err := sqlite.Check(ctx, filepath.Join(dir, "nosuch.db")); err == nil {
		t.Error("Check of a missing file succeeded")
	}
}
