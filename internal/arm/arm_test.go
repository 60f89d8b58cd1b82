package arm_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

func sub(e *env) string { return "/subscriptions/" + e.contoso.Tenant.SubscriptionID }

func TestAuthentication(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		// api-version is required.
		r := e.raw(admin, "GET", sub(e), nil)
		e.want(r, 400, "MissingApiVersionParameter")
		if r.message() != "The api-version query parameter (?api-version=) is required for all requests." {
			t.Errorf("message %q", r.message())
		}
		// No token: 401 naming the subscription's tenant's authority.
		r = e.call("", "GET", sub(e), nil)
		e.want(r, 401, "AuthenticationFailed")
		wa := r.header.Get("WWW-Authenticate")
		if !strings.Contains(wa, `authorization_uri="https://login.microsoftonline.com/`+e.contoso.Tenant.ID+`"`) || !strings.Contains(wa, `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate %q", wa)
		}
		e.want(e.call("not.a.token", "GET", sub(e), nil), 401, "InvalidAuthenticationToken")
		// A Graph token is for another audience.
		graphTok := e.tokenFor(e.contoso.Tenant.ID, e.contoso.Admin.AppID, e.contoso.AdminSecret.SecretText, "https://graph.microsoft.com/.default")
		e.want(e.call(graphTok, "GET", sub(e), nil), 401, "InvalidAuthenticationTokenAudience")
		// A token of another tenant.
		other := e.adminToken(e.fabrikam)
		r = e.call(other, "GET", sub(e), nil)
		e.want(r, 401, "InvalidAuthenticationTokenTenant")
		if !strings.Contains(r.header.Get("WWW-Authenticate"), e.contoso.Tenant.ID) {
			t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
		}
		e.want(e.call(admin, "GET", "/subscriptions/"+uuid.NewString(), nil), 404, "SubscriptionNotFound")
		e.want(e.call(admin, "GET", "/subscriptions/not-a-guid/resourceGroups/x", nil), 400, "InvalidResourceId")
		e.want(e.call(admin, "GET", sub(e)+"//resourceGroups", nil), 400, "InvalidResourceId")

		// The subscription, to its owner.
		r = e.call(admin, "GET", sub(e), nil)
		e.want(r, 200, "")
		if r.doc["subscriptionId"] != e.contoso.Tenant.SubscriptionID || r.doc["tenantId"] != e.contoso.Tenant.ID || r.doc["state"] != "Enabled" {
			t.Errorf("subscription %s", r.raw)
		}
		r = e.call(admin, "GET", "/subscriptions", nil)
		e.want(r, 200, "")
		if v, _ := r.doc["value"].([]any); len(v) != 1 {
			t.Errorf("subscriptions %s", r.raw)
		}
		// A principal with no role sees no subscription.
		nobody := e.newApp(e.contoso.Tenant.ID, "nobody", false)
		tok := e.armToken(e.contoso.Tenant.ID, nobody.app.AppID, nobody.secret)
		r = e.call(tok, "GET", "/subscriptions", nil)
		if v, _ := r.doc["value"].([]any); r.status != 200 || len(v) != 0 {
			t.Errorf("subscriptions of nobody %d %s", r.status, r.raw)
		}
		r = e.call(tok, "GET", sub(e), nil)
		e.want(r, 403, "AuthorizationFailed")
		want := "The client '" + nobody.app.AppID + "' with object id '" + nobody.sp.ID + "' does not have authorization to perform action 'Microsoft.Resources/subscriptions/read' over scope '" + sub(e) + "' or the scope is invalid. If access was recently granted, please refresh your credentials."
		if r.message() != want {
			t.Errorf("message %q\nwant %q", r.message(), want)
		}
		// The refusal is audited.
		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: e.contoso.Tenant.ID})
		must(t, err)
		found := false
		for _, rec := range recs {
			if rec.Actor == nobody.sp.ID && rec.Result == "AuthorizationFailed" && rec.Action == "Microsoft.Resources/subscriptions/read" && rec.TargetTenant == e.contoso.Tenant.ID {
				found = true
			}
		}
		if !found {
			t.Error("no audit record of the refusal")
		}
	})
}

func TestResourceGroups(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/Shared-RG"
		r := e.call(admin, "PUT", rg, map[string]any{"location": "West Europe", "tags": map[string]string{"env": "prod"}})
		e.want(r, 201, "")
		if r.doc["id"] != rg || r.doc["name"] != "Shared-RG" || r.doc["location"] != "westeurope" || r.doc["type"] != "Microsoft.Resources/resourceGroups" {
			t.Errorf("created %s", r.raw)
		}
		// Ids are case-insensitive; the answer is in canonical case.
		r = e.call(admin, "PUT", strings.ToLower(rg), map[string]any{"location": "westeurope"})
		e.want(r, 200, "")
		if r.doc["id"] != rg {
			t.Errorf("updated id %v", r.doc["id"])
		}
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "eastus"}), 409, "InvalidResourceGroupLocation")
		e.want(e.call(admin, "PUT", rg, map[string]any{}), 400, "LocationRequired")
		e.want(e.call(admin, "PUT", rg, "{not json"), 400, "InvalidRequestContent")
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/bad%21name", map[string]any{"location": "x"}), 400, "InvalidResourceId")
		r = e.call(admin, "GET", strings.ToUpper(rg), nil)
		e.want(r, 200, "")
		if r.doc["name"] != "Shared-RG" {
			t.Errorf("get %s", r.raw)
		}
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/other", map[string]any{"location": "westeurope"}), 201, "")
		r = e.call(admin, "GET", sub(e)+"/resourcegroups", nil)
		e.want(r, 200, "")
		if v, _ := r.doc["value"].([]any); len(v) != 2 {
			t.Errorf("list %s", r.raw)
		}
		e.want(e.call(admin, "GET", sub(e)+"/resourceGroups/missing", nil), 404, "ResourceGroupNotFound")
		if r := e.call(admin, "HEAD", rg, nil); r.status != 204 {
			t.Errorf("HEAD of a group: %d", r.status)
		}
		if r := e.call(admin, "HEAD", sub(e)+"/resourceGroups/missing", nil); r.status != 404 {
			t.Errorf("HEAD of a missing group: %d", r.status)
		}
		e.want(e.call(admin, "GET", sub(e)+"/resourceGroups/missing/providers/Microsoft.KeyVault/vaults/kv", nil), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "GET", rg+"/providers/Microsoft.KeyVault/vaults/kv", nil), 404, "ResourceNotFound")
		e.want(e.call(admin, "POST", rg, nil), 405, "MethodNotAllowed")

		// Cascade: resources and role assignments at or below the group go with it.
		reader := e.newApp(e.contoso.Tenant.ID, "reader", false)
		assignment := rg + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.NewString()
		e.want(e.call(admin, "PUT", assignment, map[string]any{"properties": map[string]any{
			"roleDefinitionId": sub(e) + "/providers/Microsoft.Authorization/roleDefinitions/" + rbac.RoleReader, "principalId": reader.sp.ID}}), 201, "")
		must(t, e.st.CreateResource(e.ctx, store.Resource{TenantID: e.contoso.Tenant.ID, ID: rg + "/providers/Microsoft.KeyVault/vaults/kv", Type: "Microsoft.KeyVault/vaults", Name: "kv"}))
		e.want(e.call(admin, "DELETE", rg, nil), 200, "")
		e.want(e.call(admin, "GET", rg, nil), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "DELETE", rg, nil), 404, "ResourceGroupNotFound")
		if _, err := e.st.GetResource(e.ctx, rg+"/providers/Microsoft.KeyVault/vaults/kv"); err == nil {
			t.Error("resource survived its group")
		}
		as, err := e.st.ListRoleAssignments(e.ctx, store.RoleAssignmentQuery{TenantID: e.contoso.Tenant.ID, PrincipalIDs: []string{reader.sp.ID}})
		must(t, err)
		if len(as) != 0 {
			t.Errorf("assignments survived the group: %+v", as)
		}
		// The change is audited with the actor and tenants.
		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: e.contoso.Tenant.ID})
		must(t, err)
		var deleted bool
		for _, rec := range recs {
			if rec.Action == "Microsoft.Resources/subscriptions/resourceGroups/delete" && rec.Result == "success" && rec.Target == rg &&
				rec.Actor == e.contoso.AdminSP.ID && rec.ActorTenant == e.contoso.Tenant.ID && rec.TargetTenant == e.contoso.Tenant.ID {
				deleted = true
			}
		}
		if !deleted {
			t.Errorf("no audit record of the delete in %+v", recs)
		}
	})
}

func TestReaderAndContributor(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/app"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		reader := e.newApp(e.contoso.Tenant.ID, "reader", false)
		tok := e.armToken(e.contoso.Tenant.ID, reader.app.AppID, reader.secret)
		e.want(e.call(tok, "GET", rg, nil), 403, "AuthorizationFailed")

		id := uuid.NewString()
		r := e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+id, map[string]any{"properties": map[string]any{
			"roleDefinitionId": "/subscriptions/" + e.contoso.Tenant.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + rbac.RoleReader,
			"principalId":      reader.sp.ID, "principalType": "ServicePrincipal"}})
		e.want(r, 201, "")
		props, _ := r.doc["properties"].(map[string]any)
		if r.doc["name"] != id || r.doc["id"] != rg+"/providers/Microsoft.Authorization/roleAssignments/"+id || props["scope"] != rg ||
			props["principalType"] != "ServicePrincipal" || props["roleDefinitionId"] != sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+rbac.RoleReader {
			t.Errorf("assignment %s", r.raw)
		}
		// The same PUT again is fine; a different one under the id is not.
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+id, map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.sp.ID}}), 200, "")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+id, map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleOwner, "principalId": reader.sp.ID}}), 400, "RoleAssignmentUpdateNotPermitted")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.sp.ID}}), 409, "RoleAssignmentExists")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleOwner, "principalId": reader.sp.ID, "principalType": "User"}}), 400, "UnmatchedPrincipalType")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": uuid.NewString(), "principalId": reader.sp.ID}}), 400, "RoleDefinitionDoesNotExist")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/not-a-guid", map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleOwner, "principalId": reader.sp.ID}}), 400, "InvalidRoleAssignmentId")

		// Reader: GET yes, PUT no (and the refusal is audited), nothing
		// above the group but the subscription itself, which any
		// assignment within it makes visible (TestSubscriptionVisibility).
		e.want(e.call(tok, "GET", rg, nil), 200, "")
		e.want(e.call(tok, "PUT", rg, map[string]any{"location": "westeurope"}), 403, "AuthorizationFailed")
		e.want(e.call(tok, "GET", sub(e), nil), 200, "")
		e.want(e.call(tok, "GET", sub(e)+"/resourceGroups/other", nil), 403, "AuthorizationFailed")
		e.want(e.call(tok, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleOwner, "principalId": reader.sp.ID}}), 403, "AuthorizationFailed")
		r = e.call(tok, "GET", sub(e)+"/resourceGroups", nil)
		if v, _ := r.doc["value"].([]any); r.status != 200 || len(v) != 1 {
			t.Errorf("reader's groups: %d %s", r.status, r.raw)
		}

		// Listing, with filters.
		r = e.call(admin, "GET", rg+"/providers/Microsoft.Authorization/roleAssignments", nil)
		e.want(r, 200, "")
		if v, _ := r.doc["value"].([]any); len(v) != 2 { // the admin's Owner at the subscription, and the Reader
			t.Errorf("assignments %s", r.raw)
		}
		r = e.call(admin, "GET", sub(e)+"/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()", nil)
		if v, _ := r.doc["value"].([]any); r.status != 200 || len(v) != 1 {
			t.Errorf("atScope at the subscription %d %s", r.status, r.raw)
		}
		r = e.call(admin, "GET", sub(e)+"/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20'"+reader.sp.ID+"'", nil)
		if v, _ := r.doc["value"].([]any); r.status != 200 || len(v) != 1 {
			t.Errorf("by principal %d %s", r.status, r.raw)
		}
		e.want(e.call(admin, "GET", sub(e)+"/providers/Microsoft.Authorization/roleAssignments?$filter=bogus", nil), 400, "InvalidFilterInQueryString")
		e.want(e.call(admin, "GET", rg+"/providers/Microsoft.Authorization/roleAssignments/"+id, nil), 200, "")
		e.want(e.call(admin, "GET", sub(e)+"/providers/Microsoft.Authorization/roleAssignments/"+id, nil), 404, "RoleAssignmentNotFound")

		// Explain.
		r = e.call(admin, "GET", "/providers/TenantBridge.Authorization/explain?principalId="+reader.sp.ID+"&action=Microsoft.Resources/subscriptions/resourceGroups/read&scope="+rg, nil)
		e.want(r, 200, "")
		if r.doc["allowed"] != true || !strings.Contains(r.doc["because"].(string), `"Reader"`) {
			t.Errorf("explain %s", r.raw)
		}
		r = e.call(admin, "GET", "/providers/TenantBridge.Authorization/explain?principalId="+reader.sp.ID+"&action=Microsoft.Resources/subscriptions/resourceGroups/write&scope="+rg, nil)
		if r.status != 200 || r.doc["allowed"] != false || !strings.Contains(r.doc["because"].(string), "no assignment grants") {
			t.Errorf("explain write %s", r.raw)
		}
		e.want(e.call(tok, "GET", "/providers/TenantBridge.Authorization/explain?principalId="+reader.sp.ID+"&action=x/read&scope="+sub(e), nil), 403, "AuthorizationFailed")

		// Removing the assignment takes the access away on the next request.
		e.want(e.call(admin, "DELETE", rg+"/providers/Microsoft.Authorization/roleAssignments/"+id, nil), 200, "")
		e.want(e.call(admin, "DELETE", rg+"/providers/Microsoft.Authorization/roleAssignments/"+id, nil), 204, "")
		e.want(e.call(tok, "GET", rg, nil), 403, "AuthorizationFailed")

		// Contributor manages groups but not access.
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleContributor, "principalId": reader.sp.ID}}), 201, "")
		e.want(e.call(tok, "PUT", rg, map[string]any{"location": "westeurope", "tags": map[string]string{"a": "b"}}), 200, "")
		e.want(e.call(tok, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleOwner, "principalId": reader.sp.ID}}), 403, "AuthorizationFailed")
	})
}

func TestCrossTenantPrincipal(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		// A provider (fabrikam) app, provisioned into the customer (contoso).
		provider := e.newApp(e.fabrikam.Tenant.ID, "provider", true)
		inCustomer, err := e.dir.CreateServicePrincipal(e.ctx, e.contoso.Tenant.ID, provider.app.AppID)
		must(t, err)
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/managed"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")

		// Its home object id is unknown in the customer tenant.
		r := e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleContributor, "principalId": provider.sp.ID}})
		e.want(r, 400, "PrincipalNotFound")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleContributor, "principalId": uuid.NewString()}}), 400, "PrincipalNotFound")
		// An application object is not a principal.
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleContributor, "principalId": e.contoso.Admin.ID}}), 400, "PrincipalNotFound")
		// Its service principal in the customer tenant is.
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleContributor, "principalId": inCustomer.ID}}), 201, "")

		customerTok := e.armToken(e.contoso.Tenant.ID, provider.app.AppID, provider.secret)
		e.want(e.call(customerTok, "PUT", rg, map[string]any{"location": "westeurope", "tags": map[string]string{"by": "provider"}}), 200, "")
		e.want(e.call(customerTok, "GET", sub(e)+"/resourceGroups/other", nil), 403, "AuthorizationFailed")
		// Not in its home tenant, and not with the customer token there.
		homeTok := e.armToken(e.fabrikam.Tenant.ID, provider.app.AppID, provider.secret)
		fsub := "/subscriptions/" + e.fabrikam.Tenant.SubscriptionID
		e.want(e.call(homeTok, "PUT", fsub+"/resourceGroups/managed", map[string]any{"location": "westeurope"}), 403, "AuthorizationFailed")
		e.want(e.call(customerTok, "PUT", fsub+"/resourceGroups/managed", map[string]any{"location": "westeurope"}), 401, "InvalidAuthenticationTokenTenant")
		e.want(e.call(homeTok, "GET", rg, nil), 401, "InvalidAuthenticationTokenTenant")

		// The audit record names the customer tenant as the target.
		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: e.contoso.Tenant.ID})
		must(t, err)
		var ok bool
		for _, rec := range recs {
			if rec.Actor == inCustomer.ID && rec.Result == "success" && rec.TargetTenant == e.contoso.Tenant.ID && rec.Action == "Microsoft.Resources/subscriptions/resourceGroups/write" {
				ok = true
			}
		}
		if !ok {
			t.Error("no audit record of the provider's change")
		}
	})
}

func TestRoleDefinitions(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		r := e.call(admin, "GET", sub(e)+"/resourceGroups/any/providers/Microsoft.Authorization/roleDefinitions", nil)
		e.want(r, 200, "")
		v, _ := r.doc["value"].([]any)
		if len(v) != len(rbac.BuiltInRoles()) {
			t.Errorf("%d role definitions, want %d", len(v), len(rbac.BuiltInRoles()))
		}
		var reader map[string]any
		for _, x := range v {
			if m := x.(map[string]any); m["name"] == rbac.RoleReader {
				reader = m
			}
		}
		props, _ := reader["properties"].(map[string]any)
		perms, _ := props["permissions"].([]any)
		if reader["id"] != sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+rbac.RoleReader || reader["type"] != "Microsoft.Authorization/roleDefinitions" ||
			props["roleName"] != "Reader" || props["type"] != "BuiltInRole" || len(perms) != 1 {
			t.Fatalf("Reader %v", reader)
		}
		p0 := perms[0].(map[string]any)
		if a, _ := p0["actions"].([]any); len(a) != 1 || a[0] != "*/read" {
			t.Errorf("Reader's actions %v", p0)
		}
		for _, k := range []string{"notActions", "dataActions", "notDataActions"} {
			if _, ok := p0[k].([]any); !ok {
				t.Errorf("Reader's %s is not an array: %v", k, p0[k])
			}
		}
		r = e.call(admin, "GET", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName%20eq%20'Contributor'", nil)
		if v, _ := r.doc["value"].([]any); r.status != 200 || len(v) != 1 {
			t.Errorf("by name %s", r.raw)
		}
		e.want(e.call(admin, "GET", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+rbac.RoleOwner, nil), 200, "")
		e.want(e.call(admin, "GET", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+uuid.NewString(), nil), 404, "RoleDefinitionDoesNotExist")

		// A custom role.
		id := uuid.NewString()
		def := map[string]any{"properties": map[string]any{"roleName": "Group Reader", "description": "reads groups", "type": "CustomRole",
			"permissions":      []any{map[string]any{"actions": []string{"Microsoft.Resources/subscriptions/resourceGroups/read"}}},
			"assignableScopes": []string{sub(e)}}}
		r = e.call(admin, "PUT", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+id, def)
		e.want(r, 201, "")
		if p, _ := r.doc["properties"].(map[string]any); p["type"] != "CustomRole" || p["roleName"] != "Group Reader" {
			t.Errorf("custom %s", r.raw)
		}
		e.want(e.call(admin, "PUT", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+id, def), 201, "") // updated: 201 too (armauthorization)
		e.want(e.call(admin, "PUT", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+uuid.NewString(), def), 409, "RoleDefinitionWithSameNameExists")
		e.want(e.call(admin, "PUT", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+rbac.RoleReader, def), 400, "")
		r = e.call(admin, "GET", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions", nil)
		if v, _ := r.doc["value"].([]any); len(v) != len(rbac.BuiltInRoles())+1 {
			t.Errorf("with the custom role: %d", len(v))
		}
		// It works, and cannot be deleted while assigned.
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/rg1", map[string]any{"location": "westeurope"}), 201, "")
		user := e.newApp(e.contoso.Tenant.ID, "custom user", false)
		aid := uuid.NewString()
		e.want(e.call(admin, "PUT", sub(e)+"/providers/Microsoft.Authorization/roleAssignments/"+aid, map[string]any{"properties": map[string]any{
			"roleDefinitionId": id, "principalId": user.sp.ID}}), 201, "")
		tok := e.armToken(e.contoso.Tenant.ID, user.app.AppID, user.secret)
		e.want(e.call(tok, "GET", sub(e)+"/resourceGroups/rg1", nil), 200, "")
		e.want(e.call(tok, "DELETE", sub(e)+"/resourceGroups/rg1", nil), 403, "AuthorizationFailed")
		e.want(e.call(admin, "DELETE", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+id, nil), 409, "RoleDefinitionHasAssignments")
		e.want(e.call(admin, "DELETE", sub(e)+"/providers/Microsoft.Authorization/roleAssignments/"+aid, nil), 200, "")
		e.want(e.call(admin, "DELETE", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+id, nil), 200, "")
		e.want(e.call(admin, "DELETE", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+id, nil), 204, "")
	})
}

func TestDenyAssignments(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/locked"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		id := uuid.NewString()
		must(t, e.st.CreateDenyAssignment(e.ctx, store.DenyAssignment{TenantID: e.contoso.Tenant.ID, ID: id, Name: "managed app lock", Scope: rg,
			Permissions: []store.Permission{{Actions: []string{"*"}, NotActions: []string{"*/read"}}},
			Principals:  []store.DenyPrincipal{{ID: store.EveryonePrincipalID, Type: store.PrincipalSystemDefined}}, IsSystemProtected: true}))
		r := e.call(admin, "GET", rg+"/providers/Microsoft.Authorization/denyAssignments", nil)
		e.want(r, 200, "")
		v, _ := r.doc["value"].([]any)
		if len(v) != 1 {
			t.Fatalf("deny assignments %s", r.raw)
		}
		d := v[0].(map[string]any)
		p := d["properties"].(map[string]any)
		if d["id"] != rg+"/providers/Microsoft.Authorization/denyAssignments/"+id || p["denyAssignmentName"] != "managed app lock" || p["scope"] != rg || p["isSystemProtected"] != true {
			t.Errorf("deny assignment %v", d)
		}
		// Listed from above too (it is below), and from below (it is above).
		for _, scope := range []string{sub(e), rg + "/providers/Microsoft.KeyVault/vaults/kv"} {
			r = e.call(admin, "GET", scope+"/providers/Microsoft.Authorization/denyAssignments", nil)
			if v, _ := r.doc["value"].([]any); r.status != 200 || len(v) != 1 {
				t.Errorf("from %s: %s", scope, r.raw)
			}
		}
		r = e.call(admin, "GET", sub(e)+"/providers/Microsoft.Authorization/denyAssignments?$filter=atScope()", nil)
		if v, _ := r.doc["value"].([]any); r.status != 200 || len(v) != 0 {
			t.Errorf("atScope at the subscription: %s", r.raw)
		}
		e.want(e.call(admin, "GET", rg+"/providers/Microsoft.Authorization/denyAssignments/"+id, nil), 200, "")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/denyAssignments/"+id, map[string]any{}), 405, "MethodNotAllowed")
		// It blocks even the Owner's writes.
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 403, "DenyAssignmentAuthorizationFailed")
		e.want(e.call(admin, "GET", rg, nil), 200, "")
	})
}

func TestHostileInput(t *testing.T) {
	e := newEnv(t, storetestSQLite(t))
	admin := e.adminToken(e.contoso)
	for _, p := range []string{
		"/", "/subscriptions/", "/x", "/providers", "/providers/Microsoft.Authorization/roleAssignments",
		"/subscriptions/" + e.contoso.Tenant.SubscriptionID + "/providers/Microsoft.Authorization",
		"/subscriptions/" + e.contoso.Tenant.SubscriptionID + "/providers/Microsoft.Authorization/roleAssignments/a/b",
		"/subscriptions/" + e.contoso.Tenant.SubscriptionID + "/resourceGroups/%00",
		"/subscriptions/" + e.contoso.Tenant.SubscriptionID + "/resourceGroups/" + strings.Repeat("a", 3000),
	} {
		for _, m := range []string{"GET", "PUT", "DELETE", "PATCH"} {
			r := e.call(admin, m, p, "{}")
			if r.status >= 500 || (r.status >= 400 && r.code() == "") {
				t.Errorf("%s %s: %d %s", m, p, r.status, r.raw)
			}
		}
	}
	big := `{"location":"` + strings.Repeat("a", 2<<20) + `"}`
	r := e.call(admin, "PUT", "/subscriptions/"+e.contoso.Tenant.SubscriptionID+"/resourceGroups/big", big)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: %d %s", r.status, r.raw)
	}
}
