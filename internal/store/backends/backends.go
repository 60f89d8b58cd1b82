// Package backends opens a store from the one setting an operator gives:
// a URL naming the backend and where its data lives. It is the only
// package that knows every backend, so the rest of the program depends on
// store.Store alone.
package backends

import (
	"context"
	"errors"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/postgres"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlite"
)

// Backend names a store backend.
type Backend string

// The backends.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// errUsage is returned for every URL that names no backend. It never
// repeats the URL, which may carry a password.
var errUsage = errors.New("store URL must be sqlite://PATH (e.g. sqlite://data/tenantbridge.db or sqlite:///var/lib/tenantbridge/tb.db), postgres://URL or postgresql://URL")

// Parse splits a store URL into its backend and the target that backend
// opens: for sqlite://PATH the file path, taken literally (no
// percent-decoding, no query string), relative to the working directory
// unless it starts with "/"; for postgres:// and postgresql:// the URL
// itself, which pgx parses.
func Parse(url string) (Backend, string, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return "", "", errUsage
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		if rest == "" {
			return "", "", errors.New("sqlite store URL has no path: want sqlite://PATH")
		}
		if strings.ContainsAny(rest, "?#") {
			return "", "", errors.New("sqlite store URL takes a plain path, without ? or #")
		}
		return SQLite, rest, nil
	case "postgres", "postgresql":
		if rest == "" {
			return "", "", errors.New("postgres store URL names no server: want postgres://USER@HOST:PORT/DATABASE")
		}
		return Postgres, url, nil
	}
	return "", "", errUsage
}

// Open opens the store named by url (see Parse) and brings its schema up
// to date.
func Open(ctx context.Context, url string) (store.Store, error) {
	b, target, err := Parse(url)
	if err != nil {
		return nil, err
	}
	switch b {
	case SQLite:
		return sqlite.Open(ctx, target)
	default:
		return postgres.Open(ctx, target)
	}
}
