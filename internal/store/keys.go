package store

import (
	"context"
	"time"
)

// Key is one version of a Key Vault key. As with secrets, every version of
// a name shares the deleted state: deleting a key deletes all of its
// versions, and recovering or purging it acts on all of them.
type Key struct {
	Vault   string // the vault's name (any case)
	Name    string // as given at the first version; compared case-insensitively
	Version string // 32 lower-case hex characters
	// Seq orders the versions of one name: the latest version is the one
	// with the highest Seq. Assigned by the store.
	Seq int64
	// KeyType is the JSON Web Key type of the key material: "RSA" or "EC".
	KeyType string
	// KeyOps are the operations the key permits (JWK key_ops).
	KeyOps []string
	// Public is the public half as a JSON Web Key (kty with n and e, or
	// crv, x and y): not secret.
	Public []byte
	// Private is the private key, sealed (package sealed); the store never
	// sees it in the clear.
	Private   []byte
	Tags      map[string]string
	Enabled   bool
	NotBefore time.Time // zero: none
	Expires   time.Time // zero: none
	Created   time.Time
	Updated   time.Time
	// Deleted is set when the key is soft-deleted.
	Deleted *SecretDeletion
}

// KeyQuery selects keys (the latest version of each name) or the versions
// of one name (Name) in a vault, as it selects secrets.
type KeyQuery = SecretQuery

// Keys stores the keys of vaults. A vault's keys go with the vault. The
// rules are those of the secrets in Vaults, one for one.
type Keys interface {
	// CreateKeyVersion adds a version to a key (creating the key when the
	// name is new) and returns it with Seq, Created and Updated set. It
	// fails with ErrConflict when the version exists or the key is
	// soft-deleted, and ErrNotFound when the vault does not exist.
	CreateKeyVersion(ctx context.Context, k Key) (Key, error)
	// GetKey returns one version of a key that is not deleted; version ""
	// means the latest.
	GetKey(ctx context.Context, vault, name, version string) (Key, error)
	// UpdateKey replaces KeyOps, Tags, Enabled, NotBefore and Expires of a
	// version that is not deleted, sets Updated (now when zero) and returns
	// the result.
	UpdateKey(ctx context.Context, k Key) (Key, error)
	// ListKeys returns the latest version of each key that is not deleted,
	// ordered by lower-cased name.
	ListKeys(ctx context.Context, q KeyQuery) ([]Key, error)
	// ListKeyVersions returns the versions of a key that is not deleted,
	// ordered by version. An unknown name gives an empty list.
	ListKeyVersions(ctx context.Context, q KeyQuery) ([]Key, error)
	// DeleteKey soft-deletes every version of a key and returns the latest
	// with Deleted set; ErrNotFound if there is no such key not deleted.
	DeleteKey(ctx context.Context, vault, name string, d SecretDeletion) (Key, error)
	// GetDeletedKey returns the latest version of a deleted key.
	GetDeletedKey(ctx context.Context, vault, name string) (Key, error)
	// ListDeletedKeys returns the latest version of each deleted key,
	// ordered by lower-cased name.
	ListDeletedKeys(ctx context.Context, q KeyQuery) ([]Key, error)
	// RecoverKey undeletes every version of a deleted key and returns the
	// latest.
	RecoverKey(ctx context.Context, vault, name string) (Key, error)
	// PurgeKey removes every version of a deleted key for good;
	// ErrNotFound if the key is not deleted.
	PurgeKey(ctx context.Context, vault, name string) error
	// RestoreKey stores the given versions (one name, in Seq order) as a
	// new key, all at once; ErrConflict if the name exists in any state.
	// It returns the versions as stored.
	RestoreKey(ctx context.Context, versions []Key) ([]Key, error)
}
