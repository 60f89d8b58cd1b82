package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

const objectCols = `tenant_id, id, kind, app_id, display_name, names, data, version, created, updated`

func scanObject(sc interface{ Scan(...any) error }) (store.Object, error) {
	var (
		o     store.Object
		kind  string
		appID sql.NullString
		names string
	)
	err := sc.Scan(&o.TenantID, &o.ID, &kind, &appID, &o.DisplayName, &names, &o.Data, &o.Version,
		timeCol{&o.Created}, timeCol{&o.Updated})
	if err != nil {
		return o, err
	}
	o.Kind = store.ObjectKind(kind)
	o.AppID = appID.String
	if len(o.Data) == 0 {
		o.Data = nil
	}
	if err := json.Unmarshal([]byte(names), &o.Names); err != nil {
		return o, fmt.Errorf("object %s: names column: %w", o.ID, err)
	}
	if len(o.Names) == 0 {
		o.Names = nil
	}
	return o, nil
}

// encodeNames is how Object.Names are kept on the object row: as given, in
// order, so they read back exactly. The object_names table holds the folded
// keys that enforce uniqueness and serve lookups.
func encodeNames(names []string) (string, error) {
	if len(names) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(names)
	return string(b), err
}

// nameKeys returns the distinct folded keys of names. Two Names of one
// object that differ only in case are one key, not a conflict with itself.
// Empty names are not keys: nothing can be looked up by them.
func nameKeys(names []string) []string {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if n == "" {
			continue
		}
		keys = append(keys, fold(n))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// nullable stores "" as NULL, so that the unique appId indexes ignore
// objects without an appId.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func checkObject(op string, o store.Object) error {
	if err := required(op, [2]string{"tenant id", o.TenantID}, [2]string{"id", o.ID}, [2]string{"kind", string(o.Kind)}); err != nil {
		return err
	}
	return checkText(op, append([]string{o.TenantID, o.ID, string(o.Kind), o.AppID, o.DisplayName}, o.Names...)...)
}

// insertNames adds the name keys of an object in one statement.
func insertNames(ctx context.Context, r runner, o store.Object, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO object_names (tenant_id, kind, name_key, object_id) VALUES `)
	args := make([]any, 0, 4*len(keys))
	for i, k := range keys {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?)")
		args = append(args, o.TenantID, string(o.Kind), k, o.ID)
	}
	_, err := r.exec(ctx, q.String(), args...)
	return err
}

// CreateObject implements store.Objects. Version is always stored as 1; a
// zero Created is set to now and a zero Updated to Created.
func (s *Store) CreateObject(ctx context.Context, o store.Object) error {
	const op = "create object"
	if err := checkObject(op, o); err != nil {
		return err
	}
	names, err := encodeNames(o.Names)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	keys := nameKeys(o.Names)
	if o.Data == nil {
		o.Data = []byte{}
	}
	created := normTime(o.Created)
	if o.Created.IsZero() {
		created = now()
	}
	updated := o.Updated
	if updated.IsZero() {
		updated = created
	}
	err = s.writeParts(ctx, len(keys) > 0, func(r runner, ch *changes) error {
		ch.tenant(o.TenantID)
		_, err := r.exec(ctx, `INSERT INTO objects (tenant_id, id, kind, app_id, display_name, display_name_key, names, data, version, created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
			o.TenantID, o.ID, string(o.Kind), nullable(o.AppID), o.DisplayName, fold(o.DisplayName), names, o.Data,
			s.bindTime(created, created), s.bindTime(updated, created))
		if err != nil {
			return err
		}
		return insertNames(ctx, r, o, keys)
	})
	return s.fail(fmt.Sprintf("%s %s %s", op, o.Kind, o.ID), err)
}

// GetObject implements store.Objects.
func (s *Store) GetObject(ctx context.Context, tenantID string, kind store.ObjectKind, id string) (store.Object, error) {
	var o store.Object
	if !textOK(tenantID, string(kind), id) {
		return o, notFound("get object")
	}
	err := s.read(func(r runner) error {
		var err error
		o, err = scanObject(r.queryRow(ctx, `SELECT `+objectCols+` FROM objects WHERE tenant_id = ? AND kind = ? AND id = ?`,
			tenantID, string(kind), id))
		return err
	})
	return o, s.fail(fmt.Sprintf("get object %s %s", kind, id), err)
}

// UpdateObject implements store.Objects. TenantID, Kind and ID select the
// object; AppID and Created are not changed; Updated is set to now.
func (s *Store) UpdateObject(ctx context.Context, o store.Object) (store.Object, error) {
	const op = "update object"
	if err := checkObject(op, o); err != nil {
		return store.Object{}, err
	}
	names, err := encodeNames(o.Names)
	if err != nil {
		return store.Object{}, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	if o.Data == nil {
		o.Data = []byte{}
	}
	var out store.Object
	err = s.writeParts(ctx, true, func(r runner, ch *changes) error {
		ch.tenant(o.TenantID)
		// The version check and the increment are one statement, so two
		// updates from the same version cannot both succeed: the second
		// waits for the first's row lock and then matches no row.
		var err error
		out, err = scanObject(r.queryRow(ctx, `UPDATE objects
SET display_name = ?, display_name_key = ?, names = ?, data = ?, version = version + 1, updated = ?
WHERE tenant_id = ? AND kind = ? AND id = ? AND version = ?
RETURNING `+objectCols,
			o.DisplayName, fold(o.DisplayName), names, o.Data, s.d.BindTime(now()),
			o.TenantID, string(o.Kind), o.ID, o.Version))
		if errors.Is(err, sql.ErrNoRows) {
			var v int64
			err := r.queryRow(ctx, `SELECT version FROM objects WHERE tenant_id = ? AND kind = ? AND id = ?`,
				o.TenantID, string(o.Kind), o.ID).Scan(&v)
			if err != nil {
				return err // sql.ErrNoRows: the object is gone
			}
			return fmt.Errorf("%w: stored version is %d, update was based on %d", store.ErrPrecondition, v, o.Version)
		}
		if err != nil {
			return err
		}
		if _, err := r.exec(ctx, `DELETE FROM object_names WHERE tenant_id = ? AND object_id = ?`, o.TenantID, o.ID); err != nil {
			return err
		}
		return insertNames(ctx, r, out, nameKeys(out.Names))
	})
	if err != nil {
		return store.Object{}, s.fail(fmt.Sprintf("%s %s %s", op, o.Kind, o.ID), err)
	}
	return out, nil
}

// DeleteObject implements store.Objects. The object's names, links and
// app role assignments go with it through ON DELETE CASCADE.
func (s *Store) DeleteObject(ctx context.Context, tenantID string, kind store.ObjectKind, id string) error {
	if !textOK(tenantID, string(kind), id) {
		return notFound("delete object")
	}
	err := s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(tenantID)
		res, err := r.exec(ctx, `DELETE FROM objects WHERE tenant_id = ? AND kind = ? AND id = ?`, tenantID, string(kind), id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail(fmt.Sprintf("delete object %s %s", kind, id), err)
}

// maxIDsPerQuery bounds the bind parameters of one IN list, well under
// every backend's limit (SQLite 32766, PostgreSQL 65535).
const maxIDsPerQuery = 500

// ListObjects implements store.Objects. Empty IDs (nil or not) do not
// filter. An IDs filter longer than one query can carry is split into
// sorted chunks whose results, being ID ranges, concatenate in order.
func (s *Store) ListObjects(ctx context.Context, q store.ObjectQuery) ([]store.Object, error) {
	const op = "list objects"
	if q.Kind == "" {
		return nil, fmt.Errorf("sqlstore: %s: kind is required", op)
	}
	if q.TenantID == "" && (q.AppID == "" || (q.Kind != store.KindApplication && q.Kind != store.KindServicePrincipal)) {
		return nil, fmt.Errorf("sqlstore: %s: tenant id is required unless looking up applications or service principals by appId", op)
	}
	if q.Limit < 0 {
		return nil, fmt.Errorf("sqlstore: %s: negative limit %d", op, q.Limit)
	}
	if !textOK(q.After) {
		return nil, fmt.Errorf("sqlstore: %s: cursor is not valid UTF-8 or contains NUL", op)
	}
	if !textOK(q.TenantID, string(q.Kind), q.AppID, q.DisplayName, q.DisplayNamePrefix, q.Name) {
		return nil, nil // nothing was stored under such a key
	}
	if len(q.IDs) == 0 {
		out, err := s.listObjects(ctx, q, nil)
		return out, s.fail(op, err)
	}
	ids := slices.Clone(q.IDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	ids = slices.DeleteFunc(ids, func(id string) bool { return (q.After != "" && id <= q.After) || !textOK(id) })
	var out []store.Object
	for chunk := range slices.Chunk(ids, maxIDsPerQuery) {
		got, err := s.listObjects(ctx, q, chunk)
		if err != nil {
			return nil, s.fail(op, err)
		}
		out = append(out, got...)
		if q.Limit > 0 && len(out) >= q.Limit {
			return out[:q.Limit], nil
		}
	}
	return out, nil
}

// listObjects runs one query of ListObjects, restricted to ids if given.
func (s *Store) listObjects(ctx context.Context, q store.ObjectQuery, ids []string) ([]store.Object, error) {
	var (
		w    strings.Builder
		args []any
	)
	if q.TenantID == "" {
		// Across tenants, by appId (ListObjects checked). A literal kind
		// lets both planners use the partial indexes on appIds; it is one
		// of the store's constants, never input.
		switch q.Kind {
		case store.KindApplication:
			w.WriteString(`kind = 'application'`)
		case store.KindServicePrincipal:
			w.WriteString(`kind = 'servicePrincipal'`)
		default:
			return nil, fmt.Errorf("sqlstore: list objects: kind %q cannot be listed across tenants", q.Kind)
		}
	} else {
		w.WriteString(`tenant_id = ? AND kind = ?`)
		args = append(args, q.TenantID, string(q.Kind))
	}
	if q.AppID != "" {
		w.WriteString(` AND app_id = ?`)
		args = append(args, q.AppID)
	}
	if q.DisplayName != "" {
		w.WriteString(` AND display_name_key = ?`)
		args = append(args, fold(q.DisplayName))
	}
	if q.DisplayNamePrefix != "" {
		w.WriteString(` AND display_name_key LIKE ? ESCAPE '\'`)
		args = append(args, likePrefix(fold(q.DisplayNamePrefix)))
	}
	if q.Name != "" {
		w.WriteString(` AND EXISTS (SELECT 1 FROM object_names n
WHERE n.tenant_id = objects.tenant_id AND n.kind = objects.kind AND n.name_key = ? AND n.object_id = objects.id)`)
		args = append(args, fold(q.Name))
	}
	if len(ids) > 0 {
		w.WriteString(` AND id IN (?` + strings.Repeat(`, ?`, len(ids)-1) + `)`)
		for _, id := range ids {
			args = append(args, id)
		}
	}
	if q.After != "" {
		w.WriteString(` AND id > ?`)
		args = append(args, q.After)
	}
	query := `SELECT ` + objectCols + ` FROM objects WHERE ` + w.String() + ` ORDER BY id, tenant_id`
	if q.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, q.Limit)
	}
	var out []store.Object
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			o, err := scanObject(rows)
			if err != nil {
				return err
			}
			out = append(out, o)
		}
		return rows.Err()
	})
	return out, err
}

// likePrefix is a LIKE pattern matching strings that start with p, with
// p's own wildcards escaped.
func likePrefix(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(p) + "%"
}
