package directory

import (
	"encoding/binary"
	"strings"
	"sync"

	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// maxCachedLookups bounds the cache's memory; past it the cache drops
// what is stale and, if that frees less than a quarter, others until it
// does. It must hold every lookup in steady use: a connected AMQP link's
// token is verified again for every message it moves, and the verifier
// reads the tenant and the client's service principal through this cache,
// nine lookups a customer of a fan-out (TestLookupCacheBytesPerCustomer),
// 90,000 for 10,000 customers (issue 16). At 10,000 entries, the bound
// before, every fan-out past about 1,100 customers evicted entries its
// messages then read again from the store. An entry is about 390 bytes:
// 100,000 are about 40 MB.
const maxCachedLookups = 100_000

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
type lookupKey struct {
	what        lookupKind
	tenant, key string
}

// lookupKind is what a lookup looks up: a byte in each of the cache's
// keys where a string took sixteen.
type lookupKind uint8

const (
	lookupApplication      lookupKind = iota + 1 // ApplicationByAppID
	lookupSPByAppID                              // ServicePrincipalByAppID
	lookupSPByName                               // ServicePrincipalByName
	lookupTenant                                 // Tenant
	lookupGrantedRoles                           // GrantedRoles
	lookupEnabledUserRoles                       // EnabledUserRoles
	lookupEnabledSPRoles                         // EnabledServicePrincipalRoles
)

// cached returns the value of load for k, from the cache when it can.
// The entry depends on k.tenant's rows, or on everything when k names no
// tenant. The result is shared: callers get a shallow copy of documents
// (unpacked, for those the cache holds packed: see pack).
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
		doc, err := load(d)
		if err != nil {
			return nil, err
		}
		return pack(doc), nil
	})
	if err != nil {
		return nil, err
	}
	if p, ok := v.(unpacker[T]); ok {
		return p.unpack(), nil
	}
	c := *(v.(*T))
	return &c, nil
}

// maxInterned bounds the strings and lists an interner holds: a few per cached
// lookup. Below it, an interner holds at most four strings per entry of
// its cache and minInterned more (a fan-out customer's entries share
// fewer than one each), so that what entries gone shared (a deleted
// tenant's id, an evicted entry's) is not kept up to the maximum.
const (
	maxInterned = 4 * maxCachedLookups
	minInterned = 4096
)

// interner shares what many cached entries hold alike, so that the cache
// holds one copy of each instead of one per entry: a tenant's id, in
// every document of the tenant; an application's id, in its service
// principal, its names and the application; and what an application's
// service principal repeats from it in every tenant that holds one (its
// names, and its roles and scopes: Graph's every permission, in each
// tenant, where the lists themselves are shared, not only their strings).
// Only documents freshly read for the cache go through it, and it clones
// the strings it keeps, so that a string that is part of a larger buffer
// (a request's, a row's) does not keep that buffer. Past its bound (see
// maxInterned) it starts over: entries keep what they hold, and later
// ones share anew. A nil interner (inside a transaction, whose reads are
// not cached) shares nothing.
type interner struct {
	entries func() int // the cache's
	mu      sync.Mutex
	m       map[string]string
	roles   map[string][]AppRole         // by appRolesKey
	scopes  map[string][]PermissionScope // by scopesKey
}

// newInterner returns an interner for a cache of entries() entries.
func newInterner(entries func() int) *interner {
	return &interner{entries: entries, m: map[string]string{}, roles: map[string][]AppRole{}, scopes: map[string][]PermissionScope{}}
}

// str returns the interned copy of v.
func (in *interner) str(v string) string {
	if in == nil || v == "" {
		return v
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.strLocked(v)
}

func (in *interner) strLocked(v string) string {
	if v == "" {
		return v
	}
	if c, ok := in.m[v]; ok {
		return c
	}
	in.roomLocked()
	c := strings.Clone(v)
	in.m[c] = c
	return c
}

// roomLocked makes room for one more string or list: past the bound, which
// counts the lists with the strings (a list of strings already held, its
// roles reordered or one disabled, adds no string), it starts over.
func (in *interner) roomLocked() {
	if n := len(in.m) + len(in.roles) + len(in.scopes); n >= minInterned && (n >= maxInterned || n >= 4*in.entries()+minInterned) {
		clear(in.m)
		clear(in.roles)
		clear(in.scopes)
	}
}

// strs interns each of vs, in place: vs must not be shared yet.
func (in *interner) strs(vs []string) {
	for i, v := range vs {
		vs[i] = in.str(v)
	}
}

// servicePrincipal interns what sp shares with other entries, in place:
// sp must be freshly decoded, not yet shared. Its object id, its
// credentials and a managed identity's names are its own and stay.
func (in *interner) servicePrincipal(sp *ServicePrincipal) *ServicePrincipal {
	if in == nil {
		return sp
	}
	sp.TenantID, sp.AppID, sp.AppOwnerOrganizationID = in.str(sp.TenantID), in.str(sp.AppID), in.str(sp.AppOwnerOrganizationID)
	sp.AppDisplayName, sp.DisplayName = in.str(sp.AppDisplayName), in.str(sp.DisplayName)
	sp.ServicePrincipalType, sp.SignInAudience = in.str(sp.ServicePrincipalType), in.str(sp.SignInAudience)
	in.strs(sp.ServicePrincipalNames)
	in.strs(sp.Tags)
	sp.AppRoles = in.appRoles(sp.AppRoles)
	sp.OAuth2PermissionScopes = in.scopeList(sp.OAuth2PermissionScopes)
	return sp
}

// application interns what app shares with other entries (its service
// principals', its home tenant's), in place: app must be freshly decoded,
// not yet shared. Its object id, its publisher domain (its home tenant's
// alone) and its credentials are its own and stay.
func (in *interner) application(app *Application) *Application {
	if in == nil {
		return app
	}
	app.TenantID, app.AppID, app.DisplayName = in.str(app.TenantID), in.str(app.AppID), in.str(app.DisplayName)
	app.SignInAudience = in.str(app.SignInAudience)
	in.strs(app.IdentifierURIs)
	in.strs(app.Tags)
	app.AppRoles = in.appRoles(app.AppRoles)
	app.OAuth2PermissionScopes = in.scopeList(app.OAuth2PermissionScopes)
	for i := range app.RequiredResourceAccess {
		r := &app.RequiredResourceAccess[i]
		r.ResourceAppID = in.str(r.ResourceAppID)
		for j := range r.ResourceAccess {
			r.ResourceAccess[j].ID, r.ResourceAccess[j].Type = in.str(r.ResourceAccess[j].ID), in.str(r.ResourceAccess[j].Type)
		}
	}
	return app
}

// appRoles returns the list equal to rs that other entries hold, or rs
// itself, its strings interned, if none does (see internList).
func (in *interner) appRoles(rs []AppRole) []AppRole {
	return internList(in, in.roles, rs, appRolesKey, func(r *AppRole) {
		r.ID, r.Description, r.DisplayName = in.strLocked(r.ID), in.strLocked(r.Description), in.strLocked(r.DisplayName)
		r.Value, r.Origin = in.strLocked(r.Value), in.strLocked(r.Origin)
		for j, t := range r.AllowedMemberTypes {
			r.AllowedMemberTypes[j] = in.strLocked(t)
		}
	})
}

// scopeList is appRoles for permission scopes.
func (in *interner) scopeList(ps []PermissionScope) []PermissionScope {
	return internList(in, in.scopes, ps, scopesKey, func(p *PermissionScope) {
		p.ID, p.Value, p.Type = in.strLocked(p.ID), in.strLocked(p.Value), in.strLocked(p.Type)
		p.AdminConsentDisplayName, p.AdminConsentDescription = in.strLocked(p.AdminConsentDisplayName), in.strLocked(p.AdminConsentDescription)
		p.UserConsentDisplayName, p.UserConsentDescription = in.strLocked(p.UserConsentDisplayName), in.strLocked(p.UserConsentDescription)
	})
}

// internList returns the list in have under key(xs), equal to xs, or xs
// itself, each of its elements' strings interned by strs (under in.mu),
// if have holds none; xs must not be shared yet. Entries share the list
// as callers share an entry's lists: read only.
func internList[E any](in *interner, have map[string][]E, xs []E, key func([]E) string, strs func(*E)) []E {
	if len(xs) == 0 {
		return xs // nil stays nil, and an empty list holds nothing
	}
	k := key(xs)
	in.mu.Lock()
	defer in.mu.Unlock()
	if l, ok := have[k]; ok {
		return l
	}
	for i := range xs {
		strs(&xs[i])
	}
	in.roomLocked()
	have[k] = xs
	return xs
}

// appRolesKey encodes rs so that two lists have the same key exactly when
// they are equal: each string with its length before it, a nil list of
// member types apart from an empty one.
func appRolesKey(rs []AppRole) string {
	b := binary.AppendUvarint(nil, uint64(len(rs)))
	for _, r := range rs {
		b = appendKeyStrings(b, r.ID, r.Description, r.DisplayName, r.Value, r.Origin)
		b = appendKeyBool(b, r.IsEnabled)
		b = appendKeyBool(b, r.AllowedMemberTypes != nil)
		b = binary.AppendUvarint(b, uint64(len(r.AllowedMemberTypes)))
		b = appendKeyStrings(b, r.AllowedMemberTypes...)
	}
	return string(b)
}

// scopesKey is appRolesKey for permission scopes.
func scopesKey(ps []PermissionScope) string {
	b := binary.AppendUvarint(nil, uint64(len(ps)))
	for _, p := range ps {
		b = appendKeyStrings(b, p.ID, p.Value, p.Type, p.AdminConsentDisplayName, p.AdminConsentDescription,
			p.UserConsentDisplayName, p.UserConsentDescription)
		b = appendKeyBool(b, p.IsEnabled)
	}
	return string(b)
}

func appendKeyStrings(b []byte, ss ...string) []byte {
	for _, s := range ss {
		b = append(binary.AppendUvarint(b, uint64(len(s))), s...)
	}
	return b
}

func appendKeyBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}
