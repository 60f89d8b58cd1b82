package vault_test

import (
	"errors"
	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

var vaultBody = armtest.VaultBody

func TestVaults(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/app"
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-app1"

		// The group must exist.
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, nil)), 404, "ResourceGroupNotFound")
		e.Want(e.Call(admin, "GET", vid, nil), 404, "ResourceGroupNotFound")
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "GET", vid, nil), 404, "ResourceNotFound")

		// Create.
		r := e.Call(admin, "PUT", strings.Replace(vid, "resourceGroups/app", "resourcegroups/APP", 1), vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 7, "enablePurgeProtection": true}))
		e.Want(r, 201, "")
		props, _ := r.Doc["properties"].(map[string]any)
		sku, _ := props["sku"].(map[string]any)
		if r.Doc["id"] != vid || r.Doc["name"] != "kv-app1" || r.Doc["type"] != "Microsoft.KeyVault/vaults" || r.Doc["location"] != "westeurope" ||
			props["tenantId"] != tid || sku["family"] != "A" || sku["name"] != "standard" || props["vaultUri"] != "https://kv-app1.vault.azure.net/" ||
			props["enableRbacAuthorization"] != true || props["enableSoftDelete"] != true || props["softDeleteRetentionInDays"] != float64(7) ||
			props["enablePurgeProtection"] != true || props["provisioningState"] != "Succeeded" {
			t.Errorf("created vault %s", r.Raw)
		}
		// The data plane sees it.
		v, err := e.St.GetVault(e.Ctx, "KV-APP1")
		must(t, err)
		if v.TenantID != tid || v.ResourceID != vid || v.SoftDeleteRetentionDays != 7 || !v.EnablePurgeProtection {
			t.Errorf("stored vault %+v", v)
		}
		// PUT again: 200, tags updated; immutable properties refused.
		body := vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 7, "enablePurgeProtection": true})
		body["tags"] = map[string]string{"env": "test"}
		r = e.Call(admin, "PUT", vid, body)
		e.Want(r, 200, "")
		if tags, _ := r.Doc["tags"].(map[string]any); tags["env"] != "test" {
			t.Errorf("tags %s", r.Raw)
		}
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 30})), 400, "BadRequest")
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, map[string]any{"enablePurgeProtection": false})), 400, "BadRequest")

		// Validation.
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/ab", vaultBody(tid, nil)), 400, "VaultNameNotValid")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/a--b", vaultBody(tid, nil)), 400, "VaultNameNotValid")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/"+strings.Repeat("a", 25), vaultBody(tid, nil)), 400, "VaultNameNotValid")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-other", vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 6})), 400, "BadRequest")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-other", vaultBody(tid, map[string]any{"enableRbacAuthorization": false})), 400, "BadRequest")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-other", vaultBody(e.Fabrikam.Tenant.ID, nil)), 400, "BadRequest")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-other", map[string]any{"properties": map[string]any{}}), 400, "LocationRequired")

		// Names are global: another group, another tenant.
		e.Want(e.Call(admin, "PUT", armtest.Sub(e)+"/resourceGroups/second", map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", armtest.Sub(e)+"/resourceGroups/second/providers/Microsoft.KeyVault/vaults/KV-app1", vaultBody(tid, nil)), 409, "VaultAlreadyExists")
		fab := e.AdminToken(e.Fabrikam)
		fsub := "/subscriptions/" + e.Fabrikam.Tenant.SubscriptionID
		e.Want(e.Call(fab, "PUT", fsub+"/resourceGroups/f", map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(fab, "PUT", fsub+"/resourceGroups/f/providers/Microsoft.KeyVault/vaults/kv-app1", vaultBody(e.Fabrikam.Tenant.ID, nil)), 409, "VaultAlreadyExists")
		// Another tenant cannot see it under its own subscription either.
		e.Want(e.Call(fab, "GET", fsub+"/resourceGroups/f/providers/Microsoft.KeyVault/vaults/kv-app1", nil), 404, "ResourceNotFound")

		// GET and lists.
		r = e.Call(admin, "GET", vid, nil)
		e.Want(r, 200, "")
		if r.Doc["id"] != vid {
			t.Errorf("get %s", r.Raw)
		}
		e.Want(e.Call(admin, "PUT", armtest.Sub(e)+"/resourceGroups/second/providers/Microsoft.KeyVault/vaults/kv-second", vaultBody(tid, nil)), 201, "")
		r = e.Call(admin, "GET", rg+"/providers/Microsoft.KeyVault/vaults", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 1 {
			t.Errorf("group list %d %s", r.Status, r.Raw)
		}
		r = e.Call(admin, "GET", armtest.Sub(e)+"/providers/Microsoft.KeyVault/vaults", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 2 {
			t.Errorf("subscription list %d %s", r.Status, r.Raw)
		}
		e.Want(e.Call(admin, "GET", armtest.Sub(e)+"/resourceGroups/nope/providers/Microsoft.KeyVault/vaults", nil), 404, "ResourceGroupNotFound")
		e.Want(e.Call(admin, "POST", vid, nil), 405, "MethodNotAllowed")

		// Changes are audited.
		recs, err := e.St.ListAudit(e.Ctx, store.AuditQuery{TenantID: tid})
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

		// DELETE: 200, then 204; the vault leaves the data plane and the
		// role assignments at its scope are gone.
		ra := vid + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.NewString()
		e.Want(e.Call(admin, "PUT", ra, map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleKeyVaultSecretsOfficer, "principalId": e.Contoso.AdminSP.ID}}), 201, "")
		e.Want(e.Call(admin, "DELETE", vid, nil), 200, "")
		e.Want(e.Call(admin, "DELETE", vid, nil), 204, "")
		e.Want(e.Call(admin, "GET", vid, nil), 404, "ResourceNotFound")
		if _, err := e.St.GetVault(e.Ctx, "kv-app1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("vault after delete: %v", err)
		}
		e.Want(e.Call(admin, "GET", ra, nil), 404, "RoleAssignmentNotFound")
		// The deleted vault holds its name, for any tenant, until it is
		// purged — and under purge protection it cannot be, before its
		// retention ends.
		e.Want(e.Call(fab, "PUT", fsub+"/resourceGroups/f/providers/Microsoft.KeyVault/vaults/kv-app1", vaultBody(e.Fabrikam.Tenant.ID, nil)), 409, "VaultAlreadyExists")
		e.Want(e.Call(admin, "POST", armtest.Sub(e)+"/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv-app1/purge", nil), 405, "MethodNotAllowed")
	})
}

func TestVaultPermissions(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/app"
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-perm"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, nil)), 201, "")

		reader := e.NewApp(tid, "reader", false)
		tok := e.ARMToken(tid, reader.App.AppID, reader.Secret)
		// No role: nothing.
		e.Want(e.Call(tok, "GET", vid, nil), 403, "AuthorizationFailed")
		r := e.Call(tok, "GET", armtest.Sub(e)+"/providers/Microsoft.KeyVault/vaults", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 0 {
			t.Errorf("list without a role %d %s", r.Status, r.Raw)
		}
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.SP.ID}}), 201, "")
		// Reader: read and list, no write, no delete.
		e.Want(e.Call(tok, "GET", vid, nil), 200, "")
		r = e.Call(tok, "GET", rg+"/providers/Microsoft.KeyVault/vaults", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 1 {
			t.Errorf("reader's list %d %s", r.Status, r.Raw)
		}
		r = e.Call(tok, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-reader", vaultBody(tid, nil))
		e.Want(r, 403, "AuthorizationFailed")
		if !strings.Contains(r.Message(), "'Microsoft.KeyVault/vaults/write'") || !strings.Contains(r.Message(), "/providers/Microsoft.KeyVault/vaults/kv-reader'") {
			t.Errorf("message %q", r.Message())
		}
		e.Want(e.Call(tok, "DELETE", vid, nil), 403, "AuthorizationFailed")
		e.Want(e.Call(admin, "GET", vid, nil), 200, "")
		// The refusal is audited.
		recs, err := e.St.ListAudit(e.Ctx, store.AuditQuery{TenantID: tid})
		must(t, err)
		found := false
		for _, rec := range recs {
			if rec.Actor == reader.SP.ID && rec.Result == "AuthorizationFailed" && rec.Action == "Microsoft.KeyVault/vaults/delete" {
				found = true
			}
		}
		if !found {
			t.Errorf("refusal not audited")
		}
	})
}

func TestVaultGroupCascade(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/doomed"
		keep := armtest.Sub(e) + "/resourceGroups/kept"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", keep, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-doomed1", vaultBody(tid, nil)), 201, "")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-doomed2", vaultBody(tid, nil)), 201, "")
		e.Want(e.Call(admin, "PUT", keep+"/providers/Microsoft.KeyVault/vaults/kv-kept", vaultBody(tid, nil)), 201, "")
		_, err := e.St.CreateSecretVersion(e.Ctx, store.Secret{Vault: "kv-doomed1", Name: "s", Version: strings.ReplaceAll(uuid.NewString(), "-", ""), Value: []byte("sealed"), Enabled: true})
		must(t, err)

		e.Want(e.Call(admin, "DELETE", rg, nil), 200, "")
		for _, n := range []string{"kv-doomed1", "kv-doomed2"} {
			if _, err := e.St.GetVault(e.Ctx, n); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s after the group's delete: %v", n, err)
			}
		}
		if _, err := e.St.GetVault(e.Ctx, "kv-kept"); err != nil {
			t.Errorf("kv-kept: %v", err)
		}
		r := e.Call(admin, "GET", armtest.Sub(e)+"/providers/Microsoft.KeyVault/vaults", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 1 {
			t.Errorf("list after the cascade %d %s", r.Status, r.Raw)
		}
		// The group's vaults are deleted vaults, with their secrets, holding
		// their names until purged.
		if _, err := e.St.GetDeletedVault(e.Ctx, "kv-doomed1"); err != nil {
			t.Errorf("kv-doomed1 is not a deleted vault: %v", err)
		}
		e.Want(e.Call(admin, "PUT", keep+"/providers/Microsoft.KeyVault/vaults/kv-doomed1", vaultBody(tid, nil)), 409, "VaultAlreadyExists")
		e.Want(e.Call(admin, "POST", armtest.Sub(e)+"/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv-doomed1/purge", nil), 200, "")
		e.Want(e.Call(admin, "PUT", keep+"/providers/Microsoft.KeyVault/vaults/kv-doomed1", vaultBody(tid, nil)), 201, "")
	})
}
