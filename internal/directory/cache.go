package directory

import (
	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// maxCachedLookups bounds the cache's memory; past it the cache drops
// what is stale and, if that frees less than a quarter, others until it
// does.
const maxCachedLookups = 10_000

// lookupCache remembers the few reads that every token request makes: the
// tenant, the client application, its service principal and the
// resource's, the roles granted. Decoding those documents (Graph's carries
// every permission Graph defines) cost more CPU than anything but signing.
// An entry lives until a committed write changes a part of the store it
// was read from (store.Store.PartGeneration): a lookup in a tenant, until
// a write to that tenant's rows, so that setting up one tenant does not
// empty every other tenant's entries; a revoked service principal is not
// found on the very next request, and on PostgreSQL a change made by
// another server is seen as soon as its notification arrives (which
// moves every part).
type lookupCache = gencache.PartCache[lookupKey, any]

// lookupKey names a lookup. A non-empty tenant is a promise that the
// lookup reads nothing but that tenant's rows (besides what its loader
// names with cachedWith); the tenant must be the tenant id the lookup
// queries by.
type lookupKey struct{ what, tenant, key string }

// cached returns the value of load for k, from the cache when it can.
// The entry depends on k.tenant's rows, or on everything when k names no
// tenant. The result is shared: callers get a shallow copy (see copyOf)
// of documents.
func cached[T any](s *Service, k lookupKey, load func() (*T, error)) (*T, error) {
	return cachedWith(s, k, func(*gencache.Deps) (*T, error) { return load() })
}

// cachedWith is cached for a loader that names in d the parts it reads
// besides k.tenant's rows (d.All when it cannot name them). A loader that
// names nothing, under a key without a tenant, depends on everything.
func cachedWith[T any](s *Service, k lookupKey, load func(d *gencache.Deps) (*T, error)) (*T, error) {
	if s.cache == nil {
		return load(&gencache.Deps{})
	}
	v, err := s.cache.Get(k, func(d *gencache.Deps) (any, error) {
		if k.tenant != "" {
			d.Part(store.TenantPart(k.tenant))
		}
		return load(d)
	})
	if err != nil {
		return nil, err
	}
	c := *(v.(*T))
	return &c, nil
}
