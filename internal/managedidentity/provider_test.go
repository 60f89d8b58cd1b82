package managedidentity_test

import (
	"errors"
	"fmt"
	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

var must = armtest.Must

func ficBody(subject string) map[string]any {
	return map[string]any{"properties": map[string]any{"issuer": "https://token.actions.githubusercontent.com", "subject": subject, "audiences": []string{"api://AzureADTokenExchange"}}}
}

func TestIdentities(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/app"
		iid := rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-app"

		e.Want(e.Call(admin, "PUT", iid, map[string]any{"location": "westeurope"}), 404, "ResourceGroupNotFound")
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "GET", iid, nil), 404, "ResourceNotFound")

		// Create: the directory's identity is the resource.
		r := e.Call(admin, "PUT", iid, map[string]any{"location": "West Europe", "tags": map[string]string{"a": "b"}})
		e.Want(r, 201, "")
		props, _ := r.Doc["properties"].(map[string]any)
		tags, _ := r.Doc["tags"].(map[string]any)
		if r.Doc["id"] != iid || r.Doc["name"] != "id-app" || r.Doc["type"] != "Microsoft.ManagedIdentity/userAssignedIdentities" ||
			r.Doc["location"] != "westeurope" || tags["a"] != "b" || props["tenantId"] != tid {
			t.Errorf("created identity %s", r.Raw)
		}
		sp, err := e.Dir.ManagedIdentity(e.Ctx, tid, iid)
		must(t, err)
		if props["principalId"] != sp.ID || props["clientId"] != sp.AppID || !sp.IsUserAssigned() {
			t.Errorf("identity %s, directory %+v", r.Raw, sp)
		}
		// PUT again: 200, same principal, new tags.
		r = e.Call(admin, "PUT", strings.ToUpper(iid[:1])+iid[1:], map[string]any{"location": "westeurope", "tags": map[string]string{"c": "d"}})
		e.Want(r, 200, "")
		props, _ = r.Doc["properties"].(map[string]any)
		if tags, _ := r.Doc["tags"].(map[string]any); tags["c"] != "d" || props["principalId"] != sp.ID {
			t.Errorf("updated identity %s", r.Raw)
		}
		e.Want(e.Call(admin, "PUT", iid, map[string]any{"location": "eastus"}), 400, "InvalidResourceLocation")
		// Validation.
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other", map[string]any{}), 400, "LocationRequired")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bad.", map[string]any{"location": "westeurope"}), 400, "BadRequest")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other", "{not json"), 400, "InvalidRequestContent")

		// GET and lists.
		r = e.Call(admin, "GET", iid, nil)
		e.Want(r, 200, "")
		if r.Doc["id"] != iid {
			t.Errorf("get %s", r.Raw)
		}
		e.Want(e.Call(admin, "PUT", armtest.Sub(e)+"/resourceGroups/second", map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", armtest.Sub(e)+"/resourceGroups/second/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-second", map[string]any{"location": "westeurope"}), 201, "")
		r = e.Call(admin, "GET", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 1 {
			t.Errorf("group list %d %s", r.Status, r.Raw)
		}
		r = e.Call(admin, "GET", armtest.Sub(e)+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 2 {
			t.Errorf("subscription list %d %s", r.Status, r.Raw)
		}
		e.Want(e.Call(admin, "POST", iid, nil), 405, "MethodNotAllowed")

		// Federated identity credentials.
		fic := iid + "/federatedIdentityCredentials/gh-main"
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope/federatedIdentityCredentials/x1", ficBody("repo:o/r:ref:refs/heads/main")), 404, "ParentResourceNotFound")
		r = e.Call(admin, "PUT", fic, ficBody("repo:o/r:ref:refs/heads/main"))
		e.Want(r, 201, "")
		fp, _ := r.Doc["properties"].(map[string]any)
		if r.Doc["id"] != fic || r.Doc["name"] != "gh-main" || r.Doc["type"] != "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials" ||
			fp["issuer"] != "https://token.actions.githubusercontent.com" || fp["subject"] != "repo:o/r:ref:refs/heads/main" {
			t.Errorf("created credential %s", r.Raw)
		}
		// Update in place.
		r = e.Call(admin, "PUT", fic, ficBody("repo:o/r:environment:prod"))
		e.Want(r, 200, "")
		e.Want(e.Call(admin, "GET", fic, nil), 200, "")
		sp, err = e.Dir.ManagedIdentity(e.Ctx, tid, iid)
		must(t, err)
		if len(sp.FederatedCredentials) != 1 || sp.FederatedCredentials[0].Subject != "repo:o/r:environment:prod" {
			t.Errorf("directory credentials %+v", sp.FederatedCredentials)
		}
		// Validation is the directory's: 400, never 500.
		e.Want(e.Call(admin, "PUT", iid+"/federatedIdentityCredentials/x2", map[string]any{"properties": map[string]any{"issuer": "http://insecure", "subject": "s", "audiences": []string{"a"}}}), 400, "BadRequest")
		e.Want(e.Call(admin, "PUT", iid+"/federatedIdentityCredentials/x2", map[string]any{"properties": map[string]any{"issuer": "https://i", "subject": "s", "audiences": []string{}}}), 400, "BadRequest")
		e.Want(e.Call(admin, "PUT", iid+"/federatedIdentityCredentials/x2", map[string]any{}), 400, "BadRequest")
		e.Want(e.Call(admin, "PUT", iid+"/federatedIdentityCredentials/a%20b", ficBody("s")), 400, "BadRequest")
		// Issuer and subject are unique per identity.
		e.Want(e.Call(admin, "PUT", iid+"/federatedIdentityCredentials/dup", ficBody("repo:o/r:environment:prod")), 409, "Conflict")
		// At most 20.
		for i := 1; i < 20; i++ {
			e.Want(e.Call(admin, "PUT", fmt.Sprintf("%s/federatedIdentityCredentials/fic-%02d", iid, i), ficBody(fmt.Sprintf("subject-%d", i))), 201, "")
		}
		e.Want(e.Call(admin, "PUT", iid+"/federatedIdentityCredentials/fic-21", ficBody("subject-21")), 400, "BadRequest")
		// Updating one at the limit still works.
		e.Want(e.Call(admin, "PUT", iid+"/federatedIdentityCredentials/fic-01", ficBody("subject-1b")), 200, "")
		r = e.Call(admin, "GET", iid+"/federatedIdentityCredentials", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 20 {
			t.Errorf("credential list %d %s", r.Status, r.Raw)
		}
		e.Want(e.Call(admin, "DELETE", fic, nil), 200, "")
		e.Want(e.Call(admin, "DELETE", fic, nil), 204, "")
		e.Want(e.Call(admin, "GET", fic, nil), 404, "ResourceNotFound")

		// Audited.
		recs, err := e.St.ListAudit(e.Ctx, store.AuditQuery{TenantID: tid})
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
		e.Want(e.Call(admin, "DELETE", iid, nil), 200, "")
		e.Want(e.Call(admin, "DELETE", iid, nil), 204, "")
		e.Want(e.Call(admin, "GET", iid, nil), 404, "ResourceNotFound")
		if _, err := e.Dir.ManagedIdentity(e.Ctx, tid, iid); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("identity after delete: %v", err)
		}
		e.Want(e.Call(admin, "GET", iid+"/federatedIdentityCredentials", nil), 404, "ParentResourceNotFound")
		// And can be made again, as a new principal.
		r = e.Call(admin, "PUT", iid, map[string]any{"location": "westeurope"})
		e.Want(r, 201, "")
		if props, _ := r.Doc["properties"].(map[string]any); props["principalId"] == sp.ID {
			t.Errorf("recreated identity kept its principal id")
		}
	})
}

func TestIdentityPermissions(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/app"
		iid := rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-perm"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", iid, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", iid+"/federatedIdentityCredentials/one", ficBody("s1")), 201, "")

		reader := e.NewApp(tid, "reader", false)
		tok := e.ARMToken(tid, reader.App.AppID, reader.Secret)
		e.Want(e.Call(tok, "GET", iid, nil), 403, "AuthorizationFailed")
		r := e.Call(tok, "GET", armtest.Sub(e)+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 0 {
			t.Errorf("list without a role %d %s", r.Status, r.Raw)
		}
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.SP.ID}}), 201, "")
		e.Want(e.Call(tok, "GET", iid, nil), 200, "")
		e.Want(e.Call(tok, "GET", iid+"/federatedIdentityCredentials/one", nil), 200, "")
		r = e.Call(tok, "PUT", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-reader", map[string]any{"location": "westeurope"})
		e.Want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.Message(), "'Microsoft.ManagedIdentity/userAssignedIdentities/write'") {
			t.Errorf("message %q", r.Message())
		}
		r = e.Call(tok, "PUT", iid+"/federatedIdentityCredentials/two", ficBody("s2"))
		e.Want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.Message(), "'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write'") {
			t.Errorf("message %q", r.Message())
		}
		e.Want(e.Call(tok, "DELETE", iid+"/federatedIdentityCredentials/one", nil), 403, "AuthorizationFailed")
		e.Want(e.Call(tok, "DELETE", iid, nil), 403, "AuthorizationFailed")
		e.Want(e.Call(admin, "GET", iid+"/federatedIdentityCredentials/one", nil), 200, "")
		if _, err := e.Dir.ManagedIdentity(e.Ctx, tid, iid); err != nil {
			t.Errorf("identity after refused delete: %v", err)
		}
		// Another tenant cannot reach it.
		fab := e.AdminToken(e.Fabrikam)
		e.Want(e.Call(fab, "GET", iid, nil), 401, "InvalidAuthenticationTokenTenant")
	})
}

func TestIdentityGroupCascade(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/doomed"
		keep := armtest.Sub(e) + "/resourceGroups/kept"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", keep, map[string]any{"location": "westeurope"}), 201, "")
		doomed := rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-doomed"
		kept := keep + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-kept"
		e.Want(e.Call(admin, "PUT", doomed, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", doomed+"/federatedIdentityCredentials/fic1", ficBody("s")), 201, "")
		e.Want(e.Call(admin, "PUT", kept, map[string]any{"location": "westeurope"}), 201, "")

		e.Want(e.Call(admin, "DELETE", rg, nil), 200, "")
		if _, err := e.Dir.ManagedIdentity(e.Ctx, tid, doomed); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("identity after its group's delete: %v", err)
		}
		if _, err := e.Dir.ManagedIdentity(e.Ctx, tid, kept); err != nil {
			t.Errorf("kept identity: %v", err)
		}
		r := e.Call(admin, "GET", armtest.Sub(e)+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 1 {
			t.Errorf("list after the cascade %d %s", r.Status, r.Raw)
		}
		// The group and the name are free again.
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", doomed, map[string]any{"location": "westeurope"}), 201, "")
	})
}
