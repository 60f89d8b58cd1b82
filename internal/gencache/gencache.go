// Package gencache remembers reads until the store changes. A Cache holds
// the values loaded under one store generation (store.Store.Generation)
// and serves them only while that generation is current; the first read
// under a newer generation starts the cache over. There is no expiry by
// time: the generation moves after every committed change, by this
// process at once and by other processes sharing a PostgreSQL store as
// soon as their notification arrives, which is what lets the hot paths
// (token checks, RBAC decisions, vault lookups) skip the database without
// ever serving what a committed write has changed.
package gencache

import "sync"

// Clock gives the store's current generation; store.Store satisfies it.
type Clock interface {
	Generation() uint64
}

// Cache maps K to V for the current generation. Values are shared between
// callers: they must not be modified once loaded. It is safe for
// concurrent use.
type Cache[K comparable, V any] struct {
	clock Clock
	max   int

	mu      sync.RWMutex
	gen     uint64
	entries map[K]V
}

// New returns a cache of at most max entries (past it, it starts over).
func New[K comparable, V any](clock Clock, max int) *Cache[K, V] {
	return &Cache[K, V]{clock: clock, max: max, entries: map[K]V{}}
}

// Get returns the value of k, calling load when the cache has none for
// the current generation. Errors are returned and not cached. The
// generation is read before load runs, so a value loaded while a write
// commits is kept under the older generation and never served after it.
func (c *Cache[K, V]) Get(k K, load func() (V, error)) (V, error) {
	gen := c.clock.Generation()
	c.mu.RLock()
	if c.gen == gen {
		if v, ok := c.entries[k]; ok {
			c.mu.RUnlock()
			return v, nil
		}
	}
	c.mu.RUnlock()
	v, err := load()
	if err != nil {
		return v, err
	}
	c.put(k, v, gen)
	return v, nil
}

func (c *Cache[K, V]) put(k K, v V, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case gen < c.gen:
		return // loaded under a generation already superseded
	case gen > c.gen:
		c.gen = gen
		clear(c.entries)
	case len(c.entries) >= c.max:
		clear(c.entries)
	}
	c.entries[k] = v
}

// Len returns the number of entries held, for tests and stats.
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
