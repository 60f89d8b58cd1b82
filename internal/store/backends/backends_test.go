package backends_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/backends"
	"github.com/tenantbridge/tenantbridge/internal/store/postgres"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlite"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		url     string
		backend backends.Backend
		target  string
		wantErr string
	}{
		{url: "sqlite:///var/lib/tb/tb.db", backend: backends.SQLite, target: "/var/lib/tb/tb.db"},
		{url: "sqlite://data/tb.db", backend: backends.SQLite, target: "data/tb.db"},
		{url: "sqlite://./tb.db", backend: backends.SQLite, target: "./tb.db"},
		{url: "sqlite://tb.db", backend: backends.SQLite, target: "tb.db"},
		{url: "SQLite://tb.db", backend: backends.SQLite, target: "tb.db"},
		{url: "sqlite://dir with space/tb.db", backend: backends.SQLite, target: "dir with space/tb.db"},
		{url: "postgres://u:pw@db:5432/tb?sslmode=require", backend: backends.Postgres, target: "postgres://u:pw@db:5432/tb?sslmode=require"},
		{url: "postgresql://u@db/tb", backend: backends.Postgres, target: "postgresql://u@db/tb"},

		{url: "", wantErr: "must be sqlite://"},
		{url: "tb.db", wantErr: "must be sqlite://"},
		{url: "sqlite:tb.db", wantErr: "must be sqlite://"},
		{url: "sqlite://", wantErr: "no path"},
		{url: "sqlite://tb.db?_pragma=x", wantErr: "plain path"},
		{url: "postgres://", wantErr: "names no server"},
		{url: "mysql://u:secret@db/tb", wantErr: "must be sqlite://"},
		{url: "host=db password=secret", wantErr: "must be sqlite://"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			b, target, err := backends.Parse(tc.url)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q): error %v, want one containing %q", tc.url, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error repeats the password: %v", err)
				}
				return
			}
			if err != nil || b != tc.backend || target != tc.target {
				t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q", tc.url, b, target, err, tc.backend, tc.target)
			}
		})
	}
}

func use(t *testing.T, st store.Store) {
	t.Helper()
	defer st.Close()
	if err := st.CreateTenant(t.Context(), store.Tenant{ID: "t", Name: "t", Domain: "t.example"}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSQLite(t *testing.T) {
	dir := t.TempDir()
	t.Run("absolute", func(t *testing.T) {
		path := filepath.Join(dir, "abs.db")
		st, err := backends.Open(t.Context(), "sqlite://"+path) // sqlite:///...
		if err != nil {
			t.Fatal(err)
		}
		use(t, st)
		if _, err := os.Stat(path); err != nil {
			t.Error(err)
		}
	})
	t.Run("relative", func(t *testing.T) {
		t.Chdir(dir)
		if err := os.Mkdir("data", 0o700); err != nil {
			t.Fatal(err)
		}
		st, err := backends.Open(t.Context(), "sqlite://data/rel.db")
		if err != nil {
			t.Fatal(err)
		}
		use(t, st)
		if _, err := os.Stat(filepath.Join(dir, "data", "rel.db")); err != nil {
			t.Error(err)
		}
	})
	t.Run("bad scheme", func(t *testing.T) {
		if _, err := backends.Open(t.Context(), "redis://x"); err == nil {
			t.Error("Open of redis:// succeeded")
		}
	})
}

func TestOpenPostgres(t *testing.T) {
	dsn := storetest.PostgresSchemaDSN(t)
	for _, scheme := range []string{"postgres://", "postgresql://"} {
		t.Run(scheme, func(t *testing.T) {
			st, err := backends.Open(t.Context(), scheme+strings.TrimPrefix(dsn, "postgres://"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.ListTenants(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMigrationsInStep: every schema version exists for both backends
// under one name, so that a migration added for one is not forgotten for
// the other.
func TestMigrationsInStep(t *testing.T) {
	s, err := sqlite.Dialect()
	if err != nil {
		t.Fatal(err)
	}
	p, err := postgres.Dialect()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Migrations) != len(p.Migrations) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(s.Migrations), len(p.Migrations))
	}
	for i := range s.Migrations {
		if s.Migrations[i].Version != p.Migrations[i].Version || s.Migrations[i].Name != p.Migrations[i].Name {
			t.Errorf("migration %d: sqlite %d_%s, postgres %d_%s", i+1,
				s.Migrations[i].Version, s.Migrations[i].Name, p.Migrations[i].Version, p.Migrations[i].Name)
		}
	}
}
