package vault_test

import (
	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"testing"
)

// TestVaultUpdate proves a PUT on an existing vault follows Key Vault's
// rules for the soft-delete settings: the retention is set once and may
// only be restated ("has been set already and it can't be modified"),
// purge protection may be turned on later but false is always refused
// ("cannot be set to false ... irreversible"), and tags and sku follow the
// body. The data plane's store sees the change.
func TestVaultUpdate(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/upd"
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-upd"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")

		// Purge protection false is refused even on creation, with Azure's message.
		r := e.Call(admin, "PUT", vid, vaultBody(tid, map[string]any{"enablePurgeProtection": false}))
		e.Want(r, 400, "BadRequest")
		if want := `The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection for a vault is an irreversible action.`; r.Message() != want {
			t.Errorf("message %q, want %q", r.Message(), want)
		}

		// Created with the default retention and no purge protection.
		body := vaultBody(tid, nil)
		body["tags"] = map[string]string{"env": "dev", "team": "a"}
		r = e.Call(admin, "PUT", vid, body)
		e.Want(r, 201, "")
		props, _ := r.Doc["properties"].(map[string]any)
		if props["softDeleteRetentionInDays"] != float64(90) || props["enablePurgeProtection"] != false {
			t.Fatalf("created %s", r.Raw)
		}

		// Restating the retention is fine; changing it is refused with Azure's message.
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 90})), 200, "")
		r = e.Call(admin, "PUT", vid, vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 30}))
		e.Want(r, 400, "BadRequest")
		if want := `The property "softDeleteRetentionInDays" has been set already and it can't be modified.`; r.Message() != want {
			t.Errorf("message %q, want %q", r.Message(), want)
		}
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 91})), 400, "BadRequest")

		// Purge protection turned on after creation, with new tags and sku.
		body = vaultBody(tid, map[string]any{"enablePurgeProtection": true, "sku": map[string]any{"family": "A", "name": "premium"}})
		body["tags"] = map[string]string{"env": "prod"}
		r = e.Call(admin, "PUT", vid, body)
		e.Want(r, 200, "")
		props, _ = r.Doc["properties"].(map[string]any)
		sku, _ := props["sku"].(map[string]any)
		tags, _ := r.Doc["tags"].(map[string]any)
		if props["enablePurgeProtection"] != true || props["softDeleteRetentionInDays"] != float64(90) || sku["name"] != "premium" ||
			len(tags) != 1 || tags["env"] != "prod" {
			t.Errorf("updated %s", r.Raw)
		}
		v, err := e.St.GetVault(e.Ctx, "kv-upd")
		must(t, err)
		if !v.EnablePurgeProtection || v.SoftDeleteRetentionDays != 90 {
			t.Errorf("stored vault %+v, want purge protection on, 90 days", v)
		}
		// GET agrees.
		r = e.Call(admin, "GET", vid, nil)
		props, _ = r.Doc["properties"].(map[string]any)
		if tags, _ := r.Doc["tags"].(map[string]any); props["enablePurgeProtection"] != true || len(tags) != 1 {
			t.Errorf("get after update %s", r.Raw)
		}

		// Omitting it keeps it on; turning it off is refused.
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, nil)), 200, "")
		r = e.Call(admin, "PUT", vid, vaultBody(tid, map[string]any{"enablePurgeProtection": false}))
		e.Want(r, 400, "BadRequest")
		v, err = e.St.GetVault(e.Ctx, "kv-upd")
		must(t, err)
		if !v.EnablePurgeProtection {
			t.Errorf("purge protection went off: %+v", v)
		}
		// A refused update changes nothing, tags included.
		r = e.Call(admin, "GET", vid, nil)
		if tags, _ := r.Doc["tags"].(map[string]any); len(tags) != 0 {
			t.Errorf("tags after a PUT without tags and a refused PUT: %s", r.Raw)
		}
	})
}
