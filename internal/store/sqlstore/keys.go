package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The keys of vaults (store.Keys), stored as the secrets are (vault.go):
// one row per version, the deleted state on every version of a name.

const keyCols = `vault_key, name, version, seq, kty, key_ops, public_jwk, private_key, tags, enabled, nbf, exp, created, updated, recovery_id, deleted_date, purge_date`

func scanKey(sc interface{ Scan(...any) error }) (store.Key, error) {
	var (
		k                  store.Key
		ops, tags          string
		enabled            int64
		recovery           sql.NullString
		deleted, purgeDate time.Time
		nbf, exp, cre, upd time.Time
	)
	err := sc.Scan(&k.Vault, &k.Name, &k.Version, &k.Seq, &k.KeyType, &ops, &k.Public, &k.Private, &tags, &enabled,
		nullTimeCol{&nbf}, nullTimeCol{&exp}, timeCol{&cre}, timeCol{&upd}, &recovery, nullTimeCol{&deleted}, nullTimeCol{&purgeDate})
	if err != nil {
		return k, err
	}
	k.Enabled = enabled != 0
	k.NotBefore, k.Expires, k.Created, k.Updated = nbf, exp, cre, upd
	if err := json.Unmarshal([]byte(ops), &k.KeyOps); err != nil {
		return k, fmt.Errorf("bad key_ops: %w", err)
	}
	if tags != "" && tags != "null" {
		if err := json.Unmarshal([]byte(tags), &k.Tags); err != nil {
			return k, fmt.Errorf("bad tags: %w", err)
		}
	}
	if recovery.Valid {
		k.Deleted = &store.SecretDeletion{RecoveryID: recovery.String, DeletedDate: deleted, ScheduledPurgeDate: purgeDate}
	}
	return k, nil
}

func encodeKeyOps(ops []string) (string, error) {
	if ops == nil {
		ops = []string{}
	}
	for _, o := range ops {
		if !textOK(o) {
			return "", fmt.Errorf("key operation is not valid UTF-8 or contains NUL")
		}
	}
	b, err := json.Marshal(ops)
	return string(b), err
}

func checkKey(op string, k store.Key) error {
	if err := required(op, [2]string{"vault", k.Vault}, [2]string{"name", k.Name}, [2]string{"version", k.Version}, [2]string{"key type", k.KeyType}); err != nil {
		return err
	}
	return checkText(op, k.Vault, k.Name, k.Version, k.KeyType)
}

// insertKey inserts one version with the next seq of its name; the caller
// has checked it.
func (s *Store) insertKey(ctx context.Context, r runner, k store.Key, at time.Time) (store.Key, error) {
	ops, err := encodeKeyOps(k.KeyOps)
	if err != nil {
		return k, err
	}
	tags, err := encodeTags(k.Tags)
	if err != nil {
		return k, err
	}
	if k.Seq, err = keyRows.nextSeq(ctx, r, k.Vault, k.Name); err != nil {
		return k, err
	}
	stampVersion(at, &k.Created, &k.Updated, &k.NotBefore, &k.Expires)
	if k.Public == nil {
		k.Public = []byte{}
	}
	if k.Private == nil {
		k.Private = []byte{}
	}
	if k.KeyOps == nil {
		k.KeyOps = []string{}
	}
	_, err = r.exec(ctx, `INSERT INTO vault_keys (vault_key, name_key, name, version, seq, kty, key_ops, public_jwk, private_key, tags, enabled, nbf, exp, created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		fold(k.Vault), fold(k.Name), k.Name, k.Version, k.Seq, k.KeyType, ops, k.Public, k.Private, tags, boolInt(k.Enabled),
		s.nullTime(k.NotBefore), s.nullTime(k.Expires), s.d.BindTime(k.Created), s.d.BindTime(k.Updated))
	k.Deleted = nil
	k.Vault = fold(k.Vault)
	return k, err
}

// CreateKeyVersion implements store.Keys. The stored name keeps the case
// of the first version; a later version given in another case joins it.
func (s *Store) CreateKeyVersion(ctx context.Context, k store.Key) (store.Key, error) {
	const op = "create key version"
	if err := checkKey(op, k); err != nil {
		return k, err
	}
	var out store.Key
	err := s.write(ctx, true, func(r runner) error {
		var err error
		if k.Name, err = keyRows.nameForVersion(ctx, r, k.Vault, k.Name); err != nil {
			return err
		}
		out, err = s.insertKey(ctx, r, k, now())
		return err
	})
	return out, s.fail(op+" "+k.Name, err)
}

// GetKey implements store.Keys.
func (s *Store) GetKey(ctx context.Context, vault, name, version string) (store.Key, error) {
	return keyRows.get(ctx, s, "get key", vault, name, version, false)
}

// GetDeletedKey implements store.Keys.
func (s *Store) GetDeletedKey(ctx context.Context, vault, name string) (store.Key, error) {
	return keyRows.get(ctx, s, "get deleted key", vault, name, "", true)
}

// UpdateKey implements store.Keys.
func (s *Store) UpdateKey(ctx context.Context, k store.Key) (store.Key, error) {
	const op = "update key"
	// Not checkKey: an update does not change the key type, so it need not
	// be given.
	if err := required(op, [2]string{"vault", k.Vault}, [2]string{"name", k.Name}, [2]string{"version", k.Version}); err != nil {
		return k, err
	}
	if err := checkText(op, k.Vault, k.Name, k.Version); err != nil {
		return k, err
	}
	ops, err := encodeKeyOps(k.KeyOps)
	if err != nil {
		return k, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	tags, err := encodeTags(k.Tags)
	if err != nil {
		return k, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return keyRows.update(ctx, s, op, k.Vault, k.Name, k.Version, `key_ops = ?, tags = ?, enabled = ?, nbf = ?, exp = ?, updated = ?`,
		ops, tags, boolInt(k.Enabled), s.nullTime(k.NotBefore), s.nullTime(k.Expires), s.bindTime(k.Updated, now()))
}

// ListKeys implements store.Keys.
func (s *Store) ListKeys(ctx context.Context, q store.KeyQuery) ([]store.Key, error) {
	return keyRows.listLatest(ctx, s, "list keys", q, false)
}

// ListDeletedKeys implements store.Keys.
func (s *Store) ListDeletedKeys(ctx context.Context, q store.KeyQuery) ([]store.Key, error) {
	return keyRows.listLatest(ctx, s, "list deleted keys", q, true)
}

// ListKeyVersions implements store.Keys.
func (s *Store) ListKeyVersions(ctx context.Context, q store.KeyQuery) ([]store.Key, error) {
	return keyRows.listVersions(ctx, s, "list key versions", q)
}

// DeleteKey implements store.Keys.
func (s *Store) DeleteKey(ctx context.Context, vault, name string, d store.SecretDeletion) (store.Key, error) {
	return keyRows.delete(ctx, s, "delete key", vault, name, d)
}

// RecoverKey implements store.Keys.
func (s *Store) RecoverKey(ctx context.Context, vault, name string) (store.Key, error) {
	return keyRows.recover(ctx, s, "recover key", vault, name)
}

// PurgeKey implements store.Keys.
func (s *Store) PurgeKey(ctx context.Context, vault, name string) error {
	return keyRows.purge(ctx, s, "purge key", vault, name)
}

// RestoreKey implements store.Keys.
func (s *Store) RestoreKey(ctx context.Context, versions []store.Key) ([]store.Key, error) {
	const op = "restore key"
	if len(versions) == 0 {
		return nil, fmt.Errorf("sqlstore: %s: no versions", op)
	}
	first := versions[0]
	for _, v := range versions {
		if err := checkKey(op, v); err != nil {
			return nil, err
		}
		if err := keyRows.oneName(op, first.Vault, first.Name, v.Vault, v.Name); err != nil {
			return nil, err
		}
	}
	var out []store.Key
	err := s.write(ctx, true, func(r runner) error {
		// Unlike a secret's, a key's restore names a missing vault
		// (ErrNotFound) before anything else.
		if err := vaultExists(ctx, r, first.Vault); err != nil {
			return err
		}
		if err := keyRows.mustBeNew(ctx, r, first.Vault, first.Name); err != nil {
			return err
		}
		at := now()
		for _, v := range versions {
			v.Name = first.Name
			k, err := s.insertKey(ctx, r, v, at)
			if err != nil {
				return err
			}
			out = append(out, k)
		}
		return nil
	})
	return out, s.fail(op+" "+first.Name, err)
}
