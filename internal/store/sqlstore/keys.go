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
	var maxSeq sql.NullInt64
	if err := r.queryRow(ctx, `SELECT MAX(seq) FROM vault_keys WHERE vault_key = ? AND name_key = ?`,
		fold(k.Vault), fold(k.Name)).Scan(&maxSeq); err != nil {
		return k, err
	}
	k.Seq = maxSeq.Int64 + 1
	if k.Created.IsZero() {
		k.Created = at
	}
	if k.Updated.IsZero() {
		k.Updated = k.Created
	}
	k.Created, k.Updated = normTime(k.Created), normTime(k.Updated)
	k.NotBefore, k.Expires = normZero(k.NotBefore), normZero(k.Expires)
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
		var vaultName string
		if err := r.queryRow(ctx, `SELECT name FROM vaults WHERE name_key = ?`, fold(k.Vault)).Scan(&vaultName); err != nil {
			return err
		}
		var name string
		var deleted int64
		err := r.queryRow(ctx, `SELECT name, CASE WHEN recovery_id IS NULL THEN 0 ELSE 1 END FROM vault_keys
WHERE vault_key = ? AND name_key = ? ORDER BY seq DESC LIMIT 1`, fold(k.Vault), fold(k.Name)).Scan(&name, &deleted)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return err
		case deleted != 0:
			return fmt.Errorf("key is deleted: %w", store.ErrConflict)
		default:
			k.Name = name
		}
		out, err = s.insertKey(ctx, r, k, now())
		return err
	})
	return out, s.fail(op+" "+k.Name, err)
}

// GetKey implements store.Keys.
func (s *Store) GetKey(ctx context.Context, vault, name, version string) (store.Key, error) {
	return s.getKey(ctx, "get key", vault, name, version, false)
}

// GetDeletedKey implements store.Keys.
func (s *Store) GetDeletedKey(ctx context.Context, vault, name string) (store.Key, error) {
	return s.getKey(ctx, "get deleted key", vault, name, "", true)
}

func (s *Store) getKey(ctx context.Context, op, vault, name, version string, deleted bool) (store.Key, error) {
	var k store.Key
	if !textOK(vault, name, version) || vault == "" || name == "" {
		return k, notFound(op)
	}
	cond := `recovery_id IS NULL`
	if deleted {
		cond = `recovery_id IS NOT NULL`
	}
	err := s.read(func(r runner) error {
		var err error
		if version == "" {
			k, err = scanKey(r.queryRow(ctx, `SELECT `+keyCols+` FROM vault_keys
WHERE vault_key = ? AND name_key = ? AND `+cond+` ORDER BY seq DESC LIMIT 1`, fold(vault), fold(name)))
		} else {
			k, err = scanKey(r.queryRow(ctx, `SELECT `+keyCols+` FROM vault_keys
WHERE vault_key = ? AND name_key = ? AND version = ? AND `+cond, fold(vault), fold(name), version))
		}
		return err
	})
	return k, s.fail(op+" "+name, err)
}

// UpdateKey implements store.Keys.
func (s *Store) UpdateKey(ctx context.Context, k store.Key) (store.Key, error) {
	const op = "update key"
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
	var out store.Key
	err = s.write(ctx, true, func(r runner) error {
		res, err := r.exec(ctx, `UPDATE vault_keys SET key_ops = ?, tags = ?, enabled = ?, nbf = ?, exp = ?, updated = ?
WHERE vault_key = ? AND name_key = ? AND version = ? AND recovery_id IS NULL`,
			ops, tags, boolInt(k.Enabled), s.nullTime(k.NotBefore), s.nullTime(k.Expires), s.bindTime(k.Updated, now()),
			fold(k.Vault), fold(k.Name), k.Version)
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		out, err = scanKey(r.queryRow(ctx, `SELECT `+keyCols+` FROM vault_keys WHERE vault_key = ? AND name_key = ? AND version = ?`,
			fold(k.Vault), fold(k.Name), k.Version))
		return err
	})
	return out, s.fail(op+" "+k.Name, err)
}

// latestKeyWhere selects the latest version of each key name in a vault.
const latestKeyWhere = `s.vault_key = ? AND s.name_key > ? AND s.seq = (SELECT MAX(seq) FROM vault_keys m WHERE m.vault_key = s.vault_key AND m.name_key = s.name_key)`

// ListKeys implements store.Keys.
func (s *Store) ListKeys(ctx context.Context, q store.KeyQuery) ([]store.Key, error) {
	return s.listKeys(ctx, "list keys", `SELECT `+prefixed(keyCols)+` FROM vault_keys s WHERE `+latestKeyWhere+
		` AND s.recovery_id IS NULL ORDER BY s.name_key`, q, fold(q.Vault), fold(q.After))
}

// ListDeletedKeys implements store.Keys.
func (s *Store) ListDeletedKeys(ctx context.Context, q store.KeyQuery) ([]store.Key, error) {
	return s.listKeys(ctx, "list deleted keys", `SELECT `+prefixed(keyCols)+` FROM vault_keys s WHERE `+latestKeyWhere+
		` AND s.recovery_id IS NOT NULL ORDER BY s.name_key`, q, fold(q.Vault), fold(q.After))
}

// ListKeyVersions implements store.Keys.
func (s *Store) ListKeyVersions(ctx context.Context, q store.KeyQuery) ([]store.Key, error) {
	return s.listKeys(ctx, "list key versions", `SELECT `+prefixed(keyCols)+` FROM vault_keys s
WHERE s.vault_key = ? AND s.name_key = ? AND s.version > ? AND s.recovery_id IS NULL ORDER BY s.version`, q, fold(q.Vault), fold(q.Name), q.After)
}

func (s *Store) listKeys(ctx context.Context, op, query string, q store.KeyQuery, args ...string) ([]store.Key, error) {
	if !textOK(args...) || q.Vault == "" {
		return nil, nil
	}
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	var out []store.Key
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, query, anys(args)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			k, err := scanKey(rows)
			if err != nil {
				return err
			}
			out = append(out, k)
		}
		return rows.Err()
	})
	return out, s.fail(op, err)
}

// latestKey reads the latest version of a name in any state.
func latestKey(ctx context.Context, r runner, vault, name string) (store.Key, error) {
	return scanKey(r.queryRow(ctx, `SELECT `+keyCols+` FROM vault_keys WHERE vault_key = ? AND name_key = ? ORDER BY seq DESC LIMIT 1`,
		fold(vault), fold(name)))
}

// DeleteKey implements store.Keys.
func (s *Store) DeleteKey(ctx context.Context, vault, name string, d store.SecretDeletion) (store.Key, error) {
	const op = "delete key"
	var out store.Key
	if !textOK(vault, name, d.RecoveryID) || vault == "" || name == "" {
		return out, notFound(op)
	}
	if d.RecoveryID == "" {
		return out, fmt.Errorf("sqlstore: %s: recovery id is required", op)
	}
	err := s.write(ctx, true, func(r runner) error {
		res, err := r.exec(ctx, `UPDATE vault_keys SET recovery_id = ?, deleted_date = ?, purge_date = ?
WHERE vault_key = ? AND name_key = ? AND recovery_id IS NULL`,
			d.RecoveryID, s.bindTime(d.DeletedDate, now()), s.bindTime(d.ScheduledPurgeDate, now()), fold(vault), fold(name))
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		out, err = latestKey(ctx, r, vault, name)
		return err
	})
	return out, s.fail(op+" "+name, err)
}

// RecoverKey implements store.Keys.
func (s *Store) RecoverKey(ctx context.Context, vault, name string) (store.Key, error) {
	const op = "recover key"
	var out store.Key
	if !textOK(vault, name) || vault == "" || name == "" {
		return out, notFound(op)
	}
	err := s.write(ctx, true, func(r runner) error {
		res, err := r.exec(ctx, `UPDATE vault_keys SET recovery_id = NULL, deleted_date = NULL, purge_date = NULL
WHERE vault_key = ? AND name_key = ? AND recovery_id IS NOT NULL`, fold(vault), fold(name))
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		out, err = latestKey(ctx, r, vault, name)
		return err
	})
	return out, s.fail(op+" "+name, err)
}

// PurgeKey implements store.Keys.
func (s *Store) PurgeKey(ctx context.Context, vault, name string) error {
	const op = "purge key"
	if !textOK(vault, name) || vault == "" || name == "" {
		return notFound(op)
	}
	err := s.write(ctx, false, func(r runner) error {
		res, err := r.exec(ctx, `DELETE FROM vault_keys WHERE vault_key = ? AND name_key = ? AND recovery_id IS NOT NULL`, fold(vault), fold(name))
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail(op+" "+name, err)
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
		if fold(v.Vault) != fold(first.Vault) || fold(v.Name) != fold(first.Name) {
			return nil, fmt.Errorf("sqlstore: %s: versions of more than one key", op)
		}
	}
	var out []store.Key
	err := s.write(ctx, true, func(r runner) error {
		var vaultName string
		if err := r.queryRow(ctx, `SELECT name FROM vaults WHERE name_key = ?`, fold(first.Vault)).Scan(&vaultName); err != nil {
			return err
		}
		var n int64
		if err := r.queryRow(ctx, `SELECT COUNT(*) FROM vault_keys WHERE vault_key = ? AND name_key = ?`,
			fold(first.Vault), fold(first.Name)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("key exists: %w", store.ErrConflict)
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
