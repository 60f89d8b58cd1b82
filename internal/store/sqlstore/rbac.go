package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// maxScopeKeys caps the scopes and principal ids one RBAC query may name,
// far above any real hierarchy or group count and far below the drivers'
// bind-parameter limits.
const maxScopeKeys = 1000

// jsonText encodes v for a JSON text column; nil slices become [].
func jsonText[T any](v []T) (string, error) {
	if v == nil {
		v = []T{}
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// jsonCol scans a JSON text column into a slice.
type jsonCol[T any] struct{ v *[]T }

func (c jsonCol[T]) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("sqlstore: cannot read JSON from %T", src)
	}
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("sqlstore: bad JSON column: %w", err)
	}
	if len(out) == 0 {
		out = nil
	}
	*c.v = out
	return nil
}

// placeholders returns "?, ?, ?" for n parameters.
func placeholders(n int) string {
	return "?" + strings.Repeat(", ?", n-1)
}

// foldAll folds keys for an IN list, dropping those no backend can hold
// (nothing can be stored under them) and duplicates.
func foldAll(keys []string) []string {
	seen := make(map[string]bool, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !textOK(k) {
			continue
		}
		k = fold(k)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, k)
	}
	return out
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner = interface{ Scan(...any) error }

// getByID reads the row of table with tenantID and id; what names it in
// errors.
func getByID[T any](ctx context.Context, s *Store, what, table, cols string, scan func(rowScanner) (T, error), tenantID, id string) (T, error) {
	var v T
	if !textOK(tenantID, id) {
		return v, notFound("get " + what)
	}
	err := s.read(func(r runner) error {
		var err error
		v, err = scan(r.queryRow(ctx, `SELECT `+cols+` FROM `+table+` WHERE tenant_id = ? AND id = ?`, tenantID, id))
		return err
	})
	return v, s.fail("get "+what+" "+id, err)
}

// deleteByID deletes the row of table with tenantID and id; what names it
// in errors.
func (s *Store) deleteByID(ctx context.Context, what, table, tenantID, id string) error {
	if !textOK(tenantID, id) {
		return notFound("delete " + what)
	}
	err := s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(tenantID)
		res, err := r.exec(ctx, `DELETE FROM `+table+` WHERE tenant_id = ? AND id = ?`, tenantID, id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail("delete "+what+" "+id, err)
}

// listRows runs query and scans every row; op names it in errors.
func listRows[T any](ctx context.Context, s *Store, op string, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	var vs []T
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			vs = append(vs, v)
		}
		return rows.Err()
	})
	return vs, s.fail(op, err)
}

func permissionsText(op string, ps []store.Permission) (string, error) {
	for _, p := range ps {
		for _, l := range [][]string{p.Actions, p.NotActions, p.DataActions, p.NotDataActions} {
			if err := checkText(op, l...); err != nil {
				return "", err
			}
		}
	}
	return jsonText(ps)
}

func principalsText(op string, ps []store.DenyPrincipal) (string, error) {
	for _, p := range ps {
		if err := checkText(op, p.ID, string(p.Type)); err != nil {
			return "", err
		}
	}
	return jsonText(ps)
}

// ---- role definitions

const roleDefCols = `tenant_id, id, name, description, permissions, assignable_scopes, created, updated, created_by`

func scanRoleDef(sc rowScanner) (store.RoleDefinition, error) {
	var d store.RoleDefinition
	err := sc.Scan(&d.TenantID, &d.ID, &d.Name, &d.Description, jsonCol[store.Permission]{&d.Permissions},
		jsonCol[string]{&d.AssignableScopes}, timeCol{&d.Created}, timeCol{&d.Updated}, &d.CreatedBy)
	return d, err
}

// CreateRoleDefinition implements store.RBAC. Zero Created and Updated are
// set to now.
func (s *Store) CreateRoleDefinition(ctx context.Context, d store.RoleDefinition) error {
	const op = "create role definition"
	if err := required(op, [2]string{"tenant id", d.TenantID}, [2]string{"id", d.ID}, [2]string{"name", d.Name}); err != nil {
		return err
	}
	if err := checkText(op, append([]string{d.TenantID, d.ID, d.Name, d.Description, d.CreatedBy}, d.AssignableScopes...)...); err != nil {
		return err
	}
	perms, err := permissionsText(op, d.Permissions)
	if err != nil {
		return err
	}
	scopes, err := jsonText(d.AssignableScopes)
	if err != nil {
		return err
	}
	n := now()
	created := s.bindTime(d.Created, n)
	updated := created
	if !d.Updated.IsZero() {
		updated = s.bindTime(d.Updated, n)
	}
	err = s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(d.TenantID)
		_, err := r.exec(ctx, `INSERT INTO role_definitions (tenant_id, id, name, name_key, description, permissions, assignable_scopes, created, updated, created_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.TenantID, d.ID, d.Name, fold(d.Name), d.Description, perms, scopes, created, updated, d.CreatedBy)
		return err
	})
	return s.fail(op+" "+d.ID, err)
}

// GetRoleDefinition implements store.RBAC.
func (s *Store) GetRoleDefinition(ctx context.Context, tenantID, id string) (store.RoleDefinition, error) {
	return getByID(ctx, s, "role definition", "role_definitions", roleDefCols, scanRoleDef, tenantID, id)
}

// UpdateRoleDefinition implements store.RBAC. A zero Updated is set to now.
func (s *Store) UpdateRoleDefinition(ctx context.Context, d store.RoleDefinition) error {
	const op = "update role definition"
	if err := required(op, [2]string{"tenant id", d.TenantID}, [2]string{"id", d.ID}, [2]string{"name", d.Name}); err != nil {
		return err
	}
	if err := checkText(op, append([]string{d.TenantID, d.ID, d.Name, d.Description}, d.AssignableScopes...)...); err != nil {
		return err
	}
	perms, err := permissionsText(op, d.Permissions)
	if err != nil {
		return err
	}
	scopes, err := jsonText(d.AssignableScopes)
	if err != nil {
		return err
	}
	err = s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(d.TenantID)
		res, err := r.exec(ctx, `UPDATE role_definitions SET name = ?, name_key = ?, description = ?, permissions = ?, assignable_scopes = ?, updated = ?
WHERE tenant_id = ? AND id = ?`,
			d.Name, fold(d.Name), d.Description, perms, scopes, s.bindTime(d.Updated, now()), d.TenantID, d.ID)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail(op+" "+d.ID, err)
}

// DeleteRoleDefinition implements store.RBAC. Assignments of the role are
// left alone (they then grant nothing); refusing to delete a role that is
// still assigned, as Azure does, is the caller's rule.
func (s *Store) DeleteRoleDefinition(ctx context.Context, tenantID, id string) error {
	return s.deleteByID(ctx, "role definition", "role_definitions", tenantID, id)
}

// ListRoleDefinitions implements store.RBAC.
func (s *Store) ListRoleDefinitions(ctx context.Context, tenantID string) ([]store.RoleDefinition, error) {
	if !textOK(tenantID) {
		return nil, nil
	}
	return listRows(ctx, s, "list role definitions", scanRoleDef,
		`SELECT `+roleDefCols+` FROM role_definitions WHERE tenant_id = ? ORDER BY id`, tenantID)
}

// ---- role assignments

const roleAssignmentCols = `tenant_id, id, scope, role_definition_id, principal_id, principal_type, principal_tenant_id, created, created_by`

func scanRoleAssignment(sc rowScanner) (store.RoleAssignment, error) {
	var (
		a     store.RoleAssignment
		ptype string
	)
	err := sc.Scan(&a.TenantID, &a.ID, &a.Scope, &a.RoleDefinitionID, &a.PrincipalID, &ptype, &a.PrincipalTenantID,
		timeCol{&a.CreatedOn}, &a.CreatedBy)
	a.PrincipalType = store.PrincipalType(ptype)
	return a, err
}

// CreateRoleAssignment implements store.RBAC. The role definition id is
// stored lower-cased (GUIDs compare case-insensitively); an empty
// PrincipalTenantID means TenantID; a zero CreatedOn is set to now.
func (s *Store) CreateRoleAssignment(ctx context.Context, a store.RoleAssignment) error {
	const op = "create role assignment"
	if err := required(op, [2]string{"tenant id", a.TenantID}, [2]string{"id", a.ID}, [2]string{"scope", a.Scope},
		[2]string{"role definition id", a.RoleDefinitionID}, [2]string{"principal id", a.PrincipalID},
		[2]string{"principal type", string(a.PrincipalType)}); err != nil {
		return err
	}
	if a.PrincipalTenantID == "" {
		a.PrincipalTenantID = a.TenantID
	}
	if err := checkText(op, a.TenantID, a.ID, a.Scope, a.RoleDefinitionID, a.PrincipalID, string(a.PrincipalType),
		a.PrincipalTenantID, a.CreatedBy); err != nil {
		return err
	}
	err := s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(a.TenantID)
		ch.tenant(a.PrincipalTenantID)
		_, err := r.exec(ctx, `INSERT INTO role_assignments (tenant_id, id, scope, scope_key, role_definition_id, principal_id, principal_type, principal_tenant_id, created, created_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.TenantID, a.ID, a.Scope, fold(a.Scope), fold(a.RoleDefinitionID), a.PrincipalID, string(a.PrincipalType),
			a.PrincipalTenantID, s.bindTime(a.CreatedOn, now()), a.CreatedBy)
		return err
	})
	return s.fail(op+" "+a.ID, err)
}

// GetRoleAssignment implements store.RBAC.
func (s *Store) GetRoleAssignment(ctx context.Context, tenantID, id string) (store.RoleAssignment, error) {
	return getByID(ctx, s, "role assignment", "role_assignments", roleAssignmentCols, scanRoleAssignment, tenantID, id)
}

// DeleteRoleAssignment implements store.RBAC.
func (s *Store) DeleteRoleAssignment(ctx context.Context, tenantID, id string) error {
	return s.deleteByID(ctx, "role assignment", "role_assignments", tenantID, id)
}

// scopeFilter appends the Scopes / ScopePrefix conditions shared by role
// and deny assignment queries. ok is false when the filter can match
// nothing.
func scopeFilter(w *strings.Builder, args []any, scopes []string, prefix string) ([]any, bool, error) {
	if scopes != nil {
		keys := foldAll(scopes)
		if len(keys) == 0 {
			return args, false, nil
		}
		if len(keys) > maxScopeKeys {
			return args, false, fmt.Errorf("sqlstore: at most %d scopes per query", maxScopeKeys)
		}
		w.WriteString(` AND scope_key IN (` + placeholders(len(keys)) + `)`)
		for _, k := range keys {
			args = append(args, k)
		}
	}
	if prefix != "" {
		key := strings.TrimSuffix(fold(prefix), "/")
		if !textOK(key) {
			return args, false, nil
		}
		// At the scope or below it on a segment boundary. substr counts
		// characters on both backends, so the length is in runes.
		below := key + "/"
		w.WriteString(` AND (scope_key = ? OR substr(scope_key, 1, ?) = ?)`)
		args = append(args, key, utf8.RuneCountInString(below), below)
	}
	return args, true, nil
}

// ListRoleAssignments implements store.RBAC.
func (s *Store) ListRoleAssignments(ctx context.Context, q store.RoleAssignmentQuery) ([]store.RoleAssignment, error) {
	const op = "list role assignments"
	if err := required(op, [2]string{"tenant id", q.TenantID}); err != nil {
		return nil, err
	}
	if !textOK(q.TenantID, q.PrincipalTenantID, q.RoleDefinitionID) {
		return nil, nil
	}
	var w strings.Builder
	w.WriteString(`SELECT ` + roleAssignmentCols + ` FROM role_assignments WHERE tenant_id = ?`)
	args := []any{q.TenantID}
	args, ok, err := scopeFilter(&w, args, q.Scopes, q.ScopePrefix)
	if err != nil || !ok {
		return nil, err
	}
	if q.PrincipalIDs != nil {
		ids := make([]string, 0, len(q.PrincipalIDs))
		for _, id := range q.PrincipalIDs {
			if textOK(id) {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return nil, nil
		}
		if len(ids) > maxScopeKeys {
			return nil, fmt.Errorf("sqlstore: %s: at most %d principal ids per query", op, maxScopeKeys)
		}
		w.WriteString(` AND principal_id IN (` + placeholders(len(ids)) + `)`)
		for _, id := range ids {
			args = append(args, id)
		}
	}
	if q.PrincipalTenantID != "" {
		w.WriteString(` AND principal_tenant_id = ?`)
		args = append(args, q.PrincipalTenantID)
	}
	if q.RoleDefinitionID != "" {
		w.WriteString(` AND role_definition_id = ?`)
		args = append(args, fold(q.RoleDefinitionID))
	}
	if q.After != "" {
		if !textOK(q.After) {
			return nil, nil
		}
		w.WriteString(` AND id > ?`)
		args = append(args, q.After)
	}
	w.WriteString(` ORDER BY id`)
	if q.Limit > 0 {
		w.WriteString(` LIMIT ?`)
		args = append(args, q.Limit)
	}
	return listRows(ctx, s, op, scanRoleAssignment, w.String(), args...)
}

// ---- deny assignments

const denyCols = `tenant_id, id, name, description, scope, permissions, principals, exclude_principals, do_not_apply_to_child_scopes, is_system_protected, created, created_by`

func scanDeny(sc rowScanner) (store.DenyAssignment, error) {
	var d store.DenyAssignment
	err := sc.Scan(&d.TenantID, &d.ID, &d.Name, &d.Description, &d.Scope, jsonCol[store.Permission]{&d.Permissions},
		jsonCol[store.DenyPrincipal]{&d.Principals}, jsonCol[store.DenyPrincipal]{&d.ExcludePrincipals},
		&d.DoNotApplyToChildScopes, &d.IsSystemProtected, timeCol{&d.CreatedOn}, &d.CreatedBy)
	return d, err
}

// CreateDenyAssignment implements store.RBAC. A zero CreatedOn is set to now.
func (s *Store) CreateDenyAssignment(ctx context.Context, d store.DenyAssignment) error {
	const op = "create deny assignment"
	if err := required(op, [2]string{"tenant id", d.TenantID}, [2]string{"id", d.ID}, [2]string{"name", d.Name},
		[2]string{"scope", d.Scope}); err != nil {
		return err
	}
	if err := checkText(op, d.TenantID, d.ID, d.Name, d.Description, d.Scope, d.CreatedBy); err != nil {
		return err
	}
	perms, err := permissionsText(op, d.Permissions)
	if err != nil {
		return err
	}
	principals, err := principalsText(op, d.Principals)
	if err != nil {
		return err
	}
	excluded, err := principalsText(op, d.ExcludePrincipals)
	if err != nil {
		return err
	}
	err = s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(d.TenantID)
		_, err := r.exec(ctx, `INSERT INTO deny_assignments (tenant_id, id, name, name_key, description, scope, scope_key, permissions, principals, exclude_principals, do_not_apply_to_child_scopes, is_system_protected, created, created_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.TenantID, d.ID, d.Name, fold(d.Name), d.Description, d.Scope, fold(d.Scope), perms, principals, excluded,
			d.DoNotApplyToChildScopes, d.IsSystemProtected, s.bindTime(d.CreatedOn, now()), d.CreatedBy)
		return err
	})
	return s.fail(op+" "+d.ID, err)
}

// GetDenyAssignment implements store.RBAC.
func (s *Store) GetDenyAssignment(ctx context.Context, tenantID, id string) (store.DenyAssignment, error) {
	return getByID(ctx, s, "deny assignment", "deny_assignments", denyCols, scanDeny, tenantID, id)
}

// DeleteDenyAssignment implements store.RBAC.
func (s *Store) DeleteDenyAssignment(ctx context.Context, tenantID, id string) error {
	return s.deleteByID(ctx, "deny assignment", "deny_assignments", tenantID, id)
}

// ListDenyAssignments implements store.RBAC.
func (s *Store) ListDenyAssignments(ctx context.Context, q store.DenyAssignmentQuery) ([]store.DenyAssignment, error) {
	const op = "list deny assignments"
	if err := required(op, [2]string{"tenant id", q.TenantID}); err != nil {
		return nil, err
	}
	if !textOK(q.TenantID) {
		return nil, nil
	}
	var w strings.Builder
	w.WriteString(`SELECT ` + denyCols + ` FROM deny_assignments WHERE tenant_id = ?`)
	args, ok, err := scopeFilter(&w, []any{q.TenantID}, q.Scopes, q.ScopePrefix)
	if err != nil || !ok {
		return nil, err
	}
	w.WriteString(` ORDER BY id`)
	return listRows(ctx, s, op, scanDeny, w.String(), args...)
}

// TenantsBySubscription implements store.RBAC.
func (s *Store) TenantsBySubscription(ctx context.Context, subscriptionID string) ([]string, error) {
	if subscriptionID == "" || !textOK(subscriptionID) {
		return nil, nil
	}
	return listRows(ctx, s, "tenants by subscription", func(sc rowScanner) (string, error) {
		var id string
		err := sc.Scan(&id)
		return id, err
	}, `SELECT id FROM tenants WHERE lower(subscription_id) = ? ORDER BY id`, strings.ToLower(subscriptionID))
}
