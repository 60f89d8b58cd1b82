package graph_test

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// TestDirectoryRolesAndMe: /me, getByIds, authentication methods, directory
// roles and role management, through the HTTP surface, with who may make a
// Global Administrator.
func TestDirectoryRolesAndMe(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	tid := e.contoso.Tenant.ID
	admin := e.adminToken(e.contoso)
	ada := e.call(admin, "POST", "/v1.0/users", newUserBody("ada", e.contoso)).expect(t, 201).str("id")
	bob := e.call(admin, "POST", "/v1.0/users", newUserBody("bob", e.contoso)).expect(t, 201).str("id")
	now := time.Now()
	delegated := func(user, scp string) string {
		raw, err := token.Mint(e.keys.Current(), token.Claims{Audience: directory.GraphResource, Issuer: e.srv.URL + "/" + tid + "/",
			TenantID: tid, ObjectID: user, IdentType: "user", Scope: scp,
			IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: now.Add(time.Hour).Unix(), Version: "1.0"})
		must(t, err)
		return raw
	}

	// /me
	me := e.call(delegated(ada, "User.Read"), "GET", "/v1.0/me", nil).expect(t, 200)
	if me.str("id") != ada || me.str("userPrincipalName") != "ada@contoso.onmicrosoft.com" {
		t.Fatalf("/me: %s", me.raw)
	}
	e.call(delegated(ada, "openid"), "GET", "/v1.0/me", nil).expect(t, 403, "Authorization_RequestDenied")
	reader := e.newClient(tid, "reader", directory.PermUserReadAll, directory.PermDirectoryReadAll, directory.PermAuthMethodReadAll,
		directory.PermRoleManagementRead)
	if r := e.call(reader.token, "GET", "/v1.0/me", nil).expect(t, 400); r.errorMessage() != "/me request is only valid with delegated authentication flow." {
		t.Errorf("/me app-only: %s", r.raw)
	}

	// getByIds
	got := e.call(reader.token, "POST", "/v1.0/directoryObjects/getByIds", map[string]any{
		"ids": []string{ada, reader.sp.ID, "00000000-0000-0000-0000-000000000009"}}).expect(t, 200)
	if ids := got.ids(); len(ids) != 2 || got.values()[0]["@odata.type"] != "#microsoft.graph.user" {
		t.Fatalf("getByIds: %s", got.raw)
	}
	if ids := e.call(reader.token, "POST", "/v1.0/directoryObjects/getByIds", map[string]any{"ids": []string{ada, reader.sp.ID},
		"types": []string{"servicePrincipal"}}).expect(t, 200).ids(); !slices.Equal(ids, []string{reader.sp.ID}) {
		t.Fatalf("getByIds types: %v", ids)
	}
	e.call(reader.token, "POST", "/v1.0/directoryObjects/getByIds", map[string]any{"ids": []string{"x"}}).expect(t, 400, "Request_BadRequest")
	e.call(reader.token, "POST", "/v1.0/directoryObjects/getByIds", map[string]any{"ids": []string{ada}, "types": []string{"device"}}).expect(t, 400, "Request_BadRequest")
	e.call(admin, "POST", "/v1.0/directoryObjects/getByIds", map[string]any{"ids": []string{ada}}).expect(t, 403, "Authorization_RequestDenied")

	// Authentication methods: the password; one's own; others' for admins.
	m := e.call(reader.token, "GET", "/v1.0/users/"+ada+"/authentication/methods", nil).expect(t, 200)
	if v := m.values(); len(v) != 1 || v[0]["@odata.type"] != "#microsoft.graph.passwordAuthenticationMethod" {
		t.Fatalf("methods: %s", m.raw)
	}
	e.call(delegated(ada, directory.PermAuthMethodReadAll), "GET", "/v1.0/users/"+ada+"/authentication/methods", nil).expect(t, 200)
	e.call(delegated(ada, directory.PermAuthMethodReadAll), "GET", "/v1.0/users/"+bob+"/authentication/methods", nil).expect(t, 403, "Authorization_RequestDenied")

	// Role definitions and (no) assignments.
	defs := e.call(reader.token, "GET", "/v1.0/roleManagement/directory/roleDefinitions", nil).expect(t, 200)
	if !slices.Contains(defs.ids(), directory.RoleGlobalAdministrator) {
		t.Fatalf("roleDefinitions: %s", defs.raw)
	}
	ga := e.call(reader.token, "GET", "/v1.0/roleManagement/directory/roleDefinitions/"+directory.RoleGlobalAdministrator, nil).expect(t, 200)
	if ga.str("displayName") != "Global Administrator" || ga.doc["isBuiltIn"] != true {
		t.Fatalf("GA definition: %s", ga.raw)
	}

	// Making a Global Administrator: the app needs RoleManagement.ReadWrite.Directory.
	e.call(reader.token, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{"principalId": ada,
		"roleDefinitionId": directory.RoleGlobalAdministrator, "directoryScopeId": "/"}).expect(t, 403, "Authorization_RequestDenied")
	writer := e.newClient(tid, "role-writer", directory.PermRoleManagementReadWrite)
	created := e.call(writer.token, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{"principalId": ada,
		"roleDefinitionId": directory.RoleGlobalAdministrator, "directoryScopeId": "/"}).expect(t, 201)
	assignmentID := created.str("id")
	if created.str("principalId") != ada || created.str("roleDefinitionId") != directory.RoleGlobalAdministrator {
		t.Fatalf("created: %s", created.raw)
	}
	if roles, err := e.dir.DirectoryRolesOf(e.ctx, tid, ada); err != nil || !slices.Contains(roles, directory.RoleGlobalAdministrator) {
		t.Fatalf("ada's roles %v %v", roles, err)
	}
	e.call(writer.token, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{"principalId": ada,
		"roleDefinitionId": directory.RoleGlobalAdministrator, "directoryScopeId": "/"}).expect(t, 400, "Request_BadRequest")
	// A group (Entra takes role-assignable groups only; none are served) cannot hold one.
	group := e.call(admin, "POST", "/v1.0/groups", map[string]any{"displayName": "g", "mailEnabled": false, "mailNickname": "g",
		"securityEnabled": true}).expect(t, 201).str("id")
	e.call(writer.token, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{"principalId": group,
		"roleDefinitionId": directory.RoleGlobalAdministrator, "directoryScopeId": "/"}).expect(t, 400, "Request_BadRequest")
	e.call(writer.token, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{"principalId": ada,
		"roleDefinitionId": directory.RoleGlobalAdministrator, "directoryScopeId": "/administrativeUnits/x"}).expect(t, 400, "Request_BadRequest")
	e.call(writer.token, "GET", "/v1.0/roleManagement/directory/roleAssignments/"+assignmentID, nil).expect(t, 200)
	list := e.call(reader.token, "GET", "/v1.0/roleManagement/directory/roleAssignments?$filter="+url.QueryEscape("principalId eq '"+ada+"'"), nil).expect(t, 200)
	if ids := list.ids(); !slices.Equal(ids, []string{assignmentID}) {
		t.Fatalf("assignments of ada: %s", list.raw)
	}

	// The activated role shows in /directoryRoles, with ada as member.
	roles := e.call(reader.token, "GET", "/v1.0/directoryRoles", nil).expect(t, 200)
	var gaRole string
	for _, r := range roles.values() {
		if r["roleTemplateId"] == directory.RoleGlobalAdministrator {
			gaRole = r["id"].(string)
		}
	}
	if gaRole == "" {
		t.Fatalf("directoryRoles: %s", roles.raw)
	}
	if ids := e.call(reader.token, "GET", "/v1.0/directoryRoles/"+gaRole+"/members", nil).expect(t, 200).ids(); !slices.Contains(ids, ada) {
		t.Fatalf("members: %v", ids)
	}
	e.call(reader.token, "GET", "/v1.0/directoryRoles/roleTemplateId="+directory.RoleGlobalAdministrator, nil).expect(t, 200)

	// A user without a role cannot make anyone an administrator, even
	// with the scope; a Global Administrator (ada, now) can.
	ref := map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + bob}
	e.call(delegated(bob, directory.PermRoleManagementReadWrite), "POST", "/v1.0/directoryRoles/"+gaRole+"/members/$ref", ref).expect(t, 403, "Authorization_RequestDenied")
	e.call(delegated(ada, directory.PermRoleManagementReadWrite), "POST", "/v1.0/directoryRoles/"+gaRole+"/members/$ref", ref).expect(t, 204)
	e.call(delegated(ada, directory.PermRoleManagementReadWrite), "POST", "/v1.0/directoryRoles/"+gaRole+"/members/$ref", ref).expect(t, 400, "Request_BadRequest")
	e.call(delegated(ada, directory.PermRoleManagementReadWrite), "DELETE", "/v1.0/directoryRoles/"+gaRole+"/members/"+bob+"/$ref", nil).expect(t, 204)
	e.call(writer.token, "DELETE", "/v1.0/roleManagement/directory/roleAssignments/"+assignmentID, nil).expect(t, 204)
	e.call(writer.token, "DELETE", "/v1.0/roleManagement/directory/roleAssignments/"+assignmentID, nil).expect(t, 404, "Request_ResourceNotFound")
	if rec := e.lastAudit(tid, "roleAssignment.delete"); rec.Result != "Request_ResourceNotFound" {
		t.Errorf("audit %+v", rec)
	}
	// Activating a role from its template.
	e.call(writer.token, "POST", "/v1.0/directoryRoles", map[string]any{"roleTemplateId": directory.RoleGlobalReader}).expect(t, 201)
	e.call(writer.token, "POST", "/v1.0/directoryRoles", map[string]any{"roleTemplateId": "00000000-0000-0000-0000-000000000001"}).expect(t, 400, "Request_BadRequest")
}
