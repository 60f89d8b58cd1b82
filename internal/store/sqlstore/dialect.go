package sqlstore

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Placeholder is how a driver spells the n-th bind parameter. The shared
// queries are written with "?" and rebound once per call, so one query text
// serves every backend.
type Placeholder int

// The placeholder styles.
const (
	// QuestionMark binds parameters as ?, ?, ? (SQLite).
	QuestionMark Placeholder = iota
	// Dollar binds parameters as $1, $2, $3 (PostgreSQL).
	Dollar
)

// Violation classifies a driver error as one of the constraint violations
// the store turns into its own sentinel errors.
type Violation int

// The violations a Dialect recognises.
const (
	// NoViolation: the error is something else and is returned wrapped.
	NoViolation Violation = iota
	// UniqueViolation: a primary key or unique index rejected a write;
	// reported as store.ErrConflict.
	UniqueViolation
	// ForeignKeyViolation: a write referenced a record that does not exist
	// (an object in a missing tenant, a link to a missing object); reported
	// as store.ErrNotFound.
	ForeignKeyViolation
	// Busy: the statement could not get the locks it needed in time, or
	// lost a serialization race; nothing was written and a retry may
	// succeed. Reported as store.ErrBusy.
	Busy
)

// Dialect is everything that differs between the SQL backends. It is kept
// deliberately small: the schema differs (types, identity columns,
// collations) and lives in each dialect's migrations, and the rest is the
// handful of hooks below. Every query and every rule of the store.Store
// contract lives once, in this package.
type Dialect struct {
	// Name identifies the backend in error messages, e.g. "sqlite".
	Name string
	// Placeholder is the bind parameter style of the driver.
	Placeholder Placeholder
	// Classify reports which constraint, if any, err is a violation of,
	// or that err is lock contention (Busy).
	// It must look through wrapping (errors.As).
	Classify func(err error) Violation
	// BindTime converts a timestamp, already UTC and truncated to the
	// microsecond, to the value the driver stores in a timestamp column.
	// Reading accepts time.Time, or text in RFC 3339 form.
	BindTime func(t time.Time) any
	// MigrationLock is a statement run first in the migration transaction
	// to keep two processes that open the same database at once from
	// migrating it together. Empty when beginning the transaction already
	// excludes other writers (SQLite's BEGIN IMMEDIATE).
	MigrationLock string
	// Migrations is the dialect's schema history, versions 1..n in order.
	// Append to it; never edit or renumber a migration that has shipped.
	Migrations []Migration
}

// Migration is one step of a dialect's schema history.
type Migration struct {
	Version int    // 1, 2, 3, ... without gaps
	Name    string // from the file name, recorded to catch diverging histories
	SQL     string // one or more statements, run in one transaction
}

// migrationFile is the file name of a migration: NNNN_name.sql.
var migrationFile = regexp.MustCompile(`^([0-9]+)_([a-z0-9_]+)\.sql$`)

// LoadMigrations reads the migrations in dir of fsys, usually an embed.FS.
// Files are named NNNN_name.sql (e.g. 0002_vault_secrets.sql); their
// numbers must run 1..n without gaps so that a forgotten or duplicated
// file fails loudly at startup instead of silently skipping schema.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("sqlstore: migration file %q is not named NNNN_name.sql", e.Name())
		}
		v, err := strconv.Atoi(m[1])
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migration file %q: %w", e.Name(), err)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read migration %q: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	if err := checkMigrations(ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// checkMigrations verifies that versions run 1..n.
func checkMigrations(ms []Migration) error {
	if len(ms) == 0 {
		return fmt.Errorf("sqlstore: no migrations")
	}
	for i, m := range ms {
		if m.Version != i+1 {
			return fmt.Errorf("sqlstore: migration %d (%s) found where version %d was expected: versions must run 1..n without gaps or duplicates", m.Version, m.Name, i+1)
		}
		if strings.TrimSpace(m.SQL) == "" {
			return fmt.Errorf("sqlstore: migration %d (%s) is empty", m.Version, m.Name)
		}
	}
	return nil
}

// validate checks that d can be used.
func (d *Dialect) validate() error {
	if d.Name == "" || d.Classify == nil || d.BindTime == nil {
		return fmt.Errorf("sqlstore: dialect %q is incomplete", d.Name)
	}
	if d.Placeholder != QuestionMark && d.Placeholder != Dollar {
		return fmt.Errorf("sqlstore: dialect %q: unknown placeholder style %d", d.Name, d.Placeholder)
	}
	return checkMigrations(d.Migrations)
}

// rebind rewrites the "?" placeholders of query into the dialect's style.
// The store's queries never contain a literal "?" (values are always bound),
// so a plain scan is enough.
func (d *Dialect) rebind(query string) string {
	if d.Placeholder == QuestionMark {
		return query
	}
	n := strings.Count(query, "?")
	if n == 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 2*n)
	i := 0
	for _, r := range query {
		if r == '?' {
			i++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(i))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
