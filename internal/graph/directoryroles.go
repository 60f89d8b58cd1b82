package graph

import (
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Directory roles, the signed-in user, objects by id and authentication
// methods:
//
//   - GET /me: "/me request is only valid with delegated authentication
//     flow." for an app-only token (https://learn.microsoft.com/graph/api/user-get).
//   - POST /directoryObjects/getByIds: the objects of the ids asked for (at
//     most 1000), optionally of the types named; ids that resolve to
//     nothing are left out (https://learn.microsoft.com/graph/api/directoryobject-getbyids).
//   - GET /directoryRoles lists activated roles; POST /directoryRoles
//     activates one from its template; members are listed, added with
//     $ref and removed (https://learn.microsoft.com/graph/api/resources/directoryrole).
//   - /roleManagement/directory/roleDefinitions (the built-in roles,
//     id = template id) and roleAssignments (list, get, create, delete)
//     (https://learn.microsoft.com/graph/api/resources/unifiedroleassignment),
//     so that a Global Administrator can be made through Graph. Changing
//     them takes RoleManagement.ReadWrite.Directory and, for a user, the
//     Privileged Role Administrator or Global Administrator role
//     (userCeiling): "the signed-in user must be assigned a supported
//     Microsoft Entra role … Privileged Role Administrator is the least
//     privileged role supported for this operation."
//   - GET /users/{id}/authentication/methods: the password, and the
//     authenticator (software OATH) when one is enrolled.
//
// Users and service principals hold directory roles (Entra: "you can
// assign Microsoft Entra roles to … service principals",
// https://learn.microsoft.com/entra/identity/role-based-access-control/manage-roles-portal);
// a group (Entra takes role-assignable groups only) or any other object
// as principal is a 400, and so is an id that is not an object of the
// caller's tenant: another tenant's object cannot hold a role here (a
// multi-tenant application holds one through its service principal in
// this tenant). A service principal's roles count for its app-only calls
// (auth.go, appOnlyCeiling) and are its tokens' wids claim.

var (
	directoryRoleQuery  = querySpec{collection: true, resource: "DirectoryRole", selectable: directoryRoleProperties}
	roleDefinitionQuery = querySpec{collection: true, resource: "UnifiedRoleDefinition", selectable: roleDefinitionProperties}
	roleAssignmentQuery = querySpec{collection: true, resource: "UnifiedRoleAssignment", selectable: roleAssignmentProperties,
		filterable: []filterProp{
			{name: "principalId", typ: typeString, ops: opEq | opIn},
			{name: "roleDefinitionId", typ: typeString, ops: opEq | opIn},
			{name: "directoryScopeId", typ: typeString, ops: opEq},
			{name: "id", typ: typeString, ops: opEq | opIn},
		}}
	singleQuery = func(resource string, sel []string) querySpec { return querySpec{resource: resource, selectable: sel} }
)

type directoryRoleView struct {
	ID              string  `json:"id"`
	DeletedDateTime *string `json:"deletedDateTime"`
	Description     string  `json:"description"`
	DisplayName     string  `json:"displayName"`
	RoleTemplateID  string  `json:"roleTemplateId"`
}

type rolePermissionView struct {
	AllowedResourceActions []string `json:"allowedResourceActions"`
	Condition              *string  `json:"condition"`
}

type roleDefinitionView struct {
	ID              string               `json:"id"`
	Description     string               `json:"description"`
	DisplayName     string               `json:"displayName"`
	IsBuiltIn       bool                 `json:"isBuiltIn"`
	IsEnabled       bool                 `json:"isEnabled"`
	ResourceScopes  []string             `json:"resourceScopes"`
	TemplateID      string               `json:"templateId"`
	Version         *string              `json:"version"`
	RolePermissions []rolePermissionView `json:"rolePermissions"`
}

type roleAssignmentView struct {
	ID               string `json:"id"`
	DirectoryScopeID string `json:"directoryScopeId"`
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`
}

var (
	directoryRoleProperties  = propertiesOf(directoryRoleView{})
	roleDefinitionProperties = propertiesOf(roleDefinitionView{})
	roleAssignmentProperties = propertiesOf(roleAssignmentView{})
)

// roleDescriptions are Entra's descriptions of the built-in roles served.
var roleDescriptions = map[string]string{
	directory.RoleGlobalAdministrator:           "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
	directory.RolePrivilegedRoleAdministrator:   "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management.",
	directory.RoleCloudApplicationAdministrator: "Can create and manage all aspects of app registrations and enterprise apps except App Proxy.",
	directory.RoleApplicationAdministrator:      "Can create and manage all aspects of app registrations and enterprise apps.",
	directory.RoleGlobalReader:                  "Can read everything that a Global Administrator can, but not update anything.",
}

func directoryRoleToView(r directory.DirectoryRole) directoryRoleView {
	return directoryRoleView{ID: r.ID, Description: roleDescriptions[r.RoleTemplateID], DisplayName: r.DisplayName, RoleTemplateID: r.RoleTemplateID}
}

func roleDefinitionToView(tmpl string) roleDefinitionView {
	return roleDefinitionView{ID: tmpl, Description: roleDescriptions[tmpl], DisplayName: directory.DirectoryRoleNames[tmpl],
		IsBuiltIn: true, IsEnabled: true, ResourceScopes: []string{"/"}, TemplateID: tmpl, RolePermissions: []rolePermissionView{}}
}

// A role assignment's id encodes its role and principal (both GUIDs), as
// Entra's own ids do, so that it needs no storage of its own.
func roleAssignmentID(tmpl, principal string) string {
	t, p := uuid.MustParse(tmpl), uuid.MustParse(principal)
	return base64.RawURLEncoding.EncodeToString(append(t[:], p[:]...)) + "-1"
}

func parseRoleAssignmentID(id string) (tmpl, principal string, ok bool) {
	raw, found := strings.CutSuffix(id, "-1")
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if !found || err != nil || len(b) != 32 {
		return "", "", false
	}
	t, _ := uuid.FromBytes(b[:16])
	p, _ := uuid.FromBytes(b[16:])
	return t.String(), p.String(), true
}

// ---- /me ----

func (h *Handler) getMe(rq *request) error {
	if rq.caller.claims.IsAppOnly() || rq.caller.claims.Scope == "" {
		return &graphError{status: http.StatusBadRequest, code: codeUnknownSegment, message: "/me request is only valid with delegated authentication flow."}
	}
	opts, err := parseQuery(rq.r.URL.RawQuery, userGetQuery)
	if err != nil {
		return err
	}
	u, err := h.dir.GetUser(rq.ctx, rq.tenant(), rq.caller.objectID)
	if err != nil {
		return err
	}
	rq.target = u.ID
	return h.writeEntity(rq, http.StatusOK, "users", opts.sel, userToView(u))
}

// ---- getByIds ----

type getByIDsInput struct {
	IDs   []string `json:"ids"`
	Types []string `json:"types"`
}

// getByIDsTypes are the type names getByIds takes and their kinds.
var getByIDsTypes = map[string]store.ObjectKind{
	"user": store.KindUser, "group": store.KindGroup, "serviceprincipal": store.KindServicePrincipal,
	"application": store.KindApplication, "directoryobject": "",
}

func (h *Handler) getByIDs(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in getByIDsInput
	if err := decodeBody(body, &in, nil); err != nil {
		return err
	}
	if len(in.IDs) == 0 || len(in.IDs) > 1000 {
		return badRequest("Property 'ids' must hold from 1 to 1000 ids.")
	}
	var kinds []store.ObjectKind
	for _, t := range in.Types {
		k, ok := getByIDsTypes[strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(t, "#"), "microsoft.graph."))]
		if !ok {
			return badRequest("Invalid type '%s' in property 'types'.", safeText(t))
		}
		if k != "" {
			kinds = append(kinds, k)
		}
	}
	p := page{}
	seen := map[string]bool{}
	for _, id := range in.IDs {
		if !validID(id) {
			return badRequest("Invalid object identifier '%s'.", safeText(id))
		}
		id = strings.ToLower(id)
		if seen[id] {
			continue
		}
		seen[id] = true
		kind, err := h.dir.ObjectKind(rq.ctx, rq.tenant(), id)
		if errors.Is(err, directory.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if len(kinds) > 0 && !slices.Contains(kinds, kind) {
			continue
		}
		view, err := h.directoryObject(rq, objectRef{id: id, kind: kind})
		if errors.Is(err, directory.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := p.add(id, view); err != nil {
			return err
		}
		p.items[len(p.items)-1].annotate("@odata.type", odataTypes[kind])
	}
	return h.writeCollection(rq, "directoryObjects", queryOptions{}, p)
}

// ---- directoryRoles ----

func (h *Handler) listDirectoryRoles(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, directoryRoleQuery)
	if err != nil {
		return err
	}
	roles, err := h.dir.ActivatedDirectoryRoles(rq.ctx, rq.tenant())
	if err != nil {
		return err
	}
	var p page
	roles, p.more = pageOf(roles, func(r directory.DirectoryRole) string { return r.ID }, opts)
	for _, r := range roles {
		if err := p.add(r.ID, directoryRoleToView(r)); err != nil {
			return err
		}
	}
	return h.writeCollection(rq, "directoryRoles", opts, p)
}

// loadDirectoryRole finds the activated role the path names: by id, or
// by roleTemplateId=… (Graph's alternate key).
func (h *Handler) loadDirectoryRole(rq *request) (directory.DirectoryRole, error) {
	ref := rq.pathID("id")
	byTemplate := false
	if t, ok := cutPrefixFold(ref, "roleTemplateId="); ok {
		ref, byTemplate = t, true
	}
	r, err := h.dir.ActivatedDirectoryRole(rq.ctx, rq.tenant(), ref, byTemplate)
	if errors.Is(err, directory.ErrNotFound) {
		return r, notFound(ref)
	}
	rq.target = r.ID
	return r, err
}

func (h *Handler) getDirectoryRole(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, singleQuery("DirectoryRole", directoryRoleProperties))
	if err != nil {
		return err
	}
	r, err := h.loadDirectoryRole(rq)
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusOK, "directoryRoles", opts.sel, directoryRoleToView(r))
}

// activateDirectoryRole answers POST /directoryRoles {"roleTemplateId"}.
func (h *Handler) activateDirectoryRole(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in struct {
		ODataType      string `json:"@odata.type"`
		RoleTemplateID string `json:"roleTemplateId"`
	}
	if err := decodeBody(body, &in, []string{"id", "displayName", "description"}); err != nil {
		return err
	}
	if !validID(in.RoleTemplateID) {
		return badRequest("Property 'roleTemplateId' must be a GUID.")
	}
	var r directory.DirectoryRole
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		var err error
		r, err = tx.ActivateDirectoryRole(rq.ctx, rq.tenant(), in.RoleTemplateID)
		return r.ID, err
	})
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusCreated, "directoryRoles", nil, directoryRoleToView(r))
}

func (h *Handler) listDirectoryRoleMembers(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, directoryObjectQuery)
	if err != nil {
		return err
	}
	r, err := h.loadDirectoryRole(rq)
	if err != nil {
		return err
	}
	members, err := h.dir.DirectoryRoleMembers(rq.ctx, rq.tenant(), r.ID)
	if err != nil {
		return err
	}
	refs := make([]objectRef, 0, len(members))
	for _, m := range members {
		refs = append(refs, objectRef{id: m.ID, kind: m.Kind})
	}
	return h.writeDirectoryObjects(rq, opts, refs)
}

func (h *Handler) addDirectoryRoleMember(rq *request) error {
	memberID, err := readReference(rq)
	if err != nil {
		return err
	}
	rq.detail = "member=" + memberID
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		r, err := h.loadDirectoryRole(rq)
		if err != nil {
			return "", err
		}
		return r.ID, h.assignRole(rq, tx, r.RoleTemplateID, memberID)
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

func (h *Handler) removeDirectoryRoleMember(rq *request) error {
	memberID := normalizeID(rq.pathID("ref"))
	rq.detail = "member=" + memberID
	err := h.change(rq, func(tx *directory.Service) (string, error) {
		r, err := h.loadDirectoryRole(rq)
		if err != nil {
			return "", err
		}
		return r.ID, h.unassignRole(rq, tx, r.RoleTemplateID, memberID)
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

// assignRole makes a user or service principal of the caller's tenant hold a role.
func (h *Handler) assignRole(rq *request, tx *directory.Service, tmpl, principalID string) error {
	kind, err := tx.ObjectKind(rq.ctx, rq.tenant(), principalID)
	if errors.Is(err, directory.ErrNotFound) {
		return badRequest("Resource '%s' does not exist or one of its queried reference-property objects are not present.", safeText(principalID))
	}
	if err != nil {
		return err
	}
	if kind != store.KindUser && kind != store.KindServicePrincipal {
		return badRequest("Only users and service principals may hold directory roles here; '%s' is neither.", safeText(principalID))
	}
	held, err := tx.DirectoryRolesOf(rq.ctx, rq.tenant(), principalID)
	if err != nil {
		return err
	}
	if slices.Contains(held, tmpl) {
		return badRequest("One or more added object references already exist for the following modified properties: 'members'.")
	}
	return tx.AssignDirectoryRole(rq.ctx, rq.tenant(), principalID, tmpl)
}

func (h *Handler) unassignRole(rq *request, tx *directory.Service, tmpl, principalID string) error {
	held, err := tx.DirectoryRolesOf(rq.ctx, rq.tenant(), principalID)
	if err != nil {
		return err
	}
	if !slices.Contains(held, tmpl) {
		return notFound(principalID)
	}
	return tx.RemoveDirectoryRole(rq.ctx, rq.tenant(), principalID, tmpl)
}

// ---- roleManagement/directory ----

func knownTemplates() []string {
	out := make([]string, 0, len(directory.DirectoryRoleNames))
	for t := range directory.DirectoryRoleNames {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func (h *Handler) listRoleDefinitions(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, roleDefinitionQuery)
	if err != nil {
		return err
	}
	var p page
	tmpls, more := pageOf(knownTemplates(), func(s string) string { return s }, opts)
	p.more = more
	for _, t := range tmpls {
		if err := p.add(t, roleDefinitionToView(t)); err != nil {
			return err
		}
	}
	return h.writeCollection(rq, "roleManagement/directory/roleDefinitions", opts, p)
}

func (h *Handler) getRoleDefinition(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, singleQuery("UnifiedRoleDefinition", roleDefinitionProperties))
	if err != nil {
		return err
	}
	id := strings.ToLower(rq.pathID("id"))
	if _, ok := directory.DirectoryRoleNames[id]; !ok {
		return notFound(rq.pathID("id"))
	}
	return h.writeEntity(rq, http.StatusOK, "roleManagement/directory/roleDefinitions", opts.sel, roleDefinitionToView(id))
}

// roleAssignments lists every assignment in the tenant: each member of
// each activated role.
func (h *Handler) roleAssignments(rq *request) ([]roleAssignmentView, error) {
	roles, err := h.dir.ActivatedDirectoryRoles(rq.ctx, rq.tenant())
	if err != nil {
		return nil, err
	}
	var out []roleAssignmentView
	for _, r := range roles {
		members, err := h.dir.DirectoryRoleMembers(rq.ctx, rq.tenant(), r.ID)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			out = append(out, roleAssignmentView{ID: roleAssignmentID(r.RoleTemplateID, m.ID), DirectoryScopeID: "/",
				PrincipalID: m.ID, RoleDefinitionID: r.RoleTemplateID})
		}
	}
	return out, nil
}

func (h *Handler) listRoleAssignments(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, roleAssignmentQuery)
	if err != nil {
		return err
	}
	all, err := h.roleAssignments(rq)
	if err != nil {
		return err
	}
	var matched []roleAssignmentView
	for _, a := range all {
		if opts.filter != nil {
			e, err := toMap(a)
			if err != nil {
				return internalError(err)
			}
			obj, err := decodeEntity(e)
			if err != nil {
				return internalError(err)
			}
			if !opts.filter.matches(obj) {
				continue
			}
		}
		matched = append(matched, a)
	}
	var p page
	matched, p.more = pageOf(matched, func(a roleAssignmentView) string { return a.ID }, opts)
	for _, a := range matched {
		if err := p.add(a.ID, a); err != nil {
			return err
		}
	}
	return h.writeCollection(rq, "roleManagement/directory/roleAssignments", opts, p)
}

// loadRoleAssignment finds the assignment the path names.
func (h *Handler) loadRoleAssignment(rq *request, dir *directory.Service) (roleAssignmentView, error) {
	id := rq.pathID("id")
	tmpl, principal, ok := parseRoleAssignmentID(id)
	if !ok {
		return roleAssignmentView{}, notFound(id)
	}
	held, err := dir.DirectoryRolesOf(rq.ctx, rq.tenant(), principal)
	if err != nil {
		return roleAssignmentView{}, err
	}
	if !slices.Contains(held, tmpl) {
		return roleAssignmentView{}, notFound(id)
	}
	rq.target = principal
	return roleAssignmentView{ID: id, DirectoryScopeID: "/", PrincipalID: principal, RoleDefinitionID: tmpl}, nil
}

func (h *Handler) getRoleAssignment(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, singleQuery("UnifiedRoleAssignment", roleAssignmentProperties))
	if err != nil {
		return err
	}
	a, err := h.loadRoleAssignment(rq, h.dir)
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusOK, "roleManagement/directory/roleAssignments", opts.sel, a)
}

// createRoleAssignment answers POST roleAssignments {principalId,
// roleDefinitionId, directoryScopeId "/"}: the tenant-wide scope only.
func (h *Handler) createRoleAssignment(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in struct {
		ODataType        string  `json:"@odata.type"`
		PrincipalID      string  `json:"principalId"`
		RoleDefinitionID string  `json:"roleDefinitionId"`
		DirectoryScopeID *string `json:"directoryScopeId"`
		AppScopeID       *string `json:"appScopeId"`
	}
	if err := decodeBody(body, &in, []string{"id"}); err != nil {
		return err
	}
	switch {
	case !validID(in.PrincipalID):
		return badRequest("Property 'principalId' must be a GUID.")
	case !validID(in.RoleDefinitionID):
		return badRequest("Property 'roleDefinitionId' must be a GUID.")
	case in.AppScopeID != nil && *in.AppScopeID != "":
		return badRequest("Only the directory scope '/' is supported: appScopeId must be absent.")
	case in.DirectoryScopeID == nil || *in.DirectoryScopeID != "/":
		return badRequest("Property 'directoryScopeId' must be '/'.")
	}
	tmpl, principal := strings.ToLower(in.RoleDefinitionID), strings.ToLower(in.PrincipalID)
	if _, ok := directory.DirectoryRoleNames[tmpl]; !ok {
		return badRequest("The role definition %s does not exist.", tmpl)
	}
	rq.detail = "role=" + tmpl
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		return principal, h.assignRole(rq, tx, tmpl, principal)
	})
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusCreated, "roleManagement/directory/roleAssignments", nil,
		roleAssignmentView{ID: roleAssignmentID(tmpl, principal), DirectoryScopeID: "/", PrincipalID: principal, RoleDefinitionID: tmpl})
}

func (h *Handler) deleteRoleAssignment(rq *request) error {
	err := h.change(rq, func(tx *directory.Service) (string, error) {
		a, err := h.loadRoleAssignment(rq, tx)
		if err != nil {
			return "", err
		}
		rq.detail = "role=" + a.RoleDefinitionID
		return a.PrincipalID, tx.RemoveDirectoryRole(rq.ctx, rq.tenant(), a.PrincipalID, a.RoleDefinitionID)
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

// ---- authentication methods ----

// The fixed id Graph gives every user's password method.
const passwordMethodID = "28c10230-6103-485e-b985-444c60001490"

type authMethodView struct {
	ODataType       string  `json:"@odata.type"`
	ID              string  `json:"id"`
	CreatedDateTime *string `json:"createdDateTime,omitempty"`
}

// listAuthMethods lists a user's methods. A user reads their own; reading
// another's takes an administrator (Global Administrator or Global Reader
// here): Graph's "users can view their own … admins … others".
func (h *Handler) listAuthMethods(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, querySpec{collection: true, resource: "AuthenticationMethod"})
	if err != nil {
		return err
	}
	u, err := h.loadUser(rq, h.dir)
	if err != nil {
		return err
	}
	if !rq.caller.claims.IsAppOnly() && rq.caller.claims.Scope != "" && !strings.EqualFold(u.ID, rq.caller.objectID) {
		roles, err := h.dir.EnabledUserRoles(rq.ctx, rq.tenant(), rq.caller.objectID)
		if err != nil && !errors.Is(err, directory.ErrNotFound) {
			return err
		}
		if !slices.Contains(roles, directory.RoleGlobalAdministrator) && !slices.Contains(roles, directory.RoleGlobalReader) {
			return errDenied
		}
	}
	var p page
	if u.PasswordHash != "" {
		created := graphTime(u.CreatedDateTime)
		if err := p.add(passwordMethodID, authMethodView{ODataType: "#microsoft.graph.passwordAuthenticationMethod", ID: passwordMethodID,
			CreatedDateTime: &created}); err != nil {
			return err
		}
	}
	if u.HasTOTP() {
		id := uuid.NewSHA1(uuid.NameSpaceOID, []byte("totp/"+u.ID)).String()
		if err := p.add(id, authMethodView{ODataType: "#microsoft.graph.softwareOathAuthenticationMethod", ID: id}); err != nil {
			return err
		}
	}
	return h.writeCollection(rq, "users('"+u.ID+"')/authentication/methods", opts, p)
}
