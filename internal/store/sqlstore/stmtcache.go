package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStatements bounds the cache: the store's queries are a fixed
// set plus the filter combinations of ListObjects, far fewer than this.
const maxCachedStatements = 512

// stmtCache keeps one prepared statement per query text. Without it every
// call parses and plans its SQL anew, which on the embedded store cost
// about an eighth of the server's CPU under token load; database/sql keeps
// each statement prepared on every connection that has used it.
type stmtCache struct {
	db    *sql.DB
	d     *Dialect
	mu    sync.Mutex
	stmts map[string]*sql.Stmt // keyed by the query as written, with "?"
}

func newStmtCache(db *sql.DB, d *Dialect) *stmtCache {
	return &stmtCache{db: db, d: d, stmts: map[string]*sql.Stmt{}}
}

// get returns the prepared statement for query, preparing it on first use.
// It returns nil when the statement cannot be prepared or the cache is
// full; the caller then runs the query unprepared.
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.stmts[query]
	full := len(c.stmts) >= maxCachedStatements
	c.mu.Unlock()
	if ok || full {
		return st
	}
	st, err := c.db.PrepareContext(ctx, c.d.rebind(query))
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.stmts[query]; ok { // prepared meanwhile by another caller
		st.Close()
		return prev
	}
	c.stmts[query] = st
	return st
}

// close closes every cached statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
}
