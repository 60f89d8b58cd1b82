// Package directory is the tenants' directory: tenants, users, groups,
// applications, service principals, their credentials, app role assignments
// and owners. It holds the rules (who may exist where, what is unique, how a
// secret is checked); the graph package speaks Graph's wire format over it
// and the sts package issues tokens from it.
package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Errors callers map to their wire format. ErrNotFound and ErrConflict are
// the store's own, so a store error passes through unchanged.
var (
	ErrNotFound      = store.ErrNotFound
	ErrConflict      = store.ErrConflict
	ErrInvalidSecret = errors.New("directory: invalid client secret")
	ErrSecretExpired = errors.New("directory: client secret expired")
	ErrNoSecret      = errors.New("directory: application has no client secret")
)

// InvalidError is a request the directory refuses because of what it asks
// for: a missing field, a malformed value, a limit. Its message is safe to
// show to the caller. Code, when set, is the error code Graph answers with
// (e.g. HostNameNotOnVerifiedDomain); empty means Request_BadRequest.
type InvalidError struct {
	Code string
	Msg  string
}

func (e *InvalidError) Error() string { return e.Msg }

func invalidf(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// ConflictError is a request that collides with an object that exists: a
// taken name, a membership or grant that is already there. It is an
// ErrConflict whose message (Entra's own wording) is safe to show.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Unwrap() error { return ErrConflict }

func conflictf(format string, args ...any) error {
	return &ConflictError{Msg: fmt.Sprintf(format, args...)}
}

// ConflictMessage returns the message of a conflict, whether the directory
// worded it (a ConflictError) or the store reported a bare ErrConflict.
func ConflictMessage(err error) (string, bool) {
	var ce *ConflictError
	if errors.As(err, &ce) {
		return ce.Msg, true
	}
	if errors.Is(err, ErrConflict) {
		return "Another object with the same key already exists.", true
	}
	return "", false
}

// IsInvalid reports whether err is an InvalidError and returns its message.
func IsInvalid(err error) (string, bool) {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Msg, true
	}
	return "", false
}

// InvalidCode returns the Graph error code of an InvalidError that names
// one, or "".
func InvalidCode(err error) string {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

// Service is the directory. It is safe for concurrent use.
type Service struct {
	st      store.Store
	cache   *lookupCache // nil inside a transaction, which must read its own writes
	shared  *interner    // the strings the cache's entries share; nil with cache
	hashKey []byte       // keys the HMAC of client secrets
	kek     []byte       // seals TOTP secrets
	now     func() time.Time
	hashing *hashLimiter // bounds concurrent password hashing (secrets.go)
	// reservedHosts names the hosts the server serves besides Azure's
	// own (its custom domain's), which no identifier URI may use.
	reservedHosts func(host string) bool
}

// Option configures a Service.
type Option func(*Service)

// WithReservedHosts names further hosts no application may use in an
// identifier URI: the server's own, under its custom domain.
func WithReservedHosts(reserved func(host string) bool) Option {
	return func(s *Service) { s.reservedHosts = reserved }
}

// WithClock replaces time.Now, for tests of expiry.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns a directory over st. hashKey keys the hash of client secrets;
// kek seals secrets that must be recoverable (TOTP seeds). Both must be 32 bytes.
func New(st store.Store, hashKey, kek []byte, opts ...Option) (*Service, error) {
	if len(hashKey) != 32 || len(kek) != 32 {
		return nil, errors.New("directory: hash key and KEK must be 32 bytes")
	}
	s := &Service{st: st, hashKey: hashKey, kek: kek, now: time.Now, hashing: newHashLimiter(0, 0)}
	for _, o := range opts {
		o(s)
	}
	s.cache = gencache.NewPartCache[lookupKey, any](st, maxCachedLookups)
	s.shared = newInterner(s.cache.Len)
	return s, nil
}

// Store returns the underlying store, for packages that keep their own records next to the directory's.
func (s *Service) Store() store.Store { return s.st }

// Now returns the directory's clock.
func (s *Service) Now() time.Time { return s.now().UTC() }

// inTx runs fn in a transaction, with a Service bound to it.
func (s *Service) inTx(ctx context.Context, fn func(tx *Service) error) error {
	return s.st.InTx(ctx, func(st store.Store) error {
		tx := *s
		tx.st, tx.cache, tx.shared = st, nil, nil
		return fn(&tx)
	})
}

func newID() string { return uuid.NewString() }

// document is what the four object types have in common, so that one set of
// load/save helpers serves them all.
type document interface {
	keys() objectKeys
	setMeta(tenantID string, version int64)
	version() int64
}

type objectKeys struct {
	kind        store.ObjectKind
	id          string
	appID       string
	displayName string
	names       []string
}

func (a *Application) keys() objectKeys {
	return objectKeys{store.KindApplication, a.ID, a.AppID, a.DisplayName, a.IdentifierURIs}
}
func (a *Application) setMeta(t string, v int64) { a.TenantID, a.Version = t, v }
func (a *Application) version() int64            { return a.Version }

func (sp *ServicePrincipal) keys() objectKeys {
	names := slices.Clone(sp.ServicePrincipalNames)
	if id := sp.ManagedIdentityResourceID(); id != "" {
		names = append(names, id) // so that mi_res_id finds the identity
	}
	return objectKeys{store.KindServicePrincipal, sp.ID, sp.AppID, sp.DisplayName, names}
}
func (sp *ServicePrincipal) setMeta(t string, v int64) { sp.TenantID, sp.Version = t, v }
func (sp *ServicePrincipal) version() int64            { return sp.Version }

func (u *User) keys() objectKeys {
	return objectKeys{store.KindUser, u.ID, "", u.DisplayName, []string{u.UserPrincipalName}}
}
func (u *User) setMeta(t string, v int64) { u.TenantID, u.Version = t, v }
func (u *User) version() int64            { return u.Version }

func (g *Group) keys() objectKeys {
	return objectKeys{store.KindGroup, g.ID, "", g.DisplayName, nil}
}
func (g *Group) setMeta(t string, v int64) { g.TenantID, g.Version = t, v }
func (g *Group) version() int64            { return g.Version }

// ptr constrains a type parameter to a pointer to a document.
type ptr[T any] interface {
	*T
	document
}

func decode[T any, P ptr[T]](o store.Object) (P, error) {
	var doc T
	p := P(&doc)
	if err := json.Unmarshal(o.Data, p); err != nil {
		return nil, fmt.Errorf("directory: decode %s %s: %w", o.Kind, o.ID, err)
	}
	p.setMeta(o.TenantID, o.Version)
	return p, nil
}

func toObject(tenantID string, d document, version int64) (store.Object, error) {
	data, err := json.Marshal(d)
	if err != nil {
		return store.Object{}, err
	}
	k := d.keys()
	return store.Object{
		TenantID: tenantID, ID: k.id, Kind: k.kind, AppID: k.appID,
		DisplayName: k.displayName, Names: k.names, Data: data, Version: version,
	}, nil
}

func get[T any, P ptr[T]](ctx context.Context, st store.Objects, tenantID string, kind store.ObjectKind, id string) (P, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrNotFound
	}
	o, err := st.GetObject(ctx, tenantID, kind, id)
	if err != nil {
		return nil, err
	}
	return decode[T, P](o)
}

func list[T any, P ptr[T]](ctx context.Context, st store.Objects, q store.ObjectQuery) ([]P, error) {
	objs, err := st.ListObjects(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]P, 0, len(objs))
	for _, o := range objs {
		p, err := decode[T, P](o)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func create(ctx context.Context, st store.Objects, tenantID string, d document) error {
	o, err := toObject(tenantID, d, 1)
	if err != nil {
		return err
	}
	if err := st.CreateObject(ctx, o); err != nil {
		return err
	}
	d.setMeta(tenantID, 1)
	return nil
}

// maxUpdateAttempts bounds how often update starts over. Each round of
// concurrent writers has at least one winner, so this many writers of one
// object at once always finish.
const maxUpdateAttempts = 64

// update reads an object, lets mutate change it, and writes it back if the
// object has not changed meanwhile; on a concurrent change it starts over,
// after a short random pause, so that two writers never lose each other's
// change.
func update[T any, P ptr[T]](ctx context.Context, st store.Objects, tenantID string, kind store.ObjectKind, id string, mutate func(P) error) (P, error) {
	for attempt := 0; ; attempt++ {
		p, err := get[T, P](ctx, st, tenantID, kind, id)
		if err != nil {
			return nil, err
		}
		if err := mutate(p); err != nil {
			return nil, err
		}
		o, err := toObject(tenantID, p, p.version())
		if err != nil {
			return nil, err
		}
		saved, err := st.UpdateObject(ctx, o)
		if errors.Is(err, store.ErrPrecondition) && attempt < maxUpdateAttempts {
			time.Sleep(time.Duration(rand.IntN(1000*(attempt+1))) * time.Microsecond)
			continue
		}
		if err != nil {
			return nil, err
		}
		p.setMeta(tenantID, saved.Version)
		return p, nil
	}
}
