package arm_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

func ficBody(subject string) map[string]any {
	return map[string]any{"properties": map[string]any{"issuer": "https://token.actions.githubusercontent.com", "subject": subject, "audiences": []string{"api://AzureADTokenExchange"}}}
}

func TestIdentities(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg := sub(e) + "/resourceGroups/app"
		iid := rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-app"

		e.want(e.call(admin, "PUT", iid, map[string]any{"location": "westeurope"}), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "GET", iid, nil), 404, "ResourceNotFound")

		// Create: the directory's identity is the resource.
		r := e.call(admin, "PUT", iid, map[string]any{"location": "West Europe", "tags": map[string]string{"a": "b"}})
		e.want(r, 201, "")
		props, _ := r.doc["properties"].(map[string]any)
		tags, _ := r.doc["tags"].(map[string]any)
		if r.doc["id"] != iid || r.doc["name"] != "id-app" || r.doc["type"] != "Microsoft.ManagedIdentity/userAssignedIdentities" ||
			r.doc["location"] != "westeurope" || tags["a"] != "b" || props["tenantId"] != tid {
			t.Errorf("created identity %s", r.raw)
		}
		sp, err := e.dir.ManagedIdentity(e.ctx, tid, iid)
		must(t, err)
		if props["principalId"] != sp.ID || props["clientId"] != sp.AppID || !sp.IsUserAssigned() {
			t.Errorf("identity %s, directory %+v", r.raw, sp)
		}
		// PUT again: 200, same principal, new tags.
		r = e.call(admin, "PUT", strings.ToUpper(iid[:1])+iid[1:], map[string]any{"location": "westeurope", "tags": map[string]string{"c": "d"}})
		e.want(r, 200, "")
		props, _ = r.doc["properties"].(map[string]any)
		if tags, _ := r.doc["tags"].(map[string]any); tags["c"] != "d" || props["principalId"] != sp.ID {
			t.Errorf("updated identity %s", r.raw)
		}
		e.want(e.call(admin, "PUT", iid, map[string]any{"location": "eastus"}), 400, "InvalidResourceLocation")
		// Validation.
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other", map[string]any{}), 400, "LocationRequired")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bad.", map[string]any{"location": "westeurope"}), 400, "BadRequest")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other", "{not json"), 400, "InvalidRequestContent")

		// GET and lists.
		r = e.call(admin, "GET", iid, nil)
		e.want(r, 200, "")
		if r.doc["id"] != iid {
			t.Errorf("get %s", r.raw)
		}
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/second", map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/second/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-second", map[string]any{"location": "westeurope"}), 201, "")
		r = e.call(admin, "GET", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 1 {
			t.Errorf("group list %d %s", r.status, r.raw)
		}
		r = e.call(admin, "GET", sub(e)+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 2 {
			t.Errorf("subscription list %d %s", r.status, r.raw)
		}
		e.want(e.call(admin, "POST", iid, nil), 405, "MethodNotAllowed")

		// Federated identity credentials.
		fic := iid + "/federatedIdentityCredentials/gh-main"
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope/federatedIdentityCredentials/x1", ficBody("repo:o/r:ref:refs/heads/main")), 404, "ParentResourceNotFound")
		r = e.call(admin, "PUT", fic, ficBody("repo:o/r:ref:refs/heads/main"))
		e.want(r, 201, "")
		fp, _ := r.doc["properties"].(map[string]any)
		if r.doc["id"] != fic || r.doc["name"] != "gh-main" || r.doc["type"] != "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials" ||
			fp["issuer"] != "https://token.actions.githubusercontent.com" || fp["subject"] != "repo:o/r:ref:refs/heads/main" {
			t.Errorf("created credential %s", r.raw)
		}
		// Update in place.
		r = e.call(admin, "PUT", fic, ficBody("repo:o/r:environment:prod"))
		e.want(r, 200, "")
		e.want(e.call(admin, "GET", fic, nil), 200, "")
		sp, err = e.dir.ManagedIdentity(e.ctx, tid, iid)
		must(t, err)
		if len(sp.FederatedCredentials) != 1 || sp.FederatedCredentials[0].Subject != "repo:o/r:environment:prod" {
			t.Errorf("directory credentials %+v", sp.FederatedCredentials)
		}
		// Validation is the directory's: 400, never 500.
		e.want(e.call(admin, "PUT", iid+"/federatedIdentityCredentials/x2", map[string]any{"properties": map[string]any{"issuer": "http://insecure", "subject": "s", "audiences": []string{"a"}}}), 400, "BadRequest")
		e.want(e.call(admin, "PUT", iid+"/federatedIdentityCredentials/x2", map[string]any{"properties": map[string]any{"issuer": "https://i", "subject": "s", "audiences": []string{}}}), 400, "BadRequest")
		e.want(e.call(admin, "PUT", iid+"/federatedIdentityCredentials/x2", map[string]any{}), 400, "BadRequest")
		e.want(e.call(admin, "PUT", iid+"/federatedIdentityCredentials/a%20b", ficBody("s")), 400, "BadRequest")
		// Issuer and subject are unique per identity.
		e.want(e.call(admin, "PUT", iid+"/federatedIdentityCredentials/dup", ficBody("repo:o/r:environment:prod")), 409, "Conflict")
		// At most 20.
		for i := 1; i < 20; i++ {
			e.want(e.call(admin, "PUT", fmt.Sprintf("%s/federatedIdentityCredentials/fic-%02d", iid, i), ficBody(fmt.Sprintf("subject-%d", i))), 201, "")
		}
		e.want(e.call(admin, "PUT", iid+"/federatedIdentityCredentials/fic-21", ficBody("subject-21")), 400, "BadRequest")
		// Updating one at the limit still works.
		e.want(e.call(admin, "PUT", iid+"/federatedIdentityCredentials/fic-01", ficBody("subject-1b")), 200, "")
		r = e.call(admin, "GET", iid+"/federatedIdentityCredentials", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 20 {
			t.Errorf("credential list %d %s", r.status, r.raw)
		}
		e.want(e.call(admin, "DELETE", fic, nil), 200, "")
		e.want(e.call(admin, "DELETE", fic, nil), 204, "")
		e.want(e.call(admin, "GET", fic, nil), 404, "ResourceNotFound")

		// Audited.
		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: tid})
		must(t, err)
		found := 0
		for _, rec := range recs {
			if rec.Result == "success" && (rec.Action == "Microsoft.ManagedIdentity/userAssignedIdentities/write" && strings.EqualFold(rec.Target, iid) ||
				rec.Action == "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete" && strings.EqualFold(rec.Target, fic)) {
				found++
			}
		}
		if found < 2 {
			t.Errorf("audit records of identity changes: %d", found)
		}

		// DELETE: 200, then 204; the directory's identity is gone.
		e.want(e.call(admin, "DELETE", iid, nil), 200, "")
		e.want(e.call(admin, "DELETE", iid, nil), 204, "")
		e.want(e.call(admin, "GET", iid, nil), 404, "ResourceNotFound")
		if _, err := e.dir.ManagedIdentity(e.ctx, tid, iid); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("identity after delete: %v", err)
		}
		e.want(e.call(admin, "GET", iid+"/federatedIdentityCredentials", nil), 404, "ParentResourceNotFound")
		// And can be made again, as a new principal.
		r = e.call(admin, "PUT", iid, map[string]any{"location": "westeurope"})
		e.want(r, 201, "")
		if props, _ := r.doc["properties"].(map[string]any); props["principalId"] == sp.ID {
			t.Errorf("recreated identity kept its principal id")
		}
	})
}

func TestIdentityPermissions(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg := sub(e) + "/resourceGroups/app"
		iid := rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-perm"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", iid, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", iid+"/federatedIdentityCredentials/one", ficBody("s1")), 201, "")

		reader := e.newApp(tid, "reader", false)
		tok := e.armToken(tid, reader.app.AppID, reader.secret)
		e.want(e.call(tok, "GET", iid, nil), 403, "AuthorizationFailed")
		r := e.call(tok, "GET", sub(e)+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 0 {
			t.Errorf("list without a role %d %s", r.status, r.raw)
		}
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.sp.ID}}), 201, "")
		e.want(e.call(tok, "GET", iid, nil), 200, "")
		e.want(e.call(tok, "GET", iid+"/federatedIdentityCredentials/one", nil), 200, "")
		r = e.call(tok, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-reader", map[string]any{"location": "westeurope"})
		e.want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.message(), "'Microsoft.ManagedIdentity/userAssignedIdentities/write'") {
			t.Errorf("message %q", r.message())
		}
		r = e.call(tok, "PUT", iid+"/federatedIdentityCredentials/two", ficBody("s2"))
		e.want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.message(), "'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write'") {
			t.Errorf("message %q", r.message())
		}
		e.want(e.call(tok, "DELETE", iid+"/federatedIdentityCredentials/one", nil), 403, "AuthorizationFailed")
		e.want(e.call(tok, "DELETE", iid, nil), 403, "AuthorizationFailed")
		e.want(e.call(admin, "GET", iid+"/federatedIdentityCredentials/one", nil), 200, "")
		if _, err := e.dir.ManagedIdentity(e.ctx, tid, iid); err != nil {
			t.Errorf("identity after refused delete: %v", err)
		}
		// Another tenant cannot reach it.
		fab := e.adminToken(e.fabrikam)
		e.want(e.call(fab, "GET", iid, nil), 401, "InvalidAuthenticationTokenTenant")
	})
}

func TestIdentityGroupCascade(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg := sub(e) + "/resourceGroups/doomed"
		keep := sub(e) + "/resourceGroups/kept"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", keep, map[string]any{"location": "westeurope"}), 201, "")
		doomed := rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-doomed"
		kept := keep + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-kept"
		e.want(e.call(admin, "PUT", doomed, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", doomed+"/federatedIdentityCredentials/fic1", ficBody("s")), 201, "")
		e.want(e.call(admin, "PUT", kept, map[string]any{"location": "westeurope"}), 201, "")

		e.want(e.call(admin, "DELETE", rg, nil), 200, "")
		if _, err := e.dir.ManagedIdentity(e.ctx, tid, doomed); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("identity after its group's delete: %v", err)
		}
		if _, err := e.dir.ManagedIdentity(e.ctx, tid, kept); err != nil {
			t.Errorf("kept identity: %v", err)
		}
		r := e.call(admin, "GET", sub(e)+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 1 {
			t.Errorf("list after the cascade %d %s", r.status, r.raw)
		}
		// The group and the name are free again.
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", doomed, map[string]any{"location": "westeurope"}), 201, "")
	})
}
