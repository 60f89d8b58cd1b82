package directory

import (
	"context"
	"sync"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// LookupCacheTTL is how long a cached lookup may be served. Every write
// through this process's directory empties the cache at once; the TTL only
// bounds how long a change made by another server sharing a PostgreSQL
// store can go unseen here (Entra's own changes take minutes to propagate).
const LookupCacheTTL = 2 * time.Second

// maxCachedLookups bounds the cache's memory; past it the cache starts over.
const maxCachedLookups = 10_000

// lookupCache remembers, for a moment, the few reads that every token
// request makes: the tenant, the client application, its service principal
// and the resource's. Decoding those documents (Graph's carries every
// permission Graph defines) cost more CPU than anything but signing.
type lookupCache struct {
	now     func() time.Time
	mu      sync.Mutex
	gen     uint64 // incremented by every write
	entries map[lookupKey]lookupEntry
}

type lookupKey struct{ what, tenant, key string }

type lookupEntry struct {
	value   any
	gen     uint64
	expires time.Time
}

func newLookupCache(now func() time.Time) *lookupCache {
	return &lookupCache{now: now, entries: map[lookupKey]lookupEntry{}}
}

// generation is read before a lookup goes to the store; put stores the
// result only if no write happened meanwhile, so a read that races a
// commit can never leave the old value cached.
func (c *lookupCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *lookupCache) get(k lookupKey) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || e.gen != c.gen || !c.now().Before(e.expires) {
		return nil, false
	}
	return e.value, true
}

func (c *lookupCache) put(k lookupKey, v any, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) >= maxCachedLookups {
		clear(c.entries)
	}
	c.entries[k] = lookupEntry{value: v, gen: gen, expires: c.now().Add(LookupCacheTTL)}
}

func (c *lookupCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

// cached returns the value of load for k, from the cache when it can. The
// result is shared: callers get a shallow copy (see copyOf) of documents.
func cached[T any](s *Service, k lookupKey, load func() (*T, error)) (*T, error) {
	if s.cache == nil {
		return load()
	}
	if v, ok := s.cache.get(k); ok {
		c := *(v.(*T))
		return &c, nil
	}
	gen := s.cache.generation()
	v, err := load()
	if err != nil {
		return nil, err
	}
	s.cache.put(k, v, gen)
	c := *v
	return &c, nil
}

// invalidatingStore is the directory's view of the store: every write
// through it empties the lookup cache after it took effect (for a
// transaction, after it ended), so no write path can forget to.
type invalidatingStore struct {
	store.Store
	cache *lookupCache
}

func (s invalidatingStore) after(err error) error {
	s.cache.invalidate()
	return err
}

func (s invalidatingStore) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	return s.after(s.Store.InTx(ctx, fn))
}
func (s invalidatingStore) CreateTenant(ctx context.Context, t store.Tenant) error {
	return s.after(s.Store.CreateTenant(ctx, t))
}
func (s invalidatingStore) DeleteTenant(ctx context.Context, id string) error {
	return s.after(s.Store.DeleteTenant(ctx, id))
}
func (s invalidatingStore) CreateObject(ctx context.Context, o store.Object) error {
	return s.after(s.Store.CreateObject(ctx, o))
}
func (s invalidatingStore) UpdateObject(ctx context.Context, o store.Object) (store.Object, error) {
	out, err := s.Store.UpdateObject(ctx, o)
	return out, s.after(err)
}
func (s invalidatingStore) DeleteObject(ctx context.Context, tenantID string, kind store.ObjectKind, id string) error {
	return s.after(s.Store.DeleteObject(ctx, tenantID, kind, id))
}
func (s invalidatingStore) AddLink(ctx context.Context, l store.Link) error {
	return s.after(s.Store.AddLink(ctx, l))
}
func (s invalidatingStore) RemoveLink(ctx context.Context, tenantID string, kind store.LinkKind, from, to string) error {
	return s.after(s.Store.RemoveLink(ctx, tenantID, kind, from, to))
}
func (s invalidatingStore) CreateAppRoleAssignment(ctx context.Context, a store.AppRoleAssignment) error {
	return s.after(s.Store.CreateAppRoleAssignment(ctx, a))
}
func (s invalidatingStore) DeleteAppRoleAssignment(ctx context.Context, tenantID, id string) error {
	return s.after(s.Store.DeleteAppRoleAssignment(ctx, tenantID, id))
}
