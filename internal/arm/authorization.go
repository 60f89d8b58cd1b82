package arm

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The actions of Microsoft.Authorization's operations.
const (
	actionRoleDefinitionRead   = "Microsoft.Authorization/roleDefinitions/read"
	actionRoleDefinitionWrite  = "Microsoft.Authorization/roleDefinitions/write"
	actionRoleDefinitionDelete = "Microsoft.Authorization/roleDefinitions/delete"
	actionRoleAssignmentRead   = "Microsoft.Authorization/roleAssignments/read"
	actionRoleAssignmentWrite  = "Microsoft.Authorization/roleAssignments/write"
	actionRoleAssignmentDelete = "Microsoft.Authorization/roleAssignments/delete"
	actionDenyAssignmentRead   = "Microsoft.Authorization/denyAssignments/read"
)

const authProvider = "/providers/Microsoft.Authorization/"

// extensionID is the id of an extension resource below a scope.
func extensionID(scope, typ, name string) string {
	if scope == "/" {
		scope = ""
	}
	return scope + authProvider + typ + "/" + name
}

// roleDefinitionID is a role definition's id as ARM gives it: below the
// subscription of the scope it is seen from, or tenant-level.
func roleDefinitionID(sub, id string) string {
	if sub == "" {
		return authProvider + "roleDefinitions/" + id
	}
	return "/subscriptions/" + sub + authProvider + "roleDefinitions/" + id
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
}

// ---- role definitions ----

type permissionView struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

type roleDefinitionProps struct {
	RoleName         string           `json:"roleName"`
	Type             string           `json:"type"`
	Description      string           `json:"description"`
	AssignableScopes []string         `json:"assignableScopes"`
	Permissions      []permissionView `json:"permissions"`
	CreatedOn        string           `json:"createdOn,omitempty"`
	UpdatedOn        string           `json:"updatedOn,omitempty"`
	CreatedBy        *string          `json:"createdBy"`
	UpdatedBy        *string          `json:"updatedBy"`
}

type roleDefinitionView struct {
	ID         string              `json:"id"`
	Name       string              `json:"name"`
	Type       string              `json:"type"`
	Properties roleDefinitionProps `json:"properties"`
}

func roleDefinitionOf(sub string, d store.RoleDefinition, builtIn bool) roleDefinitionView {
	v := roleDefinitionView{ID: roleDefinitionID(sub, d.ID), Name: d.ID, Type: "Microsoft.Authorization/roleDefinitions",
		Properties: roleDefinitionProps{RoleName: d.Name, Type: "CustomRole", Description: d.Description,
			AssignableScopes: rp.NonNil(d.AssignableScopes), Permissions: []permissionView{},
			CreatedOn: stamp(d.Created), UpdatedOn: stamp(d.Updated)}}
	if builtIn {
		v.Properties.Type, v.Properties.AssignableScopes = "BuiltInRole", []string{"/"}
	} else {
		by := d.CreatedBy
		v.Properties.CreatedBy, v.Properties.UpdatedBy = &by, &by
	}
	for _, p := range d.Permissions {
		v.Properties.Permissions = append(v.Properties.Permissions, permissionView{Actions: rp.NonNil(p.Actions),
			NotActions: rp.NonNil(p.NotActions), DataActions: rp.NonNil(p.DataActions), NotDataActions: rp.NonNil(p.NotDataActions)})
	}
	return v
}

// filterValue extracts 'v' from a $filter term "name eq 'v'".
func filterValue(term, name string) (string, bool) {
	rest, ok := cutFold(strings.TrimSpace(term), name)
	if !ok {
		return "", false
	}
	rest, ok = cutFold(strings.TrimSpace(rest), "eq")
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	if len(rest) < 2 || rest[0] != '\'' || rest[len(rest)-1] != '\'' {
		return "", false
	}
	return strings.ReplaceAll(rest[1:len(rest)-1], "''", "'"), true
}

func cutFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// filterTerms splits a $filter on " and ".
func filterTerms(f string) []string {
	if strings.TrimSpace(f) == "" {
		return nil
	}
	var out []string
	for {
		i := strings.Index(strings.ToLower(f), " and ")
		if i < 0 {
			return append(out, strings.TrimSpace(f))
		}
		out = append(out, strings.TrimSpace(f[:i]))
		f = f[i+5:]
	}
}

func badFilter(f string) error {
	return rp.NewError(http.StatusBadRequest, "InvalidFilterInQueryString", "The filter '%s' is not supported.", rp.SafeText(f))
}

// conflictOr maps the error of a store write: ErrConflict to a 409 with
// code and message, any other to an internal error.
func conflictOr(err error, code, message string) error {
	if errors.Is(err, store.ErrConflict) {
		return rp.NewError(http.StatusConflict, code, "%s", message)
	}
	if err != nil {
		return rp.InternalError(err)
	}
	return nil
}

// writeDeleted answers a delete: 200 with what was deleted, or 204 when
// there was nothing to delete.
func writeDeleted(rq *rp.Request, found bool, v any) error {
	if !found {
		rq.W.WriteHeader(http.StatusNoContent)
		return nil
	}
	return rp.WriteJSON(rq, http.StatusOK, v)
}

// listRoleDefinitions lists the built-in roles and the tenant's custom
// roles, by id, a page at a time ($skipToken, nextLink).
func (h *Handler) listRoleDefinitions(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionRoleDefinitionRead)
	if err != nil {
		return err
	}
	var nameFilter, typeFilter string
	for _, term := range filterTerms(rq.R.URL.Query().Get("$filter")) {
		if v, ok := filterValue(term, "roleName"); ok {
			nameFilter = v
		} else if v, ok := filterValue(term, "type"); ok {
			typeFilter = v
		} else {
			return badFilter(term)
		}
	}
	out := []roleDefinitionView{}
	add := func(v roleDefinitionView) {
		if (nameFilter == "" || strings.EqualFold(v.Properties.RoleName, nameFilter)) && (typeFilter == "" || strings.EqualFold(v.Properties.Type, typeFilter)) {
			out = append(out, v)
		}
	}
	for _, d := range rbac.BuiltInRoles() {
		add(roleDefinitionOf(rq.Path.Sub, d, true))
	}
	custom, err := h.st.ListRoleDefinitions(rq.Ctx, tenantID)
	if err != nil {
		return rp.InternalError(err)
	}
	for _, d := range custom {
		add(roleDefinitionOf(rq.Path.Sub, d, false))
	}
	p, err := rq.PageOf("$skipToken", false)
	if err != nil {
		return err
	}
	slices.SortFunc(out, func(a, b roleDefinitionView) int { return strings.Compare(a.Name, b.Name) })
	return rp.WritePage(rq, p, out, func(v roleDefinitionView) string { return v.Name })
}

func roleDefinitionNotFound(id string) error {
	return rp.NewError(http.StatusNotFound, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", rp.SafeText(id))
}

// roleDefinition finds a built-in role or a custom role of the tenant by id.
func (h *Handler) roleDefinition(rq *rp.Request, st store.RBAC, tenantID, id string) (store.RoleDefinition, bool, error) {
	if !isGUID(id) {
		return store.RoleDefinition{}, false, roleDefinitionNotFound(id)
	}
	if d, ok := rbac.BuiltInRole(strings.ToLower(id)); ok {
		return d, true, nil
	}
	d, err := st.GetRoleDefinition(rq.Ctx, tenantID, strings.ToLower(id))
	if errors.Is(err, store.ErrNotFound) {
		return d, false, roleDefinitionNotFound(id)
	}
	if err != nil {
		return d, false, rp.InternalError(err)
	}
	return d, false, nil
}

func (h *Handler) getRoleDefinition(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionRoleDefinitionRead)
	if err != nil {
		return err
	}
	d, builtIn, err := h.roleDefinition(rq, h.st, tenantID, rq.Path.Name)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, roleDefinitionOf(rq.Path.Sub, d, builtIn))
}

func checkOperations(what string, ops []string) error {
	for _, op := range ops {
		if strings.TrimSpace(op) == "" || len(op) > 512 {
			return rp.NewError(http.StatusBadRequest, "InvalidActionOrNotAction", "The %s '%s' is not valid.", what, rp.SafeText(op))
		}
	}
	return nil
}

func (h *Handler) putRoleDefinition(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionRoleDefinitionWrite)
	if err != nil {
		return err
	}
	id := strings.ToLower(rq.Path.Name)
	if !isGUID(id) {
		return rp.NewError(http.StatusBadRequest, "InvalidRoleDefinitionId", "The role definition ID '%s' is not valid. The role definition ID must be a GUID.", rp.SafeText(rq.Path.Name))
	}
	if _, ok := rbac.BuiltInRole(id); ok {
		return rp.NewError(http.StatusBadRequest, "RoleDefinitionUpdateNotAllowed", "Built-in role definitions cannot be changed.")
	}
	var body struct {
		Properties struct {
			RoleName         string           `json:"roleName"`
			Description      string           `json:"description"`
			Type             string           `json:"type"`
			Permissions      []permissionView `json:"permissions"`
			AssignableScopes []string         `json:"assignableScopes"`
		} `json:"properties"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	p := body.Properties
	if strings.TrimSpace(p.RoleName) == "" || len(p.RoleName) > 512 {
		return rp.NewError(http.StatusBadRequest, "InvalidRoleDefinitionName", "The role name must be 1 to 512 characters.")
	}
	if _, ok := rbac.BuiltInRole(p.RoleName); ok {
		return rp.NewError(http.StatusConflict, "RoleDefinitionWithSameNameExists", "A role definition cannot be updated with a name that already exists.")
	}
	if len(p.Permissions) > 10 || len(p.AssignableScopes) > 100 || len(p.Description) > 2048 {
		return rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "The role definition has too many permissions or assignable scopes, or too long a description.")
	}
	d := store.RoleDefinition{TenantID: tenantID, ID: id, Name: p.RoleName, Description: p.Description, CreatedBy: rq.OID}
	for _, perm := range p.Permissions {
		for what, ops := range map[string][]string{"action": perm.Actions, "notAction": perm.NotActions, "dataAction": perm.DataActions, "notDataAction": perm.NotDataActions} {
			if err := checkOperations(what, ops); err != nil {
				return err
			}
		}
		d.Permissions = append(d.Permissions, store.Permission{Actions: perm.Actions, NotActions: perm.NotActions, DataActions: perm.DataActions, NotDataActions: perm.NotDataActions})
	}
	scopes := p.AssignableScopes
	if len(scopes) == 0 {
		scopes = []string{rq.Path.Scope.String()}
	}
	for _, s := range scopes {
		sc, err := rbac.ParseScope(s)
		if err != nil || sc.IsRoot() {
			return rp.NewError(http.StatusBadRequest, "InvalidAssignableScope", "The assignable scope '%s' is not valid.", rp.SafeText(s))
		}
		if sub := sc.SubscriptionID(); sub != "" {
			if ts, err := h.st.TenantsBySubscription(rq.Ctx, sub); err != nil {
				return rp.InternalError(err)
			} else if len(ts) != 1 || !strings.EqualFold(ts[0], tenantID) {
				return rp.NewError(http.StatusBadRequest, "InvalidAssignableScope", "The assignable scope '%s' is not in this directory.", rp.SafeText(s))
			}
		}
		// As in Azure, the caller must be allowed to write role
		// definitions at every scope the role is made assignable at, not
		// only where the request is addressed.
		if err := rq.Authorize(actionRoleDefinitionWrite, sc.String()); err != nil {
			return err
		}
		d.AssignableScopes = append(d.AssignableScopes, sc.String())
	}
	// Created or updated, RoleDefinitions_CreateOrUpdate answers 201: the
	// REST spec lists only 201, and armauthorization's
	// RoleDefinitionsClient.CreateOrUpdate fails on anything else.
	status := http.StatusCreated
	rq.Target = id
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		now := h.now().UTC()
		old, err := tx.GetRoleDefinition(rq.Ctx, tenantID, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			d.Created, d.Updated = now, now
			err = tx.CreateRoleDefinition(rq.Ctx, d)
		case err != nil:
			return rp.InternalError(err)
		default:
			d.Created, d.Updated, d.CreatedBy = old.Created, now, old.CreatedBy
			err = tx.UpdateRoleDefinition(rq.Ctx, d)
		}
		return conflictOr(err, "RoleDefinitionWithSameNameExists", "A custom role with the same name already exists in this directory.")
	})
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, status, roleDefinitionOf(rq.Path.Sub, d, false))
}

func (h *Handler) deleteRoleDefinition(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionRoleDefinitionDelete)
	if err != nil {
		return err
	}
	id := strings.ToLower(rq.Path.Name)
	if _, ok := rbac.BuiltInRole(id); ok && isGUID(id) {
		return rp.NewError(http.StatusBadRequest, "RoleDefinitionUpdateNotAllowed", "Built-in role definitions cannot be deleted.")
	}
	var (
		d     store.RoleDefinition
		found bool
	)
	rq.Target = id
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		var err error
		d, err = tx.GetRoleDefinition(rq.Ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) || !isGUID(id) {
			return nil
		} else if err != nil {
			return rp.InternalError(err)
		}
		found = true
		as, err := tx.ListRoleAssignments(rq.Ctx, store.RoleAssignmentQuery{TenantID: tenantID, RoleDefinitionID: id})
		if err != nil {
			return rp.InternalError(err)
		}
		if len(as) > 0 {
			return rp.NewError(http.StatusConflict, "RoleDefinitionHasAssignments", "There are existing role assignments referencing role (code: RoleDefinitionHasAssignments).")
		}
		if err := tx.DeleteRoleDefinition(rq.Ctx, tenantID, id); err != nil {
			return rp.InternalError(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeDeleted(rq, found, roleDefinitionOf(rq.Path.Sub, d, false))
}

// ---- role assignments ----

type roleAssignmentProps struct {
	RoleDefinitionID  string  `json:"roleDefinitionId"`
	PrincipalID       string  `json:"principalId"`
	PrincipalType     string  `json:"principalType"`
	Scope             string  `json:"scope"`
	Condition         *string `json:"condition"`
	ConditionVersion  *string `json:"conditionVersion"`
	CreatedOn         string  `json:"createdOn,omitempty"`
	UpdatedOn         string  `json:"updatedOn,omitempty"`
	CreatedBy         string  `json:"createdBy,omitempty"`
	UpdatedBy         string  `json:"updatedBy,omitempty"`
	PrincipalTenantID string  `json:"principalTenantId,omitempty"` // tenantbridge: set for a principal of another tenant
}

type roleAssignmentView struct {
	ID         string              `json:"id"`
	Name       string              `json:"name"`
	Type       string              `json:"type"`
	Properties roleAssignmentProps `json:"properties"`
}

func roleAssignmentOf(a store.RoleAssignment) roleAssignmentView {
	sub := ""
	if sc, err := rbac.ParseScope(a.Scope); err == nil {
		sub = sc.SubscriptionID()
	}
	v := roleAssignmentView{ID: extensionID(a.Scope, "roleAssignments", a.ID), Name: a.ID, Type: "Microsoft.Authorization/roleAssignments",
		Properties: roleAssignmentProps{RoleDefinitionID: roleDefinitionID(sub, a.RoleDefinitionID), PrincipalID: a.PrincipalID,
			PrincipalType: string(a.PrincipalType), Scope: a.Scope, CreatedOn: stamp(a.CreatedOn), UpdatedOn: stamp(a.CreatedOn),
			CreatedBy: a.CreatedBy, UpdatedBy: a.CreatedBy}}
	if a.PrincipalTenantID != "" && !strings.EqualFold(a.PrincipalTenantID, a.TenantID) {
		v.Properties.PrincipalTenantID = a.PrincipalTenantID
	}
	return v
}

func roleAssignmentNotFound(id string) error {
	return rp.NewError(http.StatusNotFound, "RoleAssignmentNotFound", "The role assignment '%s' is not found.", rp.SafeText(id))
}

// principalTypes maps directory kinds to ARM's principal types.
var principalTypes = map[store.ObjectKind]store.PrincipalType{
	store.KindUser: store.PrincipalUser, store.KindGroup: store.PrincipalGroup, store.KindServicePrincipal: store.PrincipalServicePrincipal,
}

// principalTypeOf is the role assignment principal type of object id of
// tenantID's directory. When it is no user, group or service principal the
// error is PrincipalNotFound with status and message, a format of the id
// and the tenant id.
func principalTypeOf(rq *rp.Request, dir *directory.Service, tenantID, id string, status int, message string) (store.PrincipalType, error) {
	kind, err := dir.ObjectKind(rq.Ctx, tenantID, id)
	pt, ok := principalTypes[kind]
	if errors.Is(err, store.ErrNotFound) || (err == nil && !ok) {
		return "", rp.NewError(status, "PrincipalNotFound", message, id, tenantID)
	} else if err != nil {
		return "", rp.InternalError(err)
	}
	return pt, nil
}

func (h *Handler) putRoleAssignment(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionRoleAssignmentWrite)
	if err != nil {
		return err
	}
	id := strings.ToLower(rq.Path.Name)
	if !isGUID(id) {
		return rp.NewError(http.StatusBadRequest, "InvalidRoleAssignmentId", "The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", rp.SafeText(rq.Path.Name))
	}
	rq.Target = extensionID(rq.Path.Scope.String(), "roleAssignments", id)
	var body struct {
		Properties struct {
			RoleDefinitionID string `json:"roleDefinitionId"`
			PrincipalID      string `json:"principalId"`
			PrincipalType    string `json:"principalType"`
			Condition        string `json:"condition"`
			Description      string `json:"description"`
		} `json:"properties"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	p := body.Properties
	if p.Condition != "" {
		return rp.NewError(http.StatusBadRequest, "InvalidRoleAssignmentCondition", "Role assignment conditions are not supported.")
	}
	roleID := p.RoleDefinitionID
	if i := strings.LastIndex(strings.ToLower(roleID), "/providers/microsoft.authorization/roledefinitions/"); i >= 0 {
		roleID = roleID[i+len("/providers/microsoft.authorization/roledefinitions/"):]
	}
	if !isGUID(roleID) {
		return rp.NewError(http.StatusBadRequest, "InvalidRoleDefinitionId", "The role definition ID '%s' is not valid.", rp.SafeText(p.RoleDefinitionID))
	}
	roleID = strings.ToLower(roleID)
	if !isGUID(p.PrincipalID) {
		return rp.NewError(http.StatusBadRequest, "InvalidPrincipalId", "A valid principal ID must be provided for role assignment.")
	}
	principalID := strings.ToLower(p.PrincipalID)
	scope := rq.Path.Scope.String()
	rq.Detail = "role=" + roleID + " principal=" + principalID
	var out store.RoleAssignment
	status := http.StatusCreated
	err = rq.Change(tenantID, func(tx store.Store, dir *directory.Service) error {
		role, builtIn, err := h.roleDefinition(rq, tx, tenantID, roleID)
		if err != nil {
			var ae *rp.Error
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				ae.Status = http.StatusBadRequest
			}
			return err
		}
		// A custom role is assignable only at or below one of its
		// assignable scopes; a built-in role's is "/", everywhere.
		if !builtIn && !assignableAt(role, rq.Path.Scope) {
			return rp.NewError(http.StatusBadRequest, "RoleAssignmentScopeNotAssignableToRoleDefinition",
				"The role %s is not available for assignment at the requested scope.", rp.SafeText(role.Name))
		}
		pt, err := principalTypeOf(rq, dir, tenantID, principalID, http.StatusBadRequest,
			"Principal %s does not exist in the directory %s. Check that you have the correct principal ID.")
		if err != nil {
			return err
		}
		if p.PrincipalType != "" && !strings.EqualFold(p.PrincipalType, string(pt)) {
			return rp.NewError(http.StatusBadRequest, "UnmatchedPrincipalType", "The PrincipalType in the request doesn't match the type of the principal: it is a %s.", pt)
		}
		existing, err := tx.GetRoleAssignment(rq.Ctx, tenantID, id)
		if err == nil {
			if scopeKey(existing.Scope) == rq.Path.Scope.Key() && existing.RoleDefinitionID == roleID && strings.EqualFold(existing.PrincipalID, principalID) {
				out, status = existing, http.StatusOK
				return nil
			}
			return rp.NewError(http.StatusBadRequest, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
		} else if !errors.Is(err, store.ErrNotFound) {
			return rp.InternalError(err)
		}
		out = store.RoleAssignment{TenantID: tenantID, ID: id, Scope: scope, RoleDefinitionID: roleID, PrincipalID: principalID,
			// The store keeps microseconds: the answer to the PUT shows the
			// createdOn every later GET shows.
			PrincipalType: pt, PrincipalTenantID: tenantID, CreatedOn: h.now().UTC().Truncate(time.Microsecond), CreatedBy: rq.OID}
		err = tx.CreateRoleAssignment(rq.Ctx, out)
		return conflictOr(err, "RoleAssignmentExists", "The role assignment already exists.")
	})
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, status, roleAssignmentOf(out))
}

// assignableAt reports whether scope is at or below one of the role's
// assignable scopes, compared case-insensitively on whole segments.
func assignableAt(d store.RoleDefinition, scope rbac.Scope) bool {
	for _, anc := range scope.Ancestors() {
		k := strings.ToLower(anc)
		for _, a := range d.AssignableScopes {
			if scopeKey(a) == k {
				return true
			}
		}
	}
	return false
}

// assignmentAt finds a role assignment by id at the request's scope.
func (h *Handler) assignmentAt(rq *rp.Request, st store.RBAC, tenantID string) (store.RoleAssignment, error) {
	id := strings.ToLower(rq.Path.Name)
	if !isGUID(id) {
		return store.RoleAssignment{}, roleAssignmentNotFound(rq.Path.Name)
	}
	a, err := st.GetRoleAssignment(rq.Ctx, tenantID, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && scopeKey(a.Scope) != rq.Path.Scope.Key()) {
		return a, roleAssignmentNotFound(rq.Path.Name)
	}
	if err != nil {
		return a, rp.InternalError(err)
	}
	return a, nil
}

func (h *Handler) getRoleAssignment(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionRoleAssignmentRead)
	if err != nil {
		return err
	}
	a, err := h.assignmentAt(rq, h.st, tenantID)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, roleAssignmentOf(a))
}

func (h *Handler) deleteRoleAssignment(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionRoleAssignmentDelete)
	if err != nil {
		return err
	}
	var (
		a     store.RoleAssignment
		found bool
	)
	rq.Target = extensionID(rq.Path.Scope.String(), "roleAssignments", strings.ToLower(rq.Path.Name))
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		var err error
		a, err = h.assignmentAt(rq, tx, tenantID)
		var ae *rp.Error
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return nil
		} else if err != nil {
			return err
		}
		found = true
		rq.Detail = "role=" + a.RoleDefinitionID + " principal=" + a.PrincipalID
		if err := tx.DeleteRoleAssignment(rq.Ctx, tenantID, a.ID); err != nil {
			return rp.InternalError(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeDeleted(rq, found, roleAssignmentOf(a))
}

// assignmentFilter is a parsed $filter of a role or deny assignment list.
type assignmentFilter struct {
	atScope     bool
	principalID string
	// assignedTo is set by assignedTo('{id}'): principalID's assignments
	// and those of the groups it belongs to, transitively.
	assignedTo bool
}

// parseAssignmentFilter parses ARM's assignment filters: atScope() (at
// the scope or above it, not below), principalId eq '{id}' and
// assignedTo('{id}'), the last two exclusive, each combinable with
// atScope() by "and".
func parseAssignmentFilter(f string) (assignmentFilter, error) {
	var af assignmentFilter
	for _, term := range filterTerms(f) {
		compact := strings.ReplaceAll(term, " ", "")
		switch {
		case strings.EqualFold(compact, "atScope()"):
			af.atScope = true
		case len(compact) > len("assignedTo('')") && strings.EqualFold(compact[:len("assignedTo('")], "assignedTo('") && strings.HasSuffix(compact, "')"):
			v := compact[len("assignedTo('") : len(compact)-2]
			if !isGUID(v) || af.principalID != "" {
				return af, badFilter(term)
			}
			af.principalID, af.assignedTo = strings.ToLower(v), true
		default:
			v, ok := filterValue(term, "principalId")
			if !ok || !isGUID(v) || af.principalID != "" {
				return af, badFilter(term)
			}
			af.principalID = strings.ToLower(v)
		}
	}
	return af, nil
}

// listRoleAssignments lists the assignments at, above and (unless
// atScope()) below the scope, filtered by principal, by id, a page at a
// time ($skipToken, nextLink): the store is asked for one page past the
// cursor from each of its two queries.
func (h *Handler) listRoleAssignments(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionRoleAssignmentRead)
	if err != nil {
		return err
	}
	f, err := parseAssignmentFilter(rq.R.URL.Query().Get("$filter"))
	if err != nil {
		return err
	}
	p, err := rq.PageOf("$skipToken", false)
	if err != nil {
		return err
	}
	q := store.RoleAssignmentQuery{TenantID: tenantID, Scopes: rq.Path.Scope.Ancestors(), After: p.After, Limit: p.Size + 1}
	if f.principalID != "" {
		q.PrincipalIDs = []string{f.principalID}
		if f.assignedTo {
			groups, err := h.dir.TransitiveMemberOf(rq.Ctx, tenantID, f.principalID)
			if err != nil {
				return rp.InternalError(err)
			}
			q.PrincipalIDs = append(q.PrincipalIDs, groups...)
		}
	}
	as, err := h.st.ListRoleAssignments(rq.Ctx, q)
	if err != nil {
		return rp.InternalError(err)
	}
	if !f.atScope {
		q.Scopes, q.ScopePrefix = nil, rq.Path.Scope.String()
		below, err := h.st.ListRoleAssignments(rq.Ctx, q)
		if err != nil {
			return rp.InternalError(err)
		}
		as = append(as, below...)
	}
	slices.SortFunc(as, func(a, b store.RoleAssignment) int { return strings.Compare(a.ID, b.ID) })
	as = slices.CompactFunc(as, func(a, b store.RoleAssignment) bool { return a.ID == b.ID })
	views := make([]roleAssignmentView, 0, len(as))
	for _, a := range as {
		views = append(views, roleAssignmentOf(a))
	}
	return rp.WritePage(rq, p, views, func(v roleAssignmentView) string { return v.Name })
}

// ---- deny assignments (read only) ----

type denyPrincipalView struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

type denyAssignmentView struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		DenyAssignmentName      string              `json:"denyAssignmentName"`
		Description             string              `json:"description"`
		Permissions             []permissionView    `json:"permissions"`
		Scope                   string              `json:"scope"`
		DoNotApplyToChildScopes bool                `json:"doNotApplyToChildScopes"`
		Principals              []denyPrincipalView `json:"principals"`
		ExcludePrincipals       []denyPrincipalView `json:"excludePrincipals"`
		IsSystemProtected       bool                `json:"isSystemProtected"`
		CreatedOn               string              `json:"createdOn,omitempty"`
		CreatedBy               string              `json:"createdBy,omitempty"`
	} `json:"properties"`
}

func denyAssignmentOf(d store.DenyAssignment) denyAssignmentView {
	v := denyAssignmentView{ID: extensionID(d.Scope, "denyAssignments", d.ID), Name: d.ID, Type: "Microsoft.Authorization/denyAssignments"}
	p := &v.Properties
	p.DenyAssignmentName, p.Description, p.Scope = d.Name, d.Description, d.Scope
	p.DoNotApplyToChildScopes, p.IsSystemProtected = d.DoNotApplyToChildScopes, d.IsSystemProtected
	p.CreatedOn, p.CreatedBy = stamp(d.CreatedOn), d.CreatedBy
	p.Permissions, p.Principals, p.ExcludePrincipals = []permissionView{}, []denyPrincipalView{}, []denyPrincipalView{}
	for _, perm := range d.Permissions {
		p.Permissions = append(p.Permissions, permissionView{Actions: rp.NonNil(perm.Actions), NotActions: rp.NonNil(perm.NotActions),
			DataActions: rp.NonNil(perm.DataActions), NotDataActions: rp.NonNil(perm.NotDataActions)})
	}
	for _, x := range d.Principals {
		p.Principals = append(p.Principals, denyPrincipalView{ID: x.ID, Type: string(x.Type)})
	}
	for _, x := range d.ExcludePrincipals {
		p.ExcludePrincipals = append(p.ExcludePrincipals, denyPrincipalView{ID: x.ID, Type: string(x.Type)})
	}
	return v
}

func (h *Handler) listDenyAssignments(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionDenyAssignmentRead)
	if err != nil {
		return err
	}
	f, err := parseAssignmentFilter(rq.R.URL.Query().Get("$filter"))
	if err != nil {
		return err
	}
	ds, err := h.st.ListDenyAssignments(rq.Ctx, store.DenyAssignmentQuery{TenantID: tenantID, Scopes: rq.Path.Scope.Ancestors()})
	if err != nil {
		return rp.InternalError(err)
	}
	if !f.atScope {
		below, err := h.st.ListDenyAssignments(rq.Ctx, store.DenyAssignmentQuery{TenantID: tenantID, ScopePrefix: rq.Path.Scope.String()})
		if err != nil {
			return rp.InternalError(err)
		}
		ds = append(ds, below...)
	}
	slices.SortFunc(ds, func(a, b store.DenyAssignment) int { return strings.Compare(a.ID, b.ID) })
	ds = slices.CompactFunc(ds, func(a, b store.DenyAssignment) bool { return a.ID == b.ID })
	out := []denyAssignmentView{}
	for _, d := range ds {
		if f.principalID != "" && !slices.ContainsFunc(d.Principals, func(p store.DenyPrincipal) bool {
			return strings.EqualFold(p.ID, f.principalID) || p.ID == store.EveryonePrincipalID
		}) {
			continue
		}
		out = append(out, denyAssignmentOf(d))
	}
	p, err := rq.PageOf("$skipToken", false)
	if err != nil {
		return err
	}
	return rp.WritePage(rq, p, out, func(v denyAssignmentView) string { return v.Name })
}

func (h *Handler) getDenyAssignment(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionDenyAssignmentRead)
	if err != nil {
		return err
	}
	d, err := h.st.GetDenyAssignment(rq.Ctx, tenantID, strings.ToLower(rq.Path.Name))
	if errors.Is(err, store.ErrNotFound) || (err == nil && scopeKey(d.Scope) != rq.Path.Scope.Key()) || !isGUID(rq.Path.Name) {
		return rp.NewError(http.StatusNotFound, "DenyAssignmentNotFound", "The deny assignment '%s' is not found.", rp.SafeText(rq.Path.Name))
	} else if err != nil {
		return rp.InternalError(err)
	}
	return rp.WriteJSON(rq, http.StatusOK, denyAssignmentOf(d))
}

// ---- explain (tenantbridge's own) ----

// ExplainResult is the answer of GET /providers/TenantBridge.Authorization/explain.
type ExplainResult struct {
	Allowed          bool     `json:"allowed"`
	Because          string   `json:"because"`
	Operation        string   `json:"operation"`
	DataAction       bool     `json:"dataAction"`
	Scope            string   `json:"scope"`
	TenantID         string   `json:"tenantId"`
	RoleAssignmentID string   `json:"roleAssignmentId,omitempty"`
	RoleDefinitionID string   `json:"roleDefinitionId,omitempty"`
	DenyAssignmentID string   `json:"denyAssignmentId,omitempty"`
	Path             []string `json:"path,omitempty"`
}

func (h *Handler) explain(rq *rp.Request) error {
	q := rq.R.URL.Query()
	principal, action, scopeText := q.Get("principalId"), q.Get("action"), q.Get("scope")
	if !isGUID(principal) {
		return rp.NewError(http.StatusBadRequest, "InvalidPrincipalId", "principalId must be a GUID.")
	}
	if action == "" {
		return rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "action is required.")
	}
	dataAction, err := strconv.ParseBool(q.Get("dataAction"))
	if q.Get("dataAction") != "" && err != nil {
		return rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "dataAction must be true or false.")
	}
	sc, err := rbac.ParseScope(scopeText)
	if err != nil {
		return rp.NewError(http.StatusBadRequest, "InvalidResourceId", "The scope '%s' is not valid.", rp.SafeText(scopeText))
	}
	rq.Path.Scope, rq.Path.Sub = sc, sc.SubscriptionID()
	tenantID, err := rq.AuthorizeAt(actionRoleAssignmentRead)
	if err != nil {
		return err
	}
	d, err := h.rbac.Decide(rq.Ctx, rbac.Request{PrincipalID: strings.ToLower(principal), PrincipalTenantID: tenantID, TenantID: tenantID,
		Action: action, DataAction: dataAction, Scope: sc.String()})
	if errors.Is(err, rbac.ErrInvalidRequest) {
		return rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "%s", rp.SafeText(err.Error()))
	} else if err != nil {
		return rp.InternalError(err)
	}
	res := ExplainResult{Allowed: d.Allowed, Because: d.Because.String(), Operation: action, DataAction: dataAction,
		Scope: d.Because.Scope, TenantID: tenantID, Path: d.Because.Path}
	if d.Because.Assignment != nil {
		res.RoleAssignmentID = extensionID(d.Because.Assignment.Scope, "roleAssignments", d.Because.Assignment.ID)
		res.RoleDefinitionID = roleDefinitionID(sc.SubscriptionID(), d.Because.Role.ID)
	}
	if d.Because.Deny != nil {
		res.DenyAssignmentID = extensionID(d.Because.Deny.Scope, "denyAssignments", d.Because.Deny.ID)
	}
	return rp.WriteJSON(rq, http.StatusOK, res)
}
