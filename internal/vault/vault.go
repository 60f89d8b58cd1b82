// Package vault is the Key Vault secrets data plane: the vaults of each
// tenant (created by the resource manager through Service) and the HTTP
// surface that unmodified azsecrets clients talk to at
// https://{vault}.vault.azure.net (or https://{vault}.vault.<custom domain>).
//
// Secret values are sealed (package sealed) under the key-encryption key
// with additional data that binds each value to its vault, name and
// version; the store only ever holds ciphertext. Backups are sealed blobs
// bound to the vault's tenant. Every request is authenticated with a token
// of the vault's tenant for Key Vault, authorized per data action by the
// Authorizer (Azure RBAC), and audited without the value.
package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// Key Vault's resource identifiers: the v1 audience and the application id
// (the v2 audience).
const (
	Resource = "https://vault.azure.net"
	AppID    = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
)

// The data actions of the secrets data plane, as Azure RBAC names them.
const (
	ActionGetSecret    = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
	ActionSetSecret    = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
	ActionReadMetadata = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
	ActionUpdate       = "Microsoft.KeyVault/vaults/secrets/update/action"
	ActionDelete       = "Microsoft.KeyVault/vaults/secrets/delete"
	ActionRecover      = "Microsoft.KeyVault/vaults/secrets/recover/action"
	ActionPurge        = "Microsoft.KeyVault/vaults/secrets/purge/action"
	ActionBackup       = "Microsoft.KeyVault/vaults/secrets/backup/action"
	ActionRestore      = "Microsoft.KeyVault/vaults/secrets/restore/action"
)

// Verifier checks bearer tokens (sts.Verifier satisfies it).
type Verifier interface {
	Verify(ctx context.Context, raw string, audiences ...string) (token.Claims, error)
}

// Access is one request for a data action, as the Authorizer sees it.
type Access struct {
	PrincipalID       string // the caller's object id (oid)
	PrincipalTenantID string // the caller's home tenant
	TenantID          string // the vault's tenant: the owner of Scope
	DataAction        string // e.g. ActionGetSecret
	// Scope is the vault's resource id, or the resource id of one secret
	// (vault resource id + "/secrets/{name}").
	Scope string
}

// Authorizer decides data actions (Azure RBAC). An error means "could not
// decide" and is answered with a failure, never as allowed; reason
// explains a refusal (it goes into Key Vault's DecisionReason).
type Authorizer interface {
	Authorize(ctx context.Context, a Access) (allowed bool, reason string, err error)
}

// Config holds the dependencies of Service.
type Config struct {
	Store      store.Store
	KEK        []byte // 32 bytes (pki.Secrets.KEK)
	Verifier   Verifier
	Authorizer Authorizer
	Audit      *audit.Log
	Logger     *slog.Logger     // default: discard
	Now        func() time.Time // default: time.Now
	// LoginBase returns the base URL of the token service the 401
	// challenge sends clients to, e.g. "https://login.microsoftonline.com"
	// (the default when nil).
	LoginBase func(r *http.Request) string
}

// Service owns vaults and serves the secrets data plane.
type Service struct {
	st        store.Store
	kek       []byte
	verifier  Verifier
	authz     Authorizer
	audit     *audit.Log
	log       *slog.Logger
	now       func() time.Time
	loginBase func(r *http.Request) string

	// Reads on every request, kept until the store's generation moves
	// (any committed write; see package gencache). Secrets are cached as
	// stored, sealed.
	vaultByName *gencache.Cache[string, store.Vault]
	secretByKey *gencache.Cache[secretKey, store.Secret]
	keyByKey    *gencache.Cache[secretKey, store.Key]
}

// secretKey names one cached secret read: version "" is the latest.
type secretKey struct{ vault, name, version string }

// Bounds of the read caches. A sealed value is at most about 25 KiB, so
// the secret cache holds at most about 25 MiB.
const (
	maxCachedVaults  = 10_000
	maxCachedSecrets = 1_000
)

// New returns a Service. It panics when a required dependency is missing:
// that is a wiring bug, and failing closed beats serving without checks.
func New(cfg Config) *Service {
	if cfg.Store == nil || len(cfg.KEK) != 32 || cfg.Verifier == nil || cfg.Authorizer == nil || cfg.Audit == nil {
		panic("vault: Config needs Store, a 32-byte KEK, Verifier, Authorizer and Audit")
	}
	s := &Service{st: cfg.Store, kek: cfg.KEK, verifier: cfg.Verifier, authz: cfg.Authorizer, audit: cfg.Audit,
		log: cfg.Logger, now: cfg.Now, loginBase: cfg.LoginBase,
		vaultByName: gencache.New[string, store.Vault](cfg.Store, maxCachedVaults),
		secretByKey: gencache.New[secretKey, store.Secret](cfg.Store, maxCachedSecrets),
		keyByKey:    gencache.New[secretKey, store.Key](cfg.Store, maxCachedSecrets)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.loginBase == nil {
		s.loginBase = func(*http.Request) string { return "https://login.microsoftonline.com" }
	}
	return s
}

// Errors of the vault management calls.
var (
	ErrInvalid  = errors.New("vault: invalid parameter")
	ErrNotFound = errors.New("vault: not found")
	ErrConflict = errors.New("vault: name is taken")
)

// vaultName is Key Vault's rule: 3-24 characters, letters, digits and
// dashes, starting with a letter, ending with a letter or digit, no "--".
var vaultName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)

// ValidName reports whether name follows Key Vault's naming rule. The
// resource manager checks names with it before it creates a vault.
func ValidName(name string) bool {
	return vaultName.MatchString(name) && !strings.Contains(name, "--")
}

// VaultSpec is what creating a vault takes.
type VaultSpec struct {
	TenantID      string
	Name          string
	ResourceGroup string
	Location      string
	// SoftDeleteRetentionDays is 7..90; 0 means 90.
	SoftDeleteRetentionDays int
	EnablePurgeProtection   bool
}

// RuleError is a refusal under one of Key Vault's rules for a vault's
// settings. Message is what Azure's Key Vault resource provider answers,
// word for word, so that the resource manager passes it on unchanged. It
// matches ErrInvalid with errors.Is.
type RuleError struct{ Message string }

func (e *RuleError) Error() string { return "vault: " + e.Message }

// Is makes a RuleError an ErrInvalid.
func (e *RuleError) Is(target error) bool { return target == ErrInvalid }

// The rules of a vault's soft-delete settings.
var (
	// ErrRetentionRange: softDeleteRetentionInDays is 7..90.
	ErrRetentionRange error = &RuleError{"The value of softDeleteRetentionInDays must be between 7 and 90, inclusive."}
	// ErrRetentionFixed: the retention is set once, when the vault is
	// created, and never changes (Azure: "Once set, the retention policy
	// interval cannot be changed").
	ErrRetentionFixed error = &RuleError{`The property "softDeleteRetentionInDays" has been set already and it can't be modified.`}
	// ErrPurgeProtectionIrreversible: enablePurgeProtection accepts only
	// true. Azure refuses false outright, on creation as on update, so
	// that a vault's purge protection, once on, can never be turned off.
	ErrPurgeProtectionIrreversible error = &RuleError{`The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection for a vault is an irreversible action.`}
)

// DefaultRetentionDays is the soft-delete retention of a vault created
// without one, as in Azure.
const DefaultRetentionDays = 90

// CreationSettings checks the soft-delete settings of a vault about to be
// created (nil: not given) and returns what the vault gets: the retention
// (DefaultRetentionDays when not given) and whether purge protection is on.
func CreationSettings(retentionDays *int, purgeProtection *bool) (int, bool, error) {
	days := DefaultRetentionDays
	if retentionDays != nil {
		days = *retentionDays
	}
	if days < 7 || days > 90 {
		return 0, false, ErrRetentionRange
	}
	if purgeProtection != nil && !*purgeProtection {
		return 0, false, ErrPurgeProtectionIrreversible
	}
	return days, purgeProtection != nil, nil
}

// VaultUpdate is what a PUT on an existing vault asks of its soft-delete
// settings; nil leaves a setting as it is.
type VaultUpdate struct {
	SoftDeleteRetentionDays *int
	EnablePurgeProtection   *bool
}

// ApplyUpdate returns v with u applied under Azure's rules: the retention
// may be restated but not changed, and purge protection may be turned on
// (at any time) but never off.
func ApplyUpdate(v store.Vault, u VaultUpdate) (store.Vault, error) {
	if d := u.SoftDeleteRetentionDays; d != nil && *d != v.SoftDeleteRetentionDays {
		if *d < 7 || *d > 90 {
			return v, ErrRetentionRange
		}
		return v, ErrRetentionFixed
	}
	if p := u.EnablePurgeProtection; p != nil {
		if !*p {
			return v, ErrPurgeProtectionIrreversible
		}
		v.EnablePurgeProtection = true
	}
	return v, nil
}

// UpdateVault applies u to the tenant's vault name in st (the store, or a
// transaction of it: the resource manager updates a vault in the
// transaction that also writes its resource record and audit record). It
// returns the vault as stored; ErrNotFound when the tenant has no such
// vault.
func UpdateVault(ctx context.Context, st store.Vaults, tenantID, name string, u VaultUpdate) (store.Vault, error) {
	v, err := st.GetVault(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !strings.EqualFold(v.TenantID, tenantID)) {
		return store.Vault{}, fmt.Errorf("%w: vault %s", ErrNotFound, name)
	} else if err != nil {
		return store.Vault{}, err
	}
	next, err := ApplyUpdate(v, u)
	if err != nil {
		return store.Vault{}, err
	}
	if next == v {
		return v, nil
	}
	if err := st.UpdateVault(ctx, next); errors.Is(err, store.ErrNotFound) {
		return store.Vault{}, fmt.Errorf("%w: vault %s", ErrNotFound, name)
	} else if err != nil {
		return store.Vault{}, err
	}
	return st.GetVault(ctx, name)
}

// UpdateVault changes the soft-delete settings of a tenant's vault (see
// the package function UpdateVault).
func (s *Service) UpdateVault(ctx context.Context, tenantID, name string, u VaultUpdate) (store.Vault, error) {
	return UpdateVault(ctx, s.st, tenantID, name, u)
}

// CreateVault creates a vault in a tenant's default subscription. Vault
// names are global. Soft delete of vaults themselves is not implemented:
// DeleteVault removes a vault and its secrets at once.
func (s *Service) CreateVault(ctx context.Context, spec VaultSpec) (store.Vault, error) {
	if !ValidName(spec.Name) {
		return store.Vault{}, fmt.Errorf("%w: vault name %q must be 3-24 letters, digits and dashes, start with a letter and end with a letter or digit", ErrInvalid, spec.Name)
	}
	days := spec.SoftDeleteRetentionDays
	if days == 0 {
		days = DefaultRetentionDays
	}
	if days < 7 || days > 90 {
		return store.Vault{}, ErrRetentionRange
	}
	rg := spec.ResourceGroup
	if rg == "" {
		rg = "default"
	}
	loc := spec.Location
	if loc == "" {
		loc = "westeurope"
	}
	t, err := s.st.GetTenant(ctx, spec.TenantID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Vault{}, fmt.Errorf("%w: tenant %s", ErrNotFound, spec.TenantID)
	}
	if err != nil {
		return store.Vault{}, err
	}
	v := store.Vault{
		TenantID:                t.ID,
		Name:                    spec.Name,
		ResourceID:              "/subscriptions/" + t.SubscriptionID + "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/vaults/" + spec.Name,
		Location:                loc,
		SoftDeleteRetentionDays: days,
		EnablePurgeProtection:   spec.EnablePurgeProtection,
		EnableSoftDelete:        true,
		Created:                 s.now(),
	}
	if err := s.st.CreateVault(ctx, v); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.Vault{}, fmt.Errorf("%w: %s", ErrConflict, spec.Name)
		}
		return store.Vault{}, err
	}
	return s.st.GetVault(ctx, v.Name)
}

// GetVault returns a vault by name; ErrNotFound also when it belongs to
// another tenant than tenantID.
func (s *Service) GetVault(ctx context.Context, tenantID, name string) (store.Vault, error) {
	v, err := s.st.GetVault(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !strings.EqualFold(v.TenantID, tenantID)) {
		return store.Vault{}, fmt.Errorf("%w: vault %s", ErrNotFound, name)
	}
	return v, err
}

// DeleteVault removes a tenant's vault and all its secrets for good (vault
// soft delete is out of scope for now).
func (s *Service) DeleteVault(ctx context.Context, tenantID, name string) error {
	if _, err := s.GetVault(ctx, tenantID, name); err != nil {
		return err
	}
	return s.st.DeleteVault(ctx, name)
}

// lookupVault is GetVault by name, cached. Names are case-insensitive.
func (s *Service) lookupVault(ctx context.Context, name string) (store.Vault, error) {
	return s.vaultByName.Get(strings.ToLower(name), func() (store.Vault, error) { return s.st.GetVault(ctx, name) })
}

// lookupSecret is GetSecret, cached; the result's slices and maps are
// shared and must not be modified.
func (s *Service) lookupSecret(ctx context.Context, vault, name, version string) (store.Secret, error) {
	k := secretKey{strings.ToLower(vault), strings.ToLower(name), version}
	return s.secretByKey.Get(k, func() (store.Secret, error) { return s.st.GetSecret(ctx, vault, name, version) })
}
