package arm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

func vaultBody(tenantID string, props map[string]any) map[string]any {
	p := map[string]any{"tenantId": tenantID, "sku": map[string]any{"family": "A", "name": "standard"}, "enableRbacAuthorization": true}
	for k, v := range props {
		p[k] = v
	}
	return map[string]any{"location": "West Europe", "properties": p}
}

func TestVaults(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg := sub(e) + "/resourceGroups/app"
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-app1"

		// The group must exist.
		e.want(e.call(admin, "PUT", vid, vaultBody(tid, nil)), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "GET", vid, nil), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "GET", vid, nil), 404, "ResourceNotFound")

		// Create.
		r := e.call(admin, "PUT", strings.Replace(vid, "resourceGroups/app", "resourcegroups/APP", 1), vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 7, "enablePurgeProtection": true}))
		e.want(r, 201, "")
		props, _ := r.doc["properties"].(map[string]any)
		sku, _ := props["sku"].(map[string]any)
		if r.doc["id"] != vid || r.doc["name"] != "kv-app1" || r.doc["type"] != "Microsoft.KeyVault/vaults" || r.doc["location"] != "westeurope" ||
			props["tenantId"] != tid || sku["family"] != "A" || sku["name"] != "standard" || props["vaultUri"] != "https://kv-app1.vault.azure.net/" ||
			props["enableRbacAuthorization"] != true || props["enableSoftDelete"] != true || props["softDeleteRetentionInDays"] != float64(7) ||
			props["enablePurgeProtection"] != true || props["provisioningState"] != "Succeeded" {
			t.Errorf("created vault %s", r.raw)
		}
		// The data plane sees it.
		v, err := e.st.GetVault(e.ctx, "KV-APP1")
		must(t, err)
		if v.TenantID != tid || v.ResourceID != vid || v.SoftDeleteRetentionDays != 7 || !v.EnablePurgeProtection {
			t.Errorf("stored vault %+v", v)
		}
		// PUT again: 200, tags updated; immutable properties refused.
		body := vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 7, "enablePurgeProtection": true})
		body["tags"] = map[string]string{"env": "test"}
		r = e.call(admin, "PUT", vid, body)
		e.want(r, 200, "")
		if tags, _ := r.doc["tags"].(map[string]any); tags["env"] != "test" {
			t.Errorf("tags %s", r.raw)
		}
		e.want(e.call(admin, "PUT", vid, vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 30})), 400, "BadRequest")
		e.want(e.call(admin, "PUT", vid, vaultBody(tid, map[string]any{"enablePurgeProtection": false})), 400, "BadRequest")

		// Validation.
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/ab", vaultBody(tid, nil)), 400, "VaultNameNotValid")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/a--b", vaultBody(tid, nil)), 400, "VaultNameNotValid")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/"+strings.Repeat("a", 25), vaultBody(tid, nil)), 400, "VaultNameNotValid")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-other", vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 6})), 400, "BadRequest")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-other", vaultBody(tid, map[string]any{"enableRbacAuthorization": false})), 400, "BadRequest")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-other", vaultBody(e.fabrikam.Tenant.ID, nil)), 400, "BadRequest")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-other", map[string]any{"properties": map[string]any{}}), 400, "LocationRequired")

		// Names are global: another group, another tenant.
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/second", map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/second/providers/Microsoft.KeyVault/vaults/KV-app1", vaultBody(tid, nil)), 409, "VaultAlreadyExists")
		fab := e.adminToken(e.fabrikam)
		fsub := "/subscriptions/" + e.fabrikam.Tenant.SubscriptionID
		e.want(e.call(fab, "PUT", fsub+"/resourceGroups/f", map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(fab, "PUT", fsub+"/resourceGroups/f/providers/Microsoft.KeyVault/vaults/kv-app1", vaultBody(e.fabrikam.Tenant.ID, nil)), 409, "VaultAlreadyExists")
		// Another tenant cannot see it under its own subscription either.
		e.want(e.call(fab, "GET", fsub+"/resourceGroups/f/providers/Microsoft.KeyVault/vaults/kv-app1", nil), 404, "ResourceNotFound")

		// GET and lists.
		r = e.call(admin, "GET", vid, nil)
		e.want(r, 200, "")
		if r.doc["id"] != vid {
			t.Errorf("get %s", r.raw)
		}
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/second/providers/Microsoft.KeyVault/vaults/kv-second", vaultBody(tid, nil)), 201, "")
		r = e.call(admin, "GET", rg+"/providers/Microsoft.KeyVault/vaults", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 1 {
			t.Errorf("group list %d %s", r.status, r.raw)
		}
		r = e.call(admin, "GET", sub(e)+"/providers/Microsoft.KeyVault/vaults", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 2 {
			t.Errorf("subscription list %d %s", r.status, r.raw)
		}
		e.want(e.call(admin, "GET", sub(e)+"/resourceGroups/nope/providers/Microsoft.KeyVault/vaults", nil), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "POST", vid, nil), 405, "MethodNotAllowed")

		// Changes are audited.
		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: tid})
		must(t, err)
		found := false
		for _, rec := range recs {
			if rec.Action == "Microsoft.KeyVault/vaults/write" && strings.EqualFold(rec.Target, vid) && rec.Result == "success" {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit record of the vault write")
		}

		// DELETE: 200, then 204; the vault, its secrets' container and the
		// role assignments at its scope are gone.
		ra := vid + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.NewString()
		e.want(e.call(admin, "PUT", ra, map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleKeyVaultSecretsOfficer, "principalId": e.contoso.AdminSP.ID}}), 201, "")
		e.want(e.call(admin, "DELETE", vid, nil), 200, "")
		e.want(e.call(admin, "DELETE", vid, nil), 204, "")
		e.want(e.call(admin, "GET", vid, nil), 404, "ResourceNotFound")
		if _, err := e.st.GetVault(e.ctx, "kv-app1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("vault after delete: %v", err)
		}
		e.want(e.call(admin, "GET", ra, nil), 404, "RoleAssignmentNotFound")
		// The name is free again.
		e.want(e.call(fab, "PUT", fsub+"/resourceGroups/f/providers/Microsoft.KeyVault/vaults/kv-app1", vaultBody(e.fabrikam.Tenant.ID, nil)), 201, "")
	})
}

func TestVaultPermissions(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg := sub(e) + "/resourceGroups/app"
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-perm"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", vid, vaultBody(tid, nil)), 201, "")

		reader := e.newApp(tid, "reader", false)
		tok := e.armToken(tid, reader.app.AppID, reader.secret)
		// No role: nothing.
		e.want(e.call(tok, "GET", vid, nil), 403, "AuthorizationFailed")
		r := e.call(tok, "GET", sub(e)+"/providers/Microsoft.KeyVault/vaults", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 0 {
			t.Errorf("list without a role %d %s", r.status, r.raw)
		}
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.sp.ID}}), 201, "")
		// Reader: read and list, no write, no delete.
		e.want(e.call(tok, "GET", vid, nil), 200, "")
		r = e.call(tok, "GET", rg+"/providers/Microsoft.KeyVault/vaults", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 1 {
			t.Errorf("reader's list %d %s", r.status, r.raw)
		}
		r = e.call(tok, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-reader", vaultBody(tid, nil))
		e.want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.message(), "'Microsoft.KeyVault/vaults/write'") || !strings.Contains(r.message(), "/providers/Microsoft.KeyVault/vaults/kv-reader'") {
			t.Errorf("message %q", r.message())
		}
		e.want(e.call(tok, "DELETE", vid, nil), 403, "AuthorizationFailed")
		e.want(e.call(admin, "GET", vid, nil), 200, "")
		// The refusal is audited.
		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: tid})
		must(t, err)
		found := false
		for _, rec := range recs {
			if rec.Actor == reader.sp.ID && rec.Result == "AuthorizationFailed" && rec.Action == "Microsoft.KeyVault/vaults/delete" {
				found = true
			}
		}
		if !found {
			t.Errorf("refusal not audited")
		}
	})
}

func TestVaultGroupCascade(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg := sub(e) + "/resourceGroups/doomed"
		keep := sub(e) + "/resourceGroups/kept"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", keep, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-doomed1", vaultBody(tid, nil)), 201, "")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-doomed2", vaultBody(tid, nil)), 201, "")
		e.want(e.call(admin, "PUT", keep+"/providers/Microsoft.KeyVault/vaults/kv-kept", vaultBody(tid, nil)), 201, "")
		_, err := e.st.CreateSecretVersion(e.ctx, store.Secret{Vault: "kv-doomed1", Name: "s", Version: strings.ReplaceAll(uuid.NewString(), "-", ""), Value: []byte("sealed"), Enabled: true})
		must(t, err)

		e.want(e.call(admin, "DELETE", rg, nil), 200, "")
		for _, n := range []string{"kv-doomed1", "kv-doomed2"} {
			if _, err := e.st.GetVault(e.ctx, n); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s after the group's delete: %v", n, err)
			}
		}
		if _, err := e.st.GetVault(e.ctx, "kv-kept"); err != nil {
			t.Errorf("kv-kept: %v", err)
		}
		r := e.call(admin, "GET", sub(e)+"/providers/Microsoft.KeyVault/vaults", nil)
		if vs, _ := r.doc["value"].([]any); r.status != 200 || len(vs) != 1 {
			t.Errorf("list after the cascade %d %s", r.status, r.raw)
		}
		// The names are free again.
		e.want(e.call(admin, "PUT", keep+"/providers/Microsoft.KeyVault/vaults/kv-doomed1", vaultBody(tid, nil)), 201, "")
	})
}
