package arm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// ErrRoleAssignmentNotFound: RevokeRoleAssignment found no assignment of
// that id in the tenant.
var ErrRoleAssignmentNotFound = errors.New("arm: role assignment not found")

// RevokeRoleAssignment deletes the role assignment id of tenantID for a
// caller outside the wire API that has already been authorised for
// Microsoft.Authorization/roleAssignments/delete at its scope (the web
// console, package console). It is ARM's DELETE
// …/providers/Microsoft.Authorization/roleAssignments/{id} without the
// HTTP: the deletion and its audit records commit in one transaction, and
// the store's generation moves, so the RBAC engine's next decision no
// longer counts it. Each record is completed with the action and the
// assignment's id as ARM's own record names them; pass one per tenant
// that must see the revocation in its audit log.
func (h *Handler) RevokeRoleAssignment(ctx context.Context, tenantID, id string, records ...store.AuditRecord) (store.RoleAssignment, error) {
	var a store.RoleAssignment
	err := h.dir.InTx(ctx, func(dir *directory.Service) error {
		tx := dir.Store()
		var err error
		a, err = tx.GetRoleAssignment(ctx, tenantID, strings.ToLower(id))
		if errors.Is(err, store.ErrNotFound) {
			return ErrRoleAssignmentNotFound
		} else if err != nil {
			return err
		}
		if err := tx.DeleteRoleAssignment(ctx, tenantID, a.ID); err != nil {
			return err
		}
		log := audit.New(tx, h.log)
		for _, rec := range records {
			rec.Action = actionRoleAssignmentDelete
			rec.Target = extensionID(a.Scope, "roleAssignments", a.ID)
			rec.Detail = strings.TrimSpace(rec.Detail + " role=" + a.RoleDefinitionID + " principal=" + a.PrincipalID)
			if rec.Result == "" {
				rec.Result = audit.Success
			}
			if err := log.Record(ctx, rec); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
		}
		return nil
	})
	return a, err
}
