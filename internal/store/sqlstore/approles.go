package sqlstore

import (
	"context"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

const appRoleCols = `tenant_id, id, principal_id, principal_type, resource_id, app_role_id, created`

func scanAppRole(sc interface{ Scan(...any) error }) (store.AppRoleAssignment, error) {
	var (
		a     store.AppRoleAssignment
		ptype string
	)
	err := sc.Scan(&a.TenantID, &a.ID, &a.PrincipalID, &ptype, &a.ResourceID, &a.AppRoleID, timeCol{&a.Created})
	a.PrincipalType = store.ObjectKind(ptype)
	return a, err
}

// CreateAppRoleAssignment implements store.AppRoleAssignments. The id is
// unique per tenant; principal and resource must be objects of the tenant
// (a missing one is ErrNotFound). A zero Created is set to now.
func (s *Store) CreateAppRoleAssignment(ctx context.Context, a store.AppRoleAssignment) error {
	const op = "create app role assignment"
	if err := required(op, [2]string{"tenant id", a.TenantID}, [2]string{"id", a.ID}, [2]string{"principal id", a.PrincipalID},
		[2]string{"resource id", a.ResourceID}, [2]string{"app role id", a.AppRoleID}); err != nil {
		return err
	}
	if err := checkText(op, a.TenantID, a.ID, a.PrincipalID, string(a.PrincipalType), a.ResourceID, a.AppRoleID); err != nil {
		return err
	}
	err := s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(a.TenantID)
		_, err := r.exec(ctx, `INSERT INTO app_role_assignments (`+appRoleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			a.TenantID, a.ID, a.PrincipalID, string(a.PrincipalType), a.ResourceID, a.AppRoleID, s.bindTime(a.Created, now()))
		return err
	})
	return s.fail(op+" "+a.ID, err)
}

// GetAppRoleAssignment implements store.AppRoleAssignments.
func (s *Store) GetAppRoleAssignment(ctx context.Context, tenantID, id string) (store.AppRoleAssignment, error) {
	var a store.AppRoleAssignment
	if !textOK(tenantID, id) {
		return a, notFound("get app role assignment")
	}
	err := s.read(func(r runner) error {
		var err error
		a, err = scanAppRole(r.queryRow(ctx, `SELECT `+appRoleCols+` FROM app_role_assignments WHERE tenant_id = ? AND id = ?`, tenantID, id))
		return err
	})
	return a, s.fail("get app role assignment "+id, err)
}

// DeleteAppRoleAssignment implements store.AppRoleAssignments.
func (s *Store) DeleteAppRoleAssignment(ctx context.Context, tenantID, id string) error {
	if !textOK(tenantID, id) {
		return notFound("delete app role assignment")
	}
	err := s.writeParts(ctx, false, func(r runner, ch *changes) error {
		ch.tenant(tenantID)
		res, err := r.exec(ctx, `DELETE FROM app_role_assignments WHERE tenant_id = ? AND id = ?`, tenantID, id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	return s.fail("delete app role assignment "+id, err)
}

// ListAppRoleAssignmentsByPrincipal implements store.AppRoleAssignments.
func (s *Store) ListAppRoleAssignmentsByPrincipal(ctx context.Context, tenantID, principalID string) ([]store.AppRoleAssignment, error) {
	as, err := s.listAppRoles(ctx, `SELECT `+appRoleCols+` FROM app_role_assignments WHERE tenant_id = ? AND principal_id = ? ORDER BY id`,
		tenantID, principalID)
	return as, s.fail("list app role assignments of principal "+principalID, err)
}

// ListAppRoleAssignmentsByResource implements store.AppRoleAssignments.
func (s *Store) ListAppRoleAssignmentsByResource(ctx context.Context, tenantID, resourceID string) ([]store.AppRoleAssignment, error) {
	as, err := s.listAppRoles(ctx, `SELECT `+appRoleCols+` FROM app_role_assignments WHERE tenant_id = ? AND resource_id = ? ORDER BY id`,
		tenantID, resourceID)
	return as, s.fail("list app role assignments of resource "+resourceID, err)
}

func (s *Store) listAppRoles(ctx context.Context, query string, args ...string) ([]store.AppRoleAssignment, error) {
	var as []store.AppRoleAssignment
	if !textOK(args...) {
		return nil, nil
	}
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, query, anys(args)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAppRole(rows)
			if err != nil {
				return err
			}
			as = append(as, a)
		}
		return rows.Err()
	})
	return as, err
}
