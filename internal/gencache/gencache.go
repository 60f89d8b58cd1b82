// Package gencache remembers reads until the store changes. A Cache holds
// the values loaded under one store generation (store.Store.Generation)
// and serves them only while that generation is current; the first read
// under a newer generation starts the cache over. There is no expiry by
// time: the generation moves after every committed change, by this
// process at once and by other processes sharing a PostgreSQL store as
// soon as their notification arrives, which is what lets the hot paths
// (token checks, RBAC decisions, vault lookups) skip the database without
// ever serving what a committed write has changed.
//
// A PartCache is the same for values that depend on known parts of the
// store (a tenant's rows, a subscription's owners): an entry lasts while
// none of its parts has moved (store.Store.PartGeneration), so that
// writes to one tenant leave other tenants' entries alone.
package gencache

import (
	"slices"
	"sync"
)

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

// New returns a cache of at most max entries (past it, a quarter of them
// go).
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
		dropToThreeQuarters(c.entries, c.max)
	}
	c.entries[k] = v
}

// dropToThreeQuarters deletes entries of a full map, in the map's random
// order, until a quarter of max is free. Starting over instead would
// make a cache whose working set is larger than it miss on nearly every
// read; this way most reads still hit, and each eviction pays for a
// quarter of max inserts.
func dropToThreeQuarters[K comparable, V any](m map[K]V, max int) {
	for k := range m {
		if len(m) <= max*3/4 {
			return
		}
		delete(m, k)
	}
}

// Len returns the number of entries held, for tests and stats.
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// PartClock is a Clock that also tells the generation of one part of the
// store (a tenant's rows, a subscription's owners); store.Store satisfies
// it. A part's generation never exceeds Generation and moves with every
// committed write that changed the part or could not say which parts it
// changed.
type PartClock interface {
	Clock
	PartGeneration(part string) uint64
}

// Deps collects the parts of the store a value was loaded from; a loader
// of a PartCache names each (store.TenantPart, store.SubscriptionPart).
// Naming a part after reading it is as safe as before: an entry is
// checked against the generation read before its loader ran.
type Deps struct {
	parts []string
	all   bool
}

// Part records that the value read rows of part. Naming a part again
// changes nothing.
func (d *Deps) Part(part string) {
	if !slices.Contains(d.parts, part) {
		d.parts = append(d.parts, part)
	}
}

// All records that the value read something no part covers: the entry
// lasts only while the store's whole generation is unchanged.
func (d *Deps) All() { d.all = true }

// PartCache maps K to V, keeping each entry while no part it was loaded
// from has changed. Where a Cache starts over on any write, a PartCache
// keeps tenant A's entries while tenant B is written to, which is what
// lets many tenants be set up at once without emptying every tenant's
// cache on every write. Values are shared between callers: they must not
// be modified once loaded. It is safe for concurrent use.
type PartCache[K comparable, V any] struct {
	clock PartClock
	max   int

	mu      sync.RWMutex
	entries map[K]partEntry[V]
	sets    map[partsKey]*partSet // the entries' sets of up to len(partsKey) parts, each once
	sweepAt int                   // put drops the stale entries once there are this many
}

// minSweep is the fewest entries at which a PartCache drops its stale
// ones before it is full.
const minSweep = 256

// partEntry is a value, the store's generation read before it was
// loaded, and the parts it depends on (nil: everything).
type partEntry[V any] struct {
	v     V
	gen   uint64
	parts *partSet
}

// partSet is the parts an entry depends on. Entries that name the same
// parts share one (issue 16: each of a fan-out customer's eleven RBAC
// decisions names its subscription and its tenant), so that an entry
// costs a pointer, not a list and a copy of each part's name.
type partSet struct{ parts []string }

// partsKey finds a partSet by its parts, in the order named (a loader
// names them in the same order each time); it holds the set's own
// strings. Larger sets are not shared.
type partsKey struct {
	n     int
	parts [3]string
}

// NewPartCache returns a cache of at most max entries (past it, the
// stale ones go and, if that frees less than a quarter, others until it
// does). The stale ones also go whenever the entries have grown by half
// since they last went: an entry whose part was written to is never served
// again, and many are never asked for again either (a tenant's set-up:
// each write to the tenant makes the decisions that allowed the writes
// before it stale; issue 16).
func NewPartCache[K comparable, V any](clock PartClock, max int) *PartCache[K, V] {
	return &PartCache[K, V]{clock: clock, max: max, entries: map[K]partEntry[V]{}, sets: map[partsKey]*partSet{}, sweepAt: minSweep}
}

// Get returns the value of k, calling load when the cache has none that
// is still current. load names the parts it reads in d; one that names
// none depends on everything. Errors are returned and not cached.
func (c *PartCache[K, V]) Get(k K, load func(d *Deps) (V, error)) (V, error) {
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if ok && c.current(&e) {
		return e.v, nil
	}
	// Read before loading: a write that commits during the load moves a
	// part past gen, so what the load saw is never served after it.
	gen := c.clock.Generation()
	var d Deps
	v, err := load(&d)
	if err != nil {
		return v, err
	}
	parts := d.parts
	if d.all {
		parts = nil
	}
	c.put(k, v, gen, parts)
	return v, nil
}

// current reports whether no part e depends on has moved past e.gen.
func (c *PartCache[K, V]) current(e *partEntry[V]) bool {
	if e.parts == nil {
		return c.clock.Generation() <= e.gen
	}
	for _, p := range e.parts.parts {
		if c.clock.PartGeneration(p) > e.gen {
			return false
		}
	}
	return true
}

func (c *PartCache[K, V]) put(k K, v V, gen uint64, parts []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[k]; ok && old.gen > gen {
		return // a load that began later is already in
	}
	e := partEntry[V]{v: v, gen: gen, parts: c.set(parts)}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= min(c.max, c.sweepAt) {
		for k, old := range c.entries {
			if !c.current(&old) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			dropToThreeQuarters(c.entries, c.max)
		}
		c.sweepAt = len(c.entries) + max(len(c.entries)/2, minSweep)
	}
	c.entries[k] = e
}

// set returns the shared partSet of parts (none: nil, everything).
// The sets are as many as the cache's max at most, and twice its entries
// (and a few): past that they start over (the entries keep theirs), so
// that those of entries gone are not kept for long. c.mu is held.
func (c *PartCache[K, V]) set(parts []string) *partSet {
	switch {
	case len(parts) == 0:
		return nil
	case len(parts) > len(partsKey{}.parts):
		return &partSet{parts: slices.Clip(parts)}
	}
	k := partsKey{n: len(parts)}
	copy(k.parts[:], parts)
	if s, ok := c.sets[k]; ok {
		return s
	}
	if len(c.sets) >= c.max || len(c.sets) >= 2*len(c.entries)+8 {
		clear(c.sets)
	}
	s := &partSet{parts: slices.Clone(parts)}
	copy(k.parts[:], s.parts)
	c.sets[k] = s
	return s
}

// Len returns the number of entries held, current or not, for tests and
// stats.
func (c *PartCache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
