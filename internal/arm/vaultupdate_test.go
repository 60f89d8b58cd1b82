package arm_test

import (
	"testing"
)

// TestVaultUpdate proves a PUT on an existing vault follows Key Vault's
// rules for the soft-delete settings: the retention is set once and may
// only be restated ("has been set already and it can't be modified"),
// purge protection may be turned on later but false is always refused
// ("cannot be set to false ... irreversible"), and tags and sku follow the
// body. The data plane's store sees the change.
func TestVaultUpdate(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg := sub(e) + "/resourceGroups/upd"
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-upd"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")

		// Purge protection false is refused even on creation, with Azure's message.
		r := e.call(admin, "PUT", vid, vaultBody(tid, map[string]any{"enablePurgeProtection": false}))
		e.want(r, 400, "BadRequest")
		if want := `The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection for a vault is an irreversible action.`; r.message() != want {
			t.Errorf("message %q, want %q", r.message(), want)
		}

		// Created with the default retention and no purge protection.
		body := vaultBody(tid, nil)
		body["tags"] = map[string]string{"env": "dev", "team": "a"}
		r = e.call(admin, "PUT", vid, body)
		e.want(r, 201, "")
		props, _ := r.doc["properties"].(map[string]any)
		if props["softDeleteRetentionInDays"] != float64(90) || props["enablePurgeProtection"] != false {
			t.Fatalf("created %s", r.raw)
		}

		// Restating the retention is fine; changing it is refused with Azure's message.
		e.want(e.call(admin, "PUT", vid, vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 90})), 200, "")
		r = e.call(admin, "PUT", vid, vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 30}))
		e.want(r, 400, "BadRequest")
		if want := `The property "softDeleteRetentionInDays" has been set already and it can't be modified.`; r.message() != want {
			t.Errorf("message %q, want %q", r.message(), want)
		}
		e.want(e.call(admin, "PUT", vid, vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 91})), 400, "BadRequest")

		// Purge protection turned on after creation, with new tags and sku.
		body = vaultBody(tid, map[string]any{"enablePurgeProtection": true, "sku": map[string]any{"family": "A", "name": "premium"}})
		body["tags"] = map[string]string{"env": "prod"}
		r = e.call(admin, "PUT", vid, body)
		e.want(r, 200, "")
		props, _ = r.doc["properties"].(map[string]any)
		sku, _ := props["sku"].(map[string]any)
		tags, _ := r.doc["tags"].(map[string]any)
		if props["enablePurgeProtection"] != true || props["softDeleteRetentionInDays"] != float64(90) || sku["name"] != "premium" ||
			len(tags) != 1 || tags["env"] != "prod" {
			t.Errorf("updated %s", r.raw)
		}
		v, err := e.st.GetVault(e.ctx, "kv-upd")
		must(t, err)
		if !v.EnablePurgeProtection || v.SoftDeleteRetentionDays != 90 {
			t.Errorf("stored vault %+v, want purge protection on, 90 days", v)
		}
		// GET agrees.
		r = e.call(admin, "GET", vid, nil)
		props, _ = r.doc["properties"].(map[string]any)
		if tags, _ := r.doc["tags"].(map[string]any); props["enablePurgeProtection"] != true || len(tags) != 1 {
			t.Errorf("get after update %s", r.raw)
		}

		// Omitting it keeps it on; turning it off is refused.
		e.want(e.call(admin, "PUT", vid, vaultBody(tid, nil)), 200, "")
		r = e.call(admin, "PUT", vid, vaultBody(tid, map[string]any{"enablePurgeProtection": false}))
		e.want(r, 400, "BadRequest")
		v, err = e.st.GetVault(e.ctx, "kv-upd")
		must(t, err)
		if !v.EnablePurgeProtection {
			t.Errorf("purge protection went off: %+v", v)
		}
		// A refused update changes nothing, tags included.
		r = e.call(admin, "GET", vid, nil)
		if tags, _ := r.doc["tags"].(map[string]any); len(tags) != 0 {
			t.Errorf("tags after a PUT without tags and a refused PUT: %s", r.raw)
		}
	})
}
