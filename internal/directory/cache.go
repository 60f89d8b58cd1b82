package directory

import (
	"github.com/tenantbridge/tenantbridge/internal/gencache"
)

// maxCachedLookups bounds the cache's memory; past it the cache starts over.
const maxCachedLookups = 10_000

// lookupCache remembers the few reads that every token request makes: the
// tenant, the client application, its service principal and the
// resource's, the roles granted. Decoding those documents (Graph's carries
// every permission Graph defines) cost more CPU than anything but signing.
// Entries live until the store's generation moves, which every committed
// write does (see store.Store.Generation): a revoked service principal is
// not found on the very next request, and on PostgreSQL a change made by
// another server is seen as soon as its notification arrives.
type lookupCache = gencache.Cache[lookupKey, any]

type lookupKey struct{ what, tenant, key string }

// cached returns the value of load for k, from the cache when it can. The
// result is shared: callers get a shallow copy (see copyOf) of documents.
func cached[T any](s *Service, k lookupKey, load func() (*T, error)) (*T, error) {
	if s.cache == nil {
		return load()
	}
	v, err := s.cache.Get(k, func() (any, error) { return load() })
	if err != nil {
		return nil, err
	}
	c := *(v.(*T))
	return &c, nil
}
