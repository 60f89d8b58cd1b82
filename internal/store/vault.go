package store

import (
	"context"
	"time"
)

// Vault is a Key Vault: a named container of secrets owned by one tenant.
// Vault names are unique across all tenants (they are DNS labels under
// vault.azure.net), compared case-insensitively.
type Vault struct {
	TenantID   string
	Name       string // as given; unique across tenants, case-insensitively
	ResourceID string // ARM resource id, /subscriptions/…/providers/Microsoft.KeyVault/vaults/{name}
	Location   string
	// SoftDeleteRetentionDays is how long a deleted secret stays
	// recoverable before it may be purged (7..90).
	SoftDeleteRetentionDays int
	EnablePurgeProtection   bool
	EnableSoftDelete        bool // always true today
	Created                 time.Time
	// Deleted is when the vault was deleted (Key Vault's vault-level soft
	// delete): zero for a live vault. A deleted vault keeps its name, its
	// secrets and its keys until it is purged (DeleteVault).
	Deleted time.Time
}

// Secret is one version of a vault secret. Every version of a name shares
// the deleted state: deleting a secret deletes all of its versions, and
// recovering or purging it acts on all of them.
type Secret struct {
	Vault   string // the vault's name (any case)
	Name    string // as given at the first set; compared case-insensitively
	Version string // 32 lower-case hex characters
	// Seq orders the versions of one name: the latest version is the one
	// with the highest Seq. Assigned by the store.
	Seq int64
	// Value is the sealed value (package sealed); the store never sees
	// plaintext.
	Value       []byte
	ContentType string
	Tags        map[string]string
	Enabled     bool
	NotBefore   time.Time // zero: none
	Expires     time.Time // zero: none
	Created     time.Time
	Updated     time.Time
	// Deleted is set when the secret is soft-deleted.
	Deleted *SecretDeletion
}

// SecretDeletion is the deleted state of a secret.
type SecretDeletion struct {
	RecoveryID         string
	DeletedDate        time.Time
	ScheduledPurgeDate time.Time
}

// SecretQuery selects secrets (the latest version of each name) or the
// versions of one name in a vault.
type SecretQuery struct {
	Vault string // required
	// Name selects the versions of one secret or key (ListSecretVersions,
	// ListKeyVersions).
	Name string
	// After is a cursor: names (lower-cased) or, for versions, version ids
	// that sort after it. Results are ordered by it.
	After string
	Limit int // 0: no limit
}

// Vaults stores vaults, their secrets and (Keys) their keys.
type Vaults interface {
	Keys

	// CreateVault fails with ErrConflict when the name is taken (in any
	// tenant) and ErrNotFound when the tenant does not exist.
	CreateVault(ctx context.Context, v Vault) error
	// GetVault finds a vault by name, case-insensitively.
	GetVault(ctx context.Context, name string) (Vault, error)
	// ListVaults lists a tenant's vaults ordered by lower-cased name.
	ListVaults(ctx context.Context, tenantID string) ([]Vault, error)
	// UpdateVault replaces the settings of an existing vault that may
	// change after creation: SoftDeleteRetentionDays and
	// EnablePurgeProtection. The vault is found by name,
	// case-insensitively; its tenant, resource id, location and creation
	// time stay. The store does not judge the change (whether purge
	// protection may be turned off is the vault package's rule); it fails
	// with ErrNotFound when there is no such vault.
	UpdateVault(ctx context.Context, v Vault) error
	// DeleteVault removes a vault, live or deleted, and every secret in
	// it for good (a purge).
	DeleteVault(ctx context.Context, name string) error
	// GetVault, ListVaults and UpdateVault see live vaults only. A deleted
	// vault is seen through these:
	//
	// SoftDeleteVault marks a live vault deleted at the time; ErrNotFound
	// when there is no live vault of the name.
	SoftDeleteVault(ctx context.Context, name string, at time.Time) error
	// RecoverVault makes a deleted vault live again; ErrNotFound when
	// there is no deleted vault of the name.
	RecoverVault(ctx context.Context, name string) error
	// GetDeletedVault finds a deleted vault by name, case-insensitively.
	GetDeletedVault(ctx context.Context, name string) (Vault, error)
	// ListDeletedVaults lists a tenant's deleted vaults ordered by
	// lower-cased name.
	ListDeletedVaults(ctx context.Context, tenantID string) ([]Vault, error)

	// CreateSecretVersion adds a version to a secret (creating the secret
	// when the name is new) and returns it with Seq, Created and Updated
	// set. It fails with ErrConflict when the version exists or the
	// secret is soft-deleted (it must be recovered or purged first), and
	// ErrNotFound when the vault does not exist.
	CreateSecretVersion(ctx context.Context, s Secret) (Secret, error)
	// GetSecret returns one version of a secret that is not deleted;
	// version "" means the latest.
	GetSecret(ctx context.Context, vault, name, version string) (Secret, error)
	// UpdateSecret replaces ContentType, Tags, Enabled, NotBefore and
	// Expires of a version that is not deleted, sets Updated (now when
	// zero) and returns the result.
	UpdateSecret(ctx context.Context, s Secret) (Secret, error)
	// ListSecrets returns the latest version of each secret that is not
	// deleted, ordered by lower-cased name.
	ListSecrets(ctx context.Context, q SecretQuery) ([]Secret, error)
	// ListSecretVersions returns the versions of a secret that is not
	// deleted, ordered by version. An unknown name gives an empty list.
	ListSecretVersions(ctx context.Context, q SecretQuery) ([]Secret, error)
	// DeleteSecret soft-deletes every version of a secret and returns the
	// latest version with Deleted set; ErrNotFound if there is no such
	// secret that is not deleted.
	DeleteSecret(ctx context.Context, vault, name string, d SecretDeletion) (Secret, error)
	// GetDeletedSecret returns the latest version of a deleted secret.
	GetDeletedSecret(ctx context.Context, vault, name string) (Secret, error)
	// ListDeletedSecrets returns the latest version of each deleted
	// secret, ordered by lower-cased name.
	ListDeletedSecrets(ctx context.Context, q SecretQuery) ([]Secret, error)
	// RecoverSecret undeletes every version of a deleted secret and
	// returns the latest.
	RecoverSecret(ctx context.Context, vault, name string) (Secret, error)
	// PurgeSecret removes every version of a deleted secret for good;
	// ErrNotFound if the secret is not deleted.
	PurgeSecret(ctx context.Context, vault, name string) error
	// RestoreSecret stores the given versions (one name, in Seq order) as
	// a new secret, all at once; ErrConflict if the name exists in any
	// state. It returns the versions as stored.
	RestoreSecret(ctx context.Context, versions []Secret) ([]Secret, error)
}
