package graph_test

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// appOnlyWID is in every app-only token's wids claim (see sts).
const appOnlyWID = "0997a1d0-0d1d-4acb-b408-d5ca73121e90"

func widsOf(t *testing.T, raw string) []string {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	must(t, err)
	var c token.Claims
	must(t, json.Unmarshal(b, &c))
	return c.WIDs
}

// TestServicePrincipalDirectoryRoles: a service principal is made a
// member of a directory role through Graph ($ref and roleAssignments),
// listed as a servicePrincipal, removed; its app-only tokens from the
// real token endpoint carry the role in wids; and its roles open what
// Entra lets them open for an app-only caller with no Graph application
// permission, from the very next request, within its own tenant only.
func TestServicePrincipalDirectoryRoles(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tid := e.contoso.Tenant.ID
		writer := e.newClient(tid, "role-writer", directory.PermRoleManagementReadWrite)
		robot := e.newClient(tid, "robot")
		if w := widsOf(t, robot.token); !slices.Equal(w, []string{appOnlyWID}) {
			t.Fatalf("wids of a principal without a role = %v", w)
		}
		newApp := map[string]any{"displayName": "made by robot"}
		e.call(robot.token, "POST", "/v1.0/applications", newApp).expect(t, 403, "Authorization_RequestDenied")

		// Application Administrator through roleAssignments.
		created := e.call(writer.token, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{"principalId": robot.sp.ID,
			"roleDefinitionId": directory.RoleApplicationAdministrator, "directoryScopeId": "/"}).expect(t, 201)
		if created.str("principalId") != robot.sp.ID {
			t.Fatalf("created: %s", created.raw)
		}
		appAdmin := e.call(writer.token, "GET", "/v1.0/directoryRoles/roleTemplateId="+directory.RoleApplicationAdministrator, nil).expect(t, 200).str("id")
		members := e.call(writer.token, "GET", "/v1.0/directoryRoles/"+appAdmin+"/members", nil).expect(t, 200)
		if v := members.values(); len(v) != 1 || v[0]["id"] != robot.sp.ID || v[0]["@odata.type"] != "#microsoft.graph.servicePrincipal" ||
			v[0]["appId"] != robot.app.AppID {
			t.Fatalf("members: %s", members.raw)
		}
		list := e.call(writer.token, "GET", "/v1.0/roleManagement/directory/roleAssignments?$filter="+url.QueryEscape("principalId eq '"+robot.sp.ID+"'"), nil).expect(t, 200)
		if ids := list.ids(); !slices.Equal(ids, []string{created.str("id")}) {
			t.Fatalf("assignments of the robot: %s", list.raw)
		}

		// The token it had already now manages applications and service
		// principals, and nothing else.
		made := e.call(robot.token, "POST", "/v1.0/applications", newApp).expect(t, 201).str("id")
		e.call(robot.token, "PATCH", "/v1.0/applications/"+made, map[string]any{"displayName": "renamed"}).expect(t, 204)
		e.call(robot.token, "GET", "/v1.0/servicePrincipals/"+writer.sp.ID, nil).expect(t, 200)
		e.call(robot.token, "GET", "/v1.0/users", nil).expect(t, 403, "Authorization_RequestDenied")
		e.call(robot.token, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{"principalId": robot.sp.ID,
			"roleDefinitionId": directory.RoleGlobalAdministrator, "directoryScopeId": "/"}).expect(t, 403, "Authorization_RequestDenied")
		// A new token names the role in wids.
		fresh := e.graphToken(tid, robot.app.AppID, robot.secret)
		if w := widsOf(t, fresh); !slices.Equal(w, []string{directory.RoleApplicationAdministrator, appOnlyWID}) {
			t.Fatalf("wids = %v", w)
		}

		// Removed with $ref: the next request is refused again.
		e.call(writer.token, "DELETE", "/v1.0/directoryRoles/"+appAdmin+"/members/"+robot.sp.ID+"/$ref", nil).expect(t, 204)
		e.call(robot.token, "POST", "/v1.0/applications", newApp).expect(t, 403, "Authorization_RequestDenied")
		e.call(writer.token, "DELETE", "/v1.0/directoryRoles/"+appAdmin+"/members/"+robot.sp.ID+"/$ref", nil).expect(t, 404, "Request_ResourceNotFound")

		// Privileged Role Administrator through $ref: it may assign roles
		// without RoleManagement.ReadWrite.Directory.
		pra := e.call(writer.token, "POST", "/v1.0/directoryRoles", map[string]any{"roleTemplateId": directory.RolePrivilegedRoleAdministrator}).expect(t, 201).str("id")
		ref := func(id string) map[string]any {
			return map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + id}
		}
		e.call(writer.token, "POST", "/v1.0/directoryRoles/"+pra+"/members/$ref", ref(robot.sp.ID)).expect(t, 204)
		e.call(writer.token, "POST", "/v1.0/directoryRoles/"+pra+"/members/$ref", ref(robot.sp.ID)).expect(t, 400, "Request_BadRequest")
		helper := e.newClient(tid, "helper")
		e.call(robot.token, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{"principalId": helper.sp.ID,
			"roleDefinitionId": directory.RoleGlobalReader, "directoryScopeId": "/"}).expect(t, 201)
		e.call(robot.token, "POST", "/v1.0/applications", newApp).expect(t, 403, "Authorization_RequestDenied")

		// Global Reader reads everything and changes nothing.
		e.call(helper.token, "GET", "/v1.0/users", nil).expect(t, 200)
		e.call(helper.token, "GET", "/v1.0/applications", nil).expect(t, 200)
		e.call(helper.token, "POST", "/v1.0/applications", newApp).expect(t, 403, "Authorization_RequestDenied")

		// Global Administrator: everything, with no Graph permission at all.
		e.call(writer.token, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{"principalId": helper.sp.ID,
			"roleDefinitionId": directory.RoleGlobalAdministrator, "directoryScopeId": "/"}).expect(t, 201)
		e.call(helper.token, "POST", "/v1.0/users", newUserBody("carol", e.contoso)).expect(t, 201)
		if w := widsOf(t, e.graphToken(tid, helper.app.AppID, helper.secret)); !slices.Equal(w,
			[]string{directory.RoleGlobalAdministrator, directory.RoleGlobalReader, appOnlyWID}) {
			t.Fatalf("wids = %v", w)
		}

		// Tenant isolation: another tenant's service principal is not an
		// object of contoso and cannot hold contoso's roles; nor do
		// contoso's roles count for a fabrikam token.
		other := e.newClient(e.fabrikam.Tenant.ID, "elsewhere")
		e.call(writer.token, "POST", "/v1.0/roleManagement/directory/roleAssignments", map[string]any{"principalId": other.sp.ID,
			"roleDefinitionId": directory.RoleGlobalAdministrator, "directoryScopeId": "/"}).expect(t, 400, "Request_BadRequest")
		e.call(writer.token, "POST", "/v1.0/directoryRoles/"+pra+"/members/$ref", ref(other.sp.ID)).expect(t, 400, "Request_BadRequest")
		if w := widsOf(t, other.token); !slices.Equal(w, []string{appOnlyWID}) {
			t.Fatalf("wids of fabrikam's principal = %v", w)
		}
		e.call(other.token, "GET", "/v1.0/users", nil).expect(t, 403, "Authorization_RequestDenied")

		// Deleting the service principal takes its role with it.
		e.call(writer.token, "GET", "/v1.0/directoryRoles/"+pra+"/members", nil).expect(t, 200)
		must(t, e.dir.DeleteServicePrincipal(e.ctx, tid, robot.sp.ID))
		if ids := e.call(writer.token, "GET", "/v1.0/directoryRoles/"+pra+"/members", nil).expect(t, 200).ids(); len(ids) != 0 {
			t.Fatalf("members after the principal's deletion: %v", ids)
		}
	})
}
