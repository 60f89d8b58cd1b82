// Package store defines how tenantbridge persists its state. It holds the
// record types and the interfaces every backend implements; the backends live
// in store/sqlite (embedded default) and store/postgres (scale-out), and one
// conformance suite (store/conformance) proves them equal.
//
// Directory objects are stored as JSON documents owned by the directory
// package, next to the few indexed columns the services look them up by. That
// keeps the schema stable while the Graph shapes grow, and keeps every lookup
// that a hot path needs (appId, service principal names, user principal name)
// on an index.
package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Errors every backend returns, so that callers can map them to the wire's
// own error format without knowing which backend is in use.
var (
	// ErrNotFound means the record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a unique key (name, appId, domain, membership) is taken.
	ErrConflict = errors.New("store: conflict")
	// ErrPrecondition means an update was based on a version that is no longer current.
	ErrPrecondition = errors.New("store: version mismatch")
	// ErrBusy means the write could not get the database's locks in time
	// (SQLite's write lock held past busy_timeout; a PostgreSQL lock or
	// statement timeout, serialization failure or deadlock). Nothing was
	// changed, and the same request may succeed if retried: surfaces answer
	// it with their own retriable "busy" error and a Retry-After, never 500.
	ErrBusy = errors.New("store: busy")
)

// BusyRetryAfter is the Retry-After, in seconds, that surfaces send with
// an ErrBusy answer: long enough for the lock holder to commit, short
// enough that azcore's retry policy (which honours Retry-After on 429 and
// 503) gets through within its default three retries.
const BusyRetryAfter = "1"

// Store is the whole persistence surface. Every method is safe for concurrent use.
type Store interface {
	Tenants
	Objects
	Links
	AppRoleAssignments
	Audit
	OneTimeUse
	RBAC
	Vaults
	ARM
	Queues
	RefreshTokens
	DeviceCodes
	Outbox
	Lockouts
	Deployments
	ProviderRegistrations
	ManagementLocks
	SignedOutSessions

	// InTx runs fn with a Store whose every call is part of one transaction.
	// If fn returns an error the transaction is rolled back and the error is
	// returned unchanged. Calling InTx on the Store passed to fn runs fn in
	// the same transaction.
	InTx(ctx context.Context, fn func(tx Store) error) error

	// Generation is a number that changes whenever a committed write may
	// have changed what a read returns: directory objects, links, RBAC,
	// vaults and secrets, ARM resources (not the audit log or one-time
	// keys, which nothing caches). A cache keeps what it loaded under the
	// generation it read before loading, and serves it only while the
	// generation is unchanged. It moves after this process's commits at
	// once, and after other processes' commits as soon as the backend
	// hears of them (PostgreSQL: LISTEN/NOTIFY, within milliseconds);
	// while a backend cannot hear them it changes on every call, so that
	// nothing is served from a cache.
	Generation() uint64

	// PartGeneration is the generation (a value Generation has returned
	// or will return) of the last committed write that changed a row of
	// one part of the store, a tenant (TenantPart) or the tenants holding
	// a subscription (SubscriptionPart), or that could not name the parts
	// it changed. A cache whose entry depends only on some parts' rows
	// keeps it while none of those parts' generations exceeds the
	// Generation it read before loading, so that one tenant's writes do
	// not empty every tenant's entries. Writes name the parts they change
	// as exactly as the statement's own keys allow (a row's tenant_id,
	// cascades included); a write that cannot, and every change heard
	// from another process (PostgreSQL's notifications do not name
	// tenants), moves every part. While Generation changes on every call
	// so does this.
	PartGeneration(part string) uint64

	// Close releases the backend's resources.
	Close() error
}

// Tenant is a directory tenant: the unit of ownership and isolation.
type Tenant struct {
	ID             string // GUID
	Name           string // short name, unique, e.g. "contoso"
	Domain         string // default domain, unique, e.g. "contoso.onmicrosoft.com"
	SubscriptionID string // default subscription GUID
	Created        time.Time
}

// Tenants stores tenants.
type Tenants interface {
	// CreateTenant fails with ErrConflict when the id, name or domain is taken.
	CreateTenant(ctx context.Context, t Tenant) error
	// GetTenant finds a tenant by its id or by its domain (case-insensitive).
	GetTenant(ctx context.Context, idOrDomain string) (Tenant, error)
	// ListTenants lists every tenant, ordered by name.
	ListTenants(ctx context.Context) ([]Tenant, error)
	// DeleteTenant removes the tenant and everything stored under it.
	DeleteTenant(ctx context.Context, id string) error
}

// ObjectKind names a kind of directory object.
type ObjectKind string

// The directory object kinds.
const (
	KindApplication      ObjectKind = "application"
	KindServicePrincipal ObjectKind = "servicePrincipal"
	KindUser             ObjectKind = "user"
	KindGroup            ObjectKind = "group"
	// KindWorkload is a compute resource that runs as managed identities
	// (what App Service or a VM is in Azure): the holder of the
	// identity endpoint's secret header.
	KindWorkload ObjectKind = "workload"
)

// Object is one directory object: its indexed keys plus the JSON document
// that the directory package owns.
type Object struct {
	TenantID    string
	ID          string // object id, a GUID, unique per tenant
	Kind        ObjectKind
	AppID       string // applications and service principals; empty otherwise
	DisplayName string
	// Names are the object's other unique lookup keys within its tenant and
	// kind, compared case-insensitively: identifierUris for applications,
	// servicePrincipalNames for service principals, userPrincipalName for
	// users.
	Names []string
	Data  []byte // JSON document
	// Version starts at 1 and is incremented by every update; UpdateObject
	// uses it for optimistic concurrency.
	Version int64
	Created time.Time
	Updated time.Time
}

// ObjectQuery selects objects. Empty fields do not filter.
type ObjectQuery struct {
	// TenantID may be empty only when AppID is set: that finds an
	// application (appIds are unique across all tenants) or every service
	// principal of one application, in whichever tenants hold one.
	TenantID          string
	Kind              ObjectKind // required
	AppID             string
	DisplayName       string // exact, case-insensitive
	DisplayNamePrefix string // case-insensitive
	Name              string // one of Object.Names, case-insensitive
	IDs               []string
	// After is a cursor: only objects whose ID sorts after it are returned.
	// Results are always ordered by ID.
	After string
	// Limit caps the number of results; 0 means no limit.
	Limit int
}

// Objects stores directory objects.
type Objects interface {
	// CreateObject stores a new object with Version 1. It fails with
	// ErrConflict when the id, an application's appId (unique across all
	// tenants), a service principal's appId (unique per tenant) or one of
	// the Names is taken.
	CreateObject(ctx context.Context, o Object) error
	// GetObject finds one object by tenant, kind and id.
	GetObject(ctx context.Context, tenantID string, kind ObjectKind, id string) (Object, error)
	// UpdateObject replaces DisplayName, Names and Data of an object whose
	// current version is o.Version, and increments the version. It fails
	// with ErrPrecondition if the stored version differs, ErrNotFound if
	// the object is gone and ErrConflict if a new name is taken.
	UpdateObject(ctx context.Context, o Object) (Object, error)
	// DeleteObject removes the object together with its links (in either
	// direction) and the app role assignments it grants or holds.
	DeleteObject(ctx context.Context, tenantID string, kind ObjectKind, id string) error
	// ListObjects returns the objects that match q, ordered by ID.
	ListObjects(ctx context.Context, q ObjectQuery) ([]Object, error)
}

// LinkKind names a relation between two directory objects of one tenant.
type LinkKind string

// The relations.
const (
	// LinkMember: From is a group, To is a member (user, group or service principal).
	LinkMember LinkKind = "member"
	// LinkOwner: From is an application, service principal or group, To is an owner.
	LinkOwner LinkKind = "owner"
)

// Link is a directed relation between two objects in one tenant.
type Link struct {
	TenantID string
	Kind     LinkKind
	From     string
	To       string
	ToKind   ObjectKind
	Created  time.Time
}

// Links stores memberships and ownerships.
type Links interface {
	// AddLink fails with ErrConflict if the link exists.
	AddLink(ctx context.Context, l Link) error
	// RemoveLink fails with ErrNotFound if the link does not exist.
	RemoveLink(ctx context.Context, tenantID string, kind LinkKind, from, to string) error
	// ListLinksFrom lists the links of a kind starting at from (a group's
	// members, an object's owners), ordered by To.
	ListLinksFrom(ctx context.Context, tenantID string, kind LinkKind, from string) ([]Link, error)
	// ListLinksTo lists the links of a kind ending at to (the groups an
	// object is a direct member of, the objects it owns), ordered by From.
	ListLinksTo(ctx context.Context, tenantID string, kind LinkKind, to string) ([]Link, error)
}

// AppRoleAssignment grants a principal an app role of a resource service
// principal, all within one tenant.
type AppRoleAssignment struct {
	TenantID      string
	ID            string
	PrincipalID   string
	PrincipalType ObjectKind // user, group or servicePrincipal
	ResourceID    string     // the resource service principal's object id
	AppRoleID     string     // GUID; the all-zero GUID is the default access role
	Created       time.Time
}

// AppRoleAssignments stores app role assignments.
type AppRoleAssignments interface {
	// CreateAppRoleAssignment fails with ErrConflict when the same
	// principal already holds the same role of the same resource.
	CreateAppRoleAssignment(ctx context.Context, a AppRoleAssignment) error
	GetAppRoleAssignment(ctx context.Context, tenantID, id string) (AppRoleAssignment, error)
	DeleteAppRoleAssignment(ctx context.Context, tenantID, id string) error
	// ListAppRoleAssignmentsByPrincipal lists what a principal holds, ordered by ID.
	ListAppRoleAssignmentsByPrincipal(ctx context.Context, tenantID, principalID string) ([]AppRoleAssignment, error)
	// ListAppRoleAssignmentsByResource lists what a resource has granted, ordered by ID.
	ListAppRoleAssignmentsByResource(ctx context.Context, tenantID, resourceID string) ([]AppRoleAssignment, error)
}

// AuditRecord is one entry of the append-only audit log.
type AuditRecord struct {
	Seq          int64 // assigned by the store, increasing
	Time         time.Time
	Actor        string // object id or client id of who acted; "operator" for the operator
	ActorTenant  string // the actor's home tenant id
	TargetTenant string // the tenant acted upon
	Action       string // e.g. "token.issue", "application.create"
	Target       string // what was acted upon, e.g. an object id
	Result       string // "success" or a failure code such as "AADSTS7000215"
	ClientAddr   string
	RequestID    string
	Detail       string // short, never secret
}

// AuditQuery selects audit records. Records are returned in Seq order.
type AuditQuery struct {
	// TenantID selects records whose actor or target tenant is this tenant.
	TenantID string
	// ByTenantID, with TenantID, narrows them to what principals of this
	// (other) tenant did in TenantID: actor tenant ByTenantID and target
	// tenant TenantID. What crossed a boundary, seen from either side.
	ByTenantID string
	AfterSeq   int64
	// BeforeSeq, when not 0, selects records with a lower Seq.
	BeforeSeq int64
	// Newest lists the records newest first (descending Seq): with Limit,
	// the last ones of the log, which a viewer of a long log wants without
	// reading it from the start.
	Newest bool
	Limit  int // 0 means no limit
}

// Audit stores the audit log. Records are never updated or deleted, except
// that deleting a tenant keeps its records (they are evidence).
type Audit interface {
	AppendAudit(ctx context.Context, r AuditRecord) (int64, error)
	// AppendAudits appends several records at once: all of them or, on
	// error, none.
	AppendAudits(ctx context.Context, rs []AuditRecord) error
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
}

// MaxOneTimeUseKey is the longest key, in bytes, that OneTimeUse records.
const MaxOneTimeUseKey = 512

// OneTimeUse records keys that may be used once, until they expire: the jti
// of a client assertion (which must not be accepted twice within its
// lifetime), and single-use authorization codes and refresh tokens. Keys
// share one namespace across every tenant and purpose, so callers prefix
// them with what they are (for example "assertion:" + client id + ":" + jti).
// A key derived from a credential (an authorization code, a refresh token)
// must be a hash of it, never the credential itself; hashing also keeps long
// values within MaxOneTimeUseKey.
type OneTimeUse interface {
	// UseOnce records key as used until expires. It fails with
	// ErrConflict if key is already recorded and not yet expired (an
	// expired record is replaced). Of any number of concurrent calls with
	// one key, exactly one succeeds; inside InTx, the record is part of
	// the transaction, and a rollback frees the key again.
	//
	// expires must be the last moment at which the caller would still
	// accept the thing the key stands for, clock-skew leeway included:
	// after it the key may be used again. A key is recorded exactly as
	// given (case-sensitive, bytewise). Any other failure, including an
	// empty key, a key longer than MaxOneTimeUseKey bytes, one that is
	// not valid UTF-8 or holds NUL, or an expires that is not in the
	// future, is a plain error; callers must treat every error as "do
	// not accept".
	UseOnce(ctx context.Context, key string, expires time.Time) error
	// PruneUsed deletes the records that have expired by now (expires
	// at or before now) and returns how many. Expired records do no harm
	// (UseOnce replaces them); pruning only reclaims space.
	PruneUsed(ctx context.Context, now time.Time) (int64, error)
}

// Lockout is the smart-lockout state of one user account: how many wrong
// passwords were counted, how often the account was locked in a row and
// until when. The directory owns the policy; the store only keeps the
// state, shared by every server over one database, and refuses a write
// based on a state that is no longer current, so that concurrent failed
// sign-ins are never lost.
type Lockout struct {
	TenantID string
	UserID   string // the user's object id
	// Failures counts the wrong passwords since the last successful
	// sign-in or lockout.
	Failures int
	// Lockouts counts the lockouts in a row; each lasts twice as long as
	// the one before.
	Lockouts    int
	LockedUntil time.Time // zero: never locked
	LastFailure time.Time // zero: no failure
	// Recent are digests of the last wrong passwords (keyed hashes, never
	// the passwords), opaque to the store: each is non-empty text without
	// spaces.
	Recent []string
	// Version is 0 for an account with no stored state, and moves with
	// every PutLockout.
	Version int64
}

// Lockouts stores users' smart-lockout state. Writes do not move the
// generation: nothing caches the state, and a sign-in must always see the
// latest.
type Lockouts interface {
	// GetLockout returns the account's state, a Lockout with Version 0 when
	// none is stored.
	GetLockout(ctx context.Context, tenantID, userID string) (Lockout, error)
	// PutLockout stores l if the stored state is still at l.Version (0: none
	// stored) and returns it with its new version. It fails with
	// ErrPrecondition if another write came first (read again and retry),
	// and ErrNotFound if the user does not exist. The state goes with its
	// user and tenant.
	PutLockout(ctx context.Context, l Lockout) (Lockout, error)
}

// TenantPart names the part of the store (Store.PartGeneration) that is
// a tenant's rows: its objects, links, app role assignments, role and
// deny assignments and role definitions, ARM resources. Tenant ids
// compare case-insensitively here, which can only merge parts.
func TenantPart(tenantID string) string { return "tenant/" + strings.ToLower(tenantID) }

// TenantRefPart names the part of the store that is the tenant record an
// id or domain (Store.Tenants' GetTenant) finds: a write that creates a
// tenant record (or would change one) moves the parts of its id and its
// domain, so that a lookup by a reference that another tenant now answers
// to is not served after it. Writes to a tenant's other rows leave it.
func TenantRefPart(ref string) string { return "tenantref/" + strings.ToLower(ref) }

// SubscriptionPart names the part of the store that says which tenants
// hold a subscription (Store.RBAC's TenantsBySubscription): a write that
// creates a tenant moves its subscription's part, so that a scope's owner
// read before cannot be served after a second tenant claims it.
func SubscriptionPart(subscriptionID string) string {
	return "subscription/" + strings.ToLower(subscriptionID)
}
