package graph_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

var servicePrincipalKeys = []string{"id", "accountEnabled", "alternativeNames", "appDisplayName", "appId",
	"appOwnerOrganizationId", "appRoleAssignmentRequired", "appRoles", "displayName", "keyCredentials",
	"oauth2PermissionScopes", "passwordCredentials", "servicePrincipalNames", "servicePrincipalType",
	"signInAudience", "tags"}

var assignmentKeys = []string{"id", "appRoleId", "createdDateTime", "deletedDateTime", "principalDisplayName",
	"principalId", "principalType", "resourceDisplayName", "resourceId"}

func TestServicePrincipalLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		roleID := uuid.NewString()
		app := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "api",
			"identifierUris": []string{"api://contoso.onmicrosoft.com/api"},
			"appRoles": []map[string]any{{"id": roleID, "value": "Data.Read", "allowedMemberTypes": []string{"Application"},
				"displayName": "Read", "description": "Read."}}}).expect(t, 201)
		appID := app.str("appId")

		sp := e.call(tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": appID, "tags": []string{"HideApp"}}).expect(t, 201)
		sameKeys(t, "servicePrincipal", sp.doc, servicePrincipalKeys, "@odata.context")
		spID := sp.str("id")
		if sp.str("appDisplayName") != "api" || sp.str("servicePrincipalType") != "Application" ||
			sp.str("appOwnerOrganizationId") != e.contoso.Tenant.ID || sp.doc["accountEnabled"] != true ||
			len(sp.doc["tags"].([]any)) != 1 || len(sp.doc["appRoles"].([]any)) != 1 {
			t.Fatalf("created: %s", sp.raw)
		}
		dup := e.call(tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": appID}).expect(t, 409, "Request_MultipleObjectsWithSameKeyValue")
		if !strings.Contains(dup.errorMessage(), appID) {
			t.Errorf("message %q", dup.errorMessage())
		}
		e.call(tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": uuid.NewString()}).expect(t, 400, "Request_BadRequest")
		e.call(tok, "POST", "/v1.0/servicePrincipals", map[string]any{}).expect(t, 400, "Request_BadRequest")

		e.call(tok, "GET", "/v1.0/servicePrincipals/"+spID, nil).expect(t, 200)
		if got := e.call(tok, "GET", "/v1.0/servicePrincipals(appId='"+appID+"')", nil).expect(t, 200); got.str("id") != spID {
			t.Fatalf("by appId: %s", got.raw)
		}
		list := e.call(tok, "GET", "/v1.0/servicePrincipals?$filter="+url.QueryEscape("appId eq '"+appID+"'"), nil).expect(t, 200)
		if ids := list.ids(); len(ids) != 1 || ids[0] != spID {
			t.Fatalf("filter by appId: %s", list.raw)
		}

		e.call(tok, "PATCH", "/v1.0/servicePrincipals/"+spID, map[string]any{"appRoleAssignmentRequired": true, "accountEnabled": false}).expect(t, 204)
		e.call(tok, "PATCH", "/v1.0/servicePrincipals/"+spID, map[string]any{"appRoles": []any{}}).expect(t, 400, "Request_BadRequest")
		got := e.call(tok, "GET", "/v1.0/servicePrincipals/"+spID, nil).expect(t, 200)
		if got.doc["appRoleAssignmentRequired"] != true || got.doc["accountEnabled"] != false {
			t.Fatalf("after PATCH: %s", got.raw)
		}

		added := e.call(tok, "POST", "/v1.0/servicePrincipals/"+spID+"/addPassword", map[string]any{"passwordCredential": map[string]any{"displayName": "sp"}}).expect(t, 200)
		if added.str("secretText") == "" {
			t.Fatalf("addPassword: %s", added.raw)
		}
		if r := e.call(tok, "GET", "/v1.0/servicePrincipals/"+spID, nil); strings.Contains(string(r.raw), added.str("secretText")) {
			t.Fatal("service principal GET leaks its secret")
		}
		e.call(tok, "POST", "/v1.0/servicePrincipals/"+spID+"/removePassword", map[string]any{"keyId": added.str("keyId")}).expect(t, 204)

		// Microsoft's own service principals are not the tenant's to break.
		graphSP := e.call(tok, "GET", "/v1.0/servicePrincipals(appId='"+directory.GraphAppID+"')", nil).expect(t, 200)
		e.call(tok, "DELETE", "/v1.0/servicePrincipals/"+graphSP.str("id"), nil).expect(t, 400, "Request_BadRequest")
		e.call(tok, "PATCH", "/v1.0/servicePrincipals/"+graphSP.str("id"), map[string]any{"accountEnabled": false}).expect(t, 400, "Request_BadRequest")
		e.call(tok, "POST", "/v1.0/servicePrincipals/"+graphSP.str("id")+"/addPassword", nil).expect(t, 400, "Request_BadRequest")

		e.call(tok, "DELETE", "/v1.0/servicePrincipals(appId='"+appID+"')", nil).expect(t, 204)
		e.call(tok, "GET", "/v1.0/servicePrincipals/"+spID, nil).expect(t, 404, "Request_ResourceNotFound")
	})
}

func TestAppRoleAssignments(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		roleID := uuid.NewString()
		userRoleID := uuid.NewString()
		app := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "resource",
			"appRoles": []map[string]any{
				{"id": roleID, "value": "Data.Read", "allowedMemberTypes": []string{"Application"}},
				{"id": userRoleID, "value": "Data.User", "allowedMemberTypes": []string{"User"}},
			}}).expect(t, 201)
		resourceID := e.call(tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": app.str("appId")}).expect(t, 201).str("id")
		worker := e.newClient(e.contoso.Tenant.ID, "worker")

		body := map[string]any{"principalId": worker.sp.ID, "resourceId": resourceID, "appRoleId": roleID}
		created := e.call(tok, "POST", "/v1.0/servicePrincipals/"+worker.sp.ID+"/appRoleAssignments", body).expect(t, 201)
		sameKeys(t, "appRoleAssignment", created.doc, assignmentKeys, "@odata.context")
		if created.str("principalType") != "ServicePrincipal" || created.str("principalDisplayName") != "worker" ||
			created.str("resourceDisplayName") != "resource" || created.doc["deletedDateTime"] != nil || created.str("appRoleId") != roleID {
			t.Fatalf("created: %s", created.raw)
		}
		e.call(tok, "POST", "/v1.0/servicePrincipals/"+worker.sp.ID+"/appRoleAssignments", body).expect(t, 400, "Request_BadRequest")
		// The path's principal must be the assignment's.
		e.call(tok, "POST", "/v1.0/servicePrincipals/"+resourceID+"/appRoleAssignments", body).expect(t, 400, "Request_BadRequest")
		// A role for users only cannot go to a service principal.
		e.call(tok, "POST", "/v1.0/servicePrincipals/"+worker.sp.ID+"/appRoleAssignments",
			map[string]any{"principalId": worker.sp.ID, "resourceId": resourceID, "appRoleId": userRoleID}).expect(t, 400, "Request_BadRequest")

		held := e.call(tok, "GET", "/v1.0/servicePrincipals/"+worker.sp.ID+"/appRoleAssignments", nil).expect(t, 200)
		if ids := held.ids(); len(ids) != 1 || ids[0] != created.str("id") {
			t.Fatalf("appRoleAssignments = %s", held.raw)
		}
		granted := e.call(tok, "GET", "/v1.0/servicePrincipals/"+resourceID+"/appRoleAssignedTo", nil).expect(t, 200)
		if ids := granted.ids(); len(ids) != 1 || ids[0] != created.str("id") {
			t.Fatalf("appRoleAssignedTo = %s", granted.raw)
		}

		// The role reaches the worker's tokens.
		tokDoc := e.tokenFor(e.contoso.Tenant.ID, worker.app.AppID, worker.secret, app.str("appId")+"/.default")
		if tokDoc == "" {
			t.Fatal("no token")
		}

		// Deleting through the wrong end is a 404; through the right one, 204.
		e.call(tok, "DELETE", "/v1.0/servicePrincipals/"+resourceID+"/appRoleAssignments/"+created.str("id"), nil).expect(t, 404, "Request_ResourceNotFound")
		e.call(tok, "DELETE", "/v1.0/servicePrincipals/"+resourceID+"/appRoleAssignedTo/"+created.str("id"), nil).expect(t, 204)
		e.call(tok, "DELETE", "/v1.0/servicePrincipals/"+resourceID+"/appRoleAssignedTo/"+created.str("id"), nil).expect(t, 404, "Request_ResourceNotFound")

		// appRoleAssignedTo: the resource grants, here to a user.
		user := e.call(tok, "POST", "/v1.0/users", newUserBody("ada", e.contoso)).expect(t, 201)
		toUser := e.call(tok, "POST", "/v1.0/servicePrincipals/"+resourceID+"/appRoleAssignedTo",
			map[string]any{"principalId": user.str("id"), "resourceId": resourceID, "appRoleId": userRoleID}).expect(t, 201)
		if toUser.str("principalType") != "User" || toUser.str("principalDisplayName") != "ada" {
			t.Fatalf("assignment to a user: %s", toUser.raw)
		}
		userAs := e.call(tok, "GET", "/v1.0/users/"+user.str("id")+"/appRoleAssignments", nil).expect(t, 200)
		if ids := userAs.ids(); len(ids) != 1 || ids[0] != toUser.str("id") {
			t.Fatalf("user's appRoleAssignments = %s", userAs.raw)
		}
		e.call(tok, "DELETE", "/v1.0/servicePrincipals/"+resourceID+"/appRoleAssignedTo/"+toUser.str("id"), nil).expect(t, 204)
	})
}
