package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

const vaultCols = `name, tenant_id, resource_id, location, retention_days, purge_protection, soft_delete, created`

// vaultSelect are the columns scanVault reads: vaultCols and when the
// vault was deleted (NULL for a live vault).
const vaultSelect = vaultCols + `, deleted`

func scanVault(sc interface{ Scan(...any) error }) (store.Vault, error) {
	var (
		v           store.Vault
		purge, soft int64
	)
	err := sc.Scan(&v.Name, &v.TenantID, &v.ResourceID, &v.Location, &v.SoftDeleteRetentionDays, &purge, &soft, timeCol{&v.Created}, nullTimeCol{&v.Deleted})
	v.EnablePurgeProtection, v.EnableSoftDelete = purge != 0, soft != 0
	return v, err
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// CreateVault implements store.Vaults.
func (s *Store) CreateVault(ctx context.Context, v store.Vault) error {
	const op = "create vault"
	if err := required(op, [2]string{"tenant id", v.TenantID}, [2]string{"name", v.Name}); err != nil {
		return err
	}
	if err := checkText(op, v.TenantID, v.Name, v.ResourceID, v.Location); err != nil {
		return err
	}
	err := s.write(ctx, false, func(r runner) error {
		_, err := r.exec(ctx, `INSERT INTO vaults (name_key, `+vaultCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			fold(v.Name), v.Name, v.TenantID, v.ResourceID, v.Location, v.SoftDeleteRetentionDays,
			boolInt(v.EnablePurgeProtection), boolInt(v.EnableSoftDelete), s.bindTime(v.Created, now()))
		return err
	})
	return s.fail(op+" "+v.Name, err)
}

// GetVault implements store.Vaults.
func (s *Store) GetVault(ctx context.Context, name string) (store.Vault, error) {
	return s.getVault(ctx, "get vault", name, `deleted IS NULL`)
}

// getVault finds the vault called name whose row matches cond.
func (s *Store) getVault(ctx context.Context, op, name, cond string) (store.Vault, error) {
	var v store.Vault
	if !textOK(name) || name == "" {
		return v, notFound(op)
	}
	err := s.read(func(r runner) error {
		var err error
		v, err = scanVault(r.queryRow(ctx, `SELECT `+vaultSelect+` FROM vaults WHERE name_key = ? AND `+cond, fold(name)))
		return err
	})
	return v, s.fail(op+" "+name, err)
}

// ListVaults implements store.Vaults.
func (s *Store) ListVaults(ctx context.Context, tenantID string) ([]store.Vault, error) {
	return s.listVaults(ctx, "list vaults", tenantID, `deleted IS NULL`)
}

// listVaults lists the tenant's vaults whose rows match cond.
func (s *Store) listVaults(ctx context.Context, op, tenantID, cond string) ([]store.Vault, error) {
	var vs []store.Vault
	if !textOK(tenantID) {
		return nil, nil
	}
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, `SELECT `+vaultSelect+` FROM vaults WHERE tenant_id = ? AND `+cond+` ORDER BY name_key`, tenantID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scanVault(rows)
			if err != nil {
				return err
			}
			vs = append(vs, v)
		}
		return rows.Err()
	})
	return vs, s.fail(op, err)
}

// UpdateVault implements store.Vaults.
func (s *Store) UpdateVault(ctx context.Context, v store.Vault) error {
	if !textOK(v.Name) || v.Name == "" {
		return notFound("update vault")
	}
	err := s.write(ctx, false, func(r runner) error {
		res, err := r.exec(ctx, `UPDATE vaults SET retention_days = ?, purge_protection = ? WHERE name_key = ? AND deleted IS NULL`,
			v.SoftDeleteRetentionDays, boolInt(v.EnablePurgeProtection), fold(v.Name))
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail("update vault "+v.Name, err)
}

// DeleteVault implements store.Vaults. The secrets go with it (cascade).
func (s *Store) DeleteVault(ctx context.Context, name string) error {
	if !textOK(name) || name == "" {
		return notFound("delete vault")
	}
	err := s.write(ctx, true, func(r runner) error {
		// Explicitly, as well as by cascade: SQLite needs foreign keys on
		// for the cascade, and this keeps the rule in one place.
		if _, err := r.exec(ctx, `DELETE FROM vault_secrets WHERE vault_key = ?`, fold(name)); err != nil {
			return err
		}
		res, err := r.exec(ctx, `DELETE FROM vaults WHERE name_key = ?`, fold(name))
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail("delete vault "+name, err)
}

// SoftDeleteVault implements store.Vaults.
func (s *Store) SoftDeleteVault(ctx context.Context, name string, at time.Time) error {
	return s.setVaultDeleted(ctx, "soft-delete vault", name, `deleted IS NULL`, s.bindTime(at, now()))
}

// RecoverVault implements store.Vaults.
func (s *Store) RecoverVault(ctx context.Context, name string) error {
	return s.setVaultDeleted(ctx, "recover vault", name, `deleted IS NOT NULL`, nil)
}

// setVaultDeleted sets the deleted time of the vault called name whose
// row matches cond.
func (s *Store) setVaultDeleted(ctx context.Context, op, name, cond string, deleted any) error {
	if !textOK(name) || name == "" {
		return notFound(op)
	}
	err := s.write(ctx, false, func(r runner) error {
		res, err := r.exec(ctx, `UPDATE vaults SET deleted = ? WHERE name_key = ? AND `+cond, deleted, fold(name))
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail(op+" "+name, err)
}

// GetDeletedVault implements store.Vaults.
func (s *Store) GetDeletedVault(ctx context.Context, name string) (store.Vault, error) {
	return s.getVault(ctx, "get deleted vault", name, `deleted IS NOT NULL`)
}

// ListDeletedVaults implements store.Vaults.
func (s *Store) ListDeletedVaults(ctx context.Context, tenantID string) ([]store.Vault, error) {
	return s.listVaults(ctx, "list deleted vaults", tenantID, `deleted IS NOT NULL`)
}

const secretCols = `vault_key, name, version, seq, value, content_type, tags, enabled, nbf, exp, created, updated, recovery_id, deleted_date, purge_date`

// nullTimeCol scans a nullable timestamp; NULL is the zero time.
type nullTimeCol struct{ t *time.Time }

func (c nullTimeCol) Scan(src any) error {
	if src == nil {
		*c.t = time.Time{}
		return nil
	}
	return timeCol(c).Scan(src)
}

func scanSecret(sc interface{ Scan(...any) error }) (store.Secret, error) {
	var (
		sec                store.Secret
		tags               string
		enabled            int64
		recovery           sql.NullString
		deleted, purgeDate time.Time
		nbf, exp, cre, upd time.Time
	)
	err := sc.Scan(&sec.Vault, &sec.Name, &sec.Version, &sec.Seq, &sec.Value, &sec.ContentType, &tags, &enabled,
		nullTimeCol{&nbf}, nullTimeCol{&exp}, timeCol{&cre}, timeCol{&upd}, &recovery, nullTimeCol{&deleted}, nullTimeCol{&purgeDate})
	if err != nil {
		return sec, err
	}
	sec.Enabled = enabled != 0
	sec.NotBefore, sec.Expires, sec.Created, sec.Updated = nbf, exp, cre, upd
	if tags != "" && tags != "null" {
		if err := json.Unmarshal([]byte(tags), &sec.Tags); err != nil {
			return sec, fmt.Errorf("bad tags: %w", err)
		}
	}
	if recovery.Valid {
		sec.Deleted = &store.SecretDeletion{RecoveryID: recovery.String, DeletedDate: deleted, ScheduledPurgeDate: purgeDate}
	}
	return sec, nil
}

func (s *Store) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.d.BindTime(normTime(t))
}

func encodeTags(tags map[string]string) (string, error) {
	if len(tags) == 0 {
		return "{}", nil
	}
	for k, v := range tags {
		if !textOK(k, v) {
			return "", fmt.Errorf("tag text is not valid UTF-8 or contains NUL")
		}
	}
	b, err := json.Marshal(tags)
	return string(b), err
}

func checkSecret(op string, sec store.Secret) error {
	if err := required(op, [2]string{"vault", sec.Vault}, [2]string{"name", sec.Name}, [2]string{"version", sec.Version}); err != nil {
		return err
	}
	return checkText(op, sec.Vault, sec.Name, sec.Version, sec.ContentType)
}

// insertSecret inserts one version with the next seq of its name; the
// caller has checked it.
func (s *Store) insertSecret(ctx context.Context, r runner, sec store.Secret, tags string, at time.Time) (store.Secret, error) {
	var err error
	if sec.Seq, err = secretRows.nextSeq(ctx, r, sec.Vault, sec.Name); err != nil {
		return sec, err
	}
	stampVersion(at, &sec.Created, &sec.Updated, &sec.NotBefore, &sec.Expires)
	if sec.Value == nil {
		sec.Value = []byte{}
	}
	_, err = r.exec(ctx, `INSERT INTO vault_secrets (vault_key, name_key, name, version, seq, value, content_type, tags, enabled, nbf, exp, created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		fold(sec.Vault), fold(sec.Name), sec.Name, sec.Version, sec.Seq, sec.Value, sec.ContentType, tags, boolInt(sec.Enabled),
		s.nullTime(sec.NotBefore), s.nullTime(sec.Expires), s.d.BindTime(sec.Created), s.d.BindTime(sec.Updated))
	sec.Deleted = nil
	sec.Vault = fold(sec.Vault)
	return sec, err
}

func normZero(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return normTime(t)
}

// stampVersion sets the times of a version about to be inserted: created
// at when zero, updated when created when zero, all normalized.
func stampVersion(at time.Time, created, updated, nbf, exp *time.Time) {
	if created.IsZero() {
		*created = at
	}
	if updated.IsZero() {
		*updated = *created
	}
	*created, *updated = normTime(*created), normTime(*updated)
	*nbf, *exp = normZero(*nbf), normZero(*exp)
}

// CreateSecretVersion implements store.Vaults. The stored name keeps the
// case of the first version; a later version given in another case joins it.
func (s *Store) CreateSecretVersion(ctx context.Context, sec store.Secret) (store.Secret, error) {
	const op = "create secret version"
	if err := checkSecret(op, sec); err != nil {
		return sec, err
	}
	tags, err := encodeTags(sec.Tags)
	if err != nil {
		return sec, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	var out store.Secret
	err = s.write(ctx, true, func(r runner) error {
		var err error
		if sec.Name, err = secretRows.nameForVersion(ctx, r, sec.Vault, sec.Name); err != nil {
			return err
		}
		out, err = s.insertSecret(ctx, r, sec, tags, now())
		return err
	})
	return out, s.fail(op+" "+sec.Name, err)
}

// GetSecret implements store.Vaults.
func (s *Store) GetSecret(ctx context.Context, vault, name, version string) (store.Secret, error) {
	return secretRows.get(ctx, s, "get secret", vault, name, version, false)
}

// GetDeletedSecret implements store.Vaults.
func (s *Store) GetDeletedSecret(ctx context.Context, vault, name string) (store.Secret, error) {
	return secretRows.get(ctx, s, "get deleted secret", vault, name, "", true)
}

// UpdateSecret implements store.Vaults.
func (s *Store) UpdateSecret(ctx context.Context, sec store.Secret) (store.Secret, error) {
	const op = "update secret"
	if err := checkSecret(op, sec); err != nil {
		return sec, err
	}
	tags, err := encodeTags(sec.Tags)
	if err != nil {
		return sec, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return secretRows.update(ctx, s, op, sec.Vault, sec.Name, sec.Version, `content_type = ?, tags = ?, enabled = ?, nbf = ?, exp = ?, updated = ?`,
		sec.ContentType, tags, boolInt(sec.Enabled), s.nullTime(sec.NotBefore), s.nullTime(sec.Expires), s.bindTime(sec.Updated, now()))
}

// ListSecrets implements store.Vaults.
func (s *Store) ListSecrets(ctx context.Context, q store.SecretQuery) ([]store.Secret, error) {
	return secretRows.listLatest(ctx, s, "list secrets", q, false)
}

// ListDeletedSecrets implements store.Vaults.
func (s *Store) ListDeletedSecrets(ctx context.Context, q store.SecretQuery) ([]store.Secret, error) {
	return secretRows.listLatest(ctx, s, "list deleted secrets", q, true)
}

// ListSecretVersions implements store.Vaults.
func (s *Store) ListSecretVersions(ctx context.Context, q store.SecretQuery) ([]store.Secret, error) {
	return secretRows.listVersions(ctx, s, "list secret versions", q)
}

func prefixed(cols string) string {
	out := "s."
	for i := 0; i < len(cols); i++ {
		out += string(cols[i])
		if cols[i] == ' ' && i > 0 && cols[i-1] == ',' {
			out += "s."
		}
	}
	return out
}

// DeleteSecret implements store.Vaults.
func (s *Store) DeleteSecret(ctx context.Context, vault, name string, d store.SecretDeletion) (store.Secret, error) {
	return secretRows.delete(ctx, s, "delete secret", vault, name, d)
}

// RecoverSecret implements store.Vaults.
func (s *Store) RecoverSecret(ctx context.Context, vault, name string) (store.Secret, error) {
	return secretRows.recover(ctx, s, "recover secret", vault, name)
}

// PurgeSecret implements store.Vaults.
func (s *Store) PurgeSecret(ctx context.Context, vault, name string) error {
	return secretRows.purge(ctx, s, "purge secret", vault, name)
}

// RestoreSecret implements store.Vaults.
func (s *Store) RestoreSecret(ctx context.Context, versions []store.Secret) ([]store.Secret, error) {
	const op = "restore secret"
	if len(versions) == 0 {
		return nil, fmt.Errorf("sqlstore: %s: no versions", op)
	}
	first := versions[0]
	for _, v := range versions {
		if err := checkSecret(op, v); err != nil {
			return nil, err
		}
		if err := secretRows.oneName(op, first.Vault, first.Name, v.Vault, v.Name); err != nil {
			return nil, err
		}
	}
	var out []store.Secret
	err := s.write(ctx, true, func(r runner) error {
		if err := secretRows.mustBeNew(ctx, r, first.Vault, first.Name); err != nil {
			return err
		}
		at := now()
		for _, v := range versions {
			v.Name = first.Name
			tags, err := encodeTags(v.Tags)
			if err != nil {
				return err
			}
			sec, err := s.insertSecret(ctx, r, v, tags, at)
			if err != nil {
				return err
			}
			out = append(out, sec)
		}
		return nil
	})
	return out, s.fail(op+" "+first.Name, err)
}

// versioned is a table of versioned vault objects. The secrets
// (vault_secrets) and the keys (vault_keys) are stored alike: one row per
// version, ordered by seq within a name, the deleted state on every
// version of a name.
type versioned[T any] struct {
	noun  string // "secret", "key": in error text
	table string
	cols  string
	scan  func(interface{ Scan(...any) error }) (T, error)
}

var (
	secretRows = versioned[store.Secret]{noun: "secret", table: "vault_secrets", cols: secretCols, scan: scanSecret}
	keyRows    = versioned[store.Key]{noun: "key", table: "vault_keys", cols: keyCols, scan: scanKey}
)

// vaultExists fails with sql.ErrNoRows (ErrNotFound) when there is no such
// vault.
func vaultExists(ctx context.Context, r runner, vault string) error {
	var vaultName string
	return r.queryRow(ctx, `SELECT name FROM vaults WHERE name_key = ?`, fold(vault)).Scan(&vaultName)
}

// nameForVersion is the name a new version of name is stored under: the
// name's stored case when it exists. It fails when the vault does not
// exist (ErrNotFound) or the name is deleted (ErrConflict).
func (t versioned[T]) nameForVersion(ctx context.Context, r runner, vault, name string) (string, error) {
	if err := vaultExists(ctx, r, vault); err != nil {
		return name, err
	}
	var stored string
	var deleted int64
	err := r.queryRow(ctx, `SELECT name, CASE WHEN recovery_id IS NULL THEN 0 ELSE 1 END FROM `+t.table+`
WHERE vault_key = ? AND name_key = ? ORDER BY seq DESC LIMIT 1`, fold(vault), fold(name)).Scan(&stored, &deleted)
	switch {
	case err == sql.ErrNoRows:
		return name, nil
	case err != nil:
		return name, err
	case deleted != 0:
		return name, fmt.Errorf("%s is deleted: %w", t.noun, store.ErrConflict)
	}
	return stored, nil
}

// nextSeq is the seq of a new version of name.
func (t versioned[T]) nextSeq(ctx context.Context, r runner, vault, name string) (int64, error) {
	var maxSeq sql.NullInt64
	err := r.queryRow(ctx, `SELECT MAX(seq) FROM `+t.table+` WHERE vault_key = ? AND name_key = ?`, fold(vault), fold(name)).Scan(&maxSeq)
	return maxSeq.Int64 + 1, err
}

// oneName refuses a restore whose versions name more than one object.
func (t versioned[T]) oneName(op, vault, name, vVault, vName string) error {
	if fold(vVault) != fold(vault) || fold(vName) != fold(name) {
		return fmt.Errorf("sqlstore: %s: versions of more than one %s", op, t.noun)
	}
	return nil
}

// mustBeNew fails with ErrConflict when name exists in any state.
func (t versioned[T]) mustBeNew(ctx context.Context, r runner, vault, name string) error {
	var n int64
	if err := r.queryRow(ctx, `SELECT COUNT(*) FROM `+t.table+` WHERE vault_key = ? AND name_key = ?`,
		fold(vault), fold(name)).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%s exists: %w", t.noun, store.ErrConflict)
	}
	return nil
}

// get reads one version (version "": the latest) that is deleted or not.
func (t versioned[T]) get(ctx context.Context, s *Store, op, vault, name, version string, deleted bool) (T, error) {
	var out T
	if !textOK(vault, name, version) || vault == "" || name == "" {
		return out, notFound(op)
	}
	cond := `recovery_id IS NULL`
	if deleted {
		cond = `recovery_id IS NOT NULL`
	}
	err := s.read(func(r runner) error {
		var err error
		if version == "" {
			out, err = t.scan(r.queryRow(ctx, `SELECT `+t.cols+` FROM `+t.table+`
WHERE vault_key = ? AND name_key = ? AND `+cond+` ORDER BY seq DESC LIMIT 1`, fold(vault), fold(name)))
		} else {
			out, err = t.scan(r.queryRow(ctx, `SELECT `+t.cols+` FROM `+t.table+`
WHERE vault_key = ? AND name_key = ? AND version = ? AND `+cond, fold(vault), fold(name), version))
		}
		return err
	})
	return out, s.fail(op+" "+name, err)
}

// latest reads the latest version of a name in any state.
func (t versioned[T]) latest(ctx context.Context, r runner, vault, name string) (T, error) {
	return t.scan(r.queryRow(ctx, `SELECT `+t.cols+` FROM `+t.table+` WHERE vault_key = ? AND name_key = ? ORDER BY seq DESC LIMIT 1`,
		fold(vault), fold(name)))
}

// update sets the columns of set (with its args) on a version that is not
// deleted and returns it.
func (t versioned[T]) update(ctx context.Context, s *Store, op, vault, name, version, set string, args ...any) (T, error) {
	var out T
	err := s.write(ctx, true, func(r runner) error {
		res, err := r.exec(ctx, `UPDATE `+t.table+` SET `+set+`
WHERE vault_key = ? AND name_key = ? AND version = ? AND recovery_id IS NULL`, append(args, fold(vault), fold(name), version)...)
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		out, err = t.scan(r.queryRow(ctx, `SELECT `+t.cols+` FROM `+t.table+` WHERE vault_key = ? AND name_key = ? AND version = ?`,
			fold(vault), fold(name), version))
		return err
	})
	return out, s.fail(op+" "+name, err)
}

// listLatest lists the latest version of each name, deleted or not, in
// lower-cased name order after q.After.
func (t versioned[T]) listLatest(ctx context.Context, s *Store, op string, q store.SecretQuery, deleted bool) ([]T, error) {
	cond := ` AND s.recovery_id IS NULL`
	if deleted {
		cond = ` AND s.recovery_id IS NOT NULL`
	}
	return t.list(ctx, s, op, `SELECT `+prefixed(t.cols)+` FROM `+t.table+` s WHERE s.vault_key = ? AND s.name_key > ? AND s.seq = (SELECT MAX(seq) FROM `+t.table+
		` m WHERE m.vault_key = s.vault_key AND m.name_key = s.name_key)`+cond+` ORDER BY s.name_key`, q, fold(q.Vault), fold(q.After))
}

// listVersions lists the versions of q.Name that is not deleted, in
// version order after q.After.
func (t versioned[T]) listVersions(ctx context.Context, s *Store, op string, q store.SecretQuery) ([]T, error) {
	return t.list(ctx, s, op, `SELECT `+prefixed(t.cols)+` FROM `+t.table+` s
WHERE s.vault_key = ? AND s.name_key = ? AND s.version > ? AND s.recovery_id IS NULL ORDER BY s.version`, q, fold(q.Vault), fold(q.Name), q.After)
}

func (t versioned[T]) list(ctx context.Context, s *Store, op, query string, q store.SecretQuery, args ...string) ([]T, error) {
	if !textOK(args...) || q.Vault == "" {
		return nil, nil
	}
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	var out []T
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, query, anys(args)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := t.scan(rows)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, s.fail(op, err)
}

// delete soft-deletes every version of a name and returns the latest.
func (t versioned[T]) delete(ctx context.Context, s *Store, op, vault, name string, d store.SecretDeletion) (T, error) {
	var out T
	if !textOK(vault, name, d.RecoveryID) || vault == "" || name == "" {
		return out, notFound(op)
	}
	if d.RecoveryID == "" {
		return out, fmt.Errorf("sqlstore: %s: recovery id is required", op)
	}
	err := s.write(ctx, true, func(r runner) error {
		res, err := r.exec(ctx, `UPDATE `+t.table+` SET recovery_id = ?, deleted_date = ?, purge_date = ?
WHERE vault_key = ? AND name_key = ? AND recovery_id IS NULL`,
			d.RecoveryID, s.bindTime(d.DeletedDate, now()), s.bindTime(d.ScheduledPurgeDate, now()), fold(vault), fold(name))
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		out, err = t.latest(ctx, r, vault, name)
		return err
	})
	return out, s.fail(op+" "+name, err)
}

// recover undeletes every version of a deleted name and returns the
// latest.
func (t versioned[T]) recover(ctx context.Context, s *Store, op, vault, name string) (T, error) {
	var out T
	if !textOK(vault, name) || vault == "" || name == "" {
		return out, notFound(op)
	}
	err := s.write(ctx, true, func(r runner) error {
		res, err := r.exec(ctx, `UPDATE `+t.table+` SET recovery_id = NULL, deleted_date = NULL, purge_date = NULL
WHERE vault_key = ? AND name_key = ? AND recovery_id IS NOT NULL`, fold(vault), fold(name))
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		out, err = t.latest(ctx, r, vault, name)
		return err
	})
	return out, s.fail(op+" "+name, err)
}

// purge removes every version of a deleted name for good.
func (t versioned[T]) purge(ctx context.Context, s *Store, op, vault, name string) error {
	if !textOK(vault, name) || vault == "" || name == "" {
		return notFound(op)
	}
	err := s.write(ctx, false, func(r runner) error {
		res, err := r.exec(ctx, `DELETE FROM `+t.table+` WHERE vault_key = ? AND name_key = ? AND recovery_id IS NOT NULL`, fold(vault), fold(name))
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail(op+" "+name, err)
}
