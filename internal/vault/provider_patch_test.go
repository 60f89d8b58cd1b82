package vault_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
)

// TestVaultUpdateSDK: Vaults - Update (PATCH) through armkeyvault's
// VaultsClient.Update and armresources' Client.BeginUpdateByID: what the
// patch leaves out stays (a vault whose GET shows enablePurgeProtection
// false is patched without it being refused), purge protection turns on
// and never off, the retention stays fixed, a missing vault is not
// created, and the refusals of a PUT apply (no write permission, another
// tenant, a ReadOnly lock).
func TestVaultUpdateSDK(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		tb := e.Contoso
		admin := e.AdminToken(tb)
		rg := armtest.Sub(e) + "/resourceGroups/patch"
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-patch-01"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tb.Tenant.ID, map[string]any{"softDeleteRetentionInDays": 30})), 201, "")

		cred := e.Credential(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
		vaults, err := armkeyvault.NewVaultsClient(tb.Tenant.SubscriptionID, cred, e.ARMOptions())
		must(t, err)
		got, err := vaults.Update(e.Ctx, "patch", "kv-patch-01", armkeyvault.VaultPatchParameters{Tags: map[string]*string{"env": to.Ptr("prod")}}, nil)
		must(t, err)
		p := got.Properties
		if got.Tags["env"] == nil || *got.Tags["env"] != "prod" || *p.SoftDeleteRetentionInDays != 30 || (p.EnablePurgeProtection != nil && *p.EnablePurgeProtection) ||
			*p.SKU.Name != armkeyvault.SKUNameStandard || *p.TenantID != tb.Tenant.ID {
			t.Fatalf("tags patch: %+v %+v", got.Tags, p)
		}
		// Properties: the sku changes, purge protection turns on; the
		// tags the patch leaves out stay.
		got, err = vaults.Update(e.Ctx, "patch", "kv-patch-01", armkeyvault.VaultPatchParameters{Properties: &armkeyvault.VaultPatchProperties{
			EnablePurgeProtection: to.Ptr(true), SKU: &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNamePremium)}}}, nil)
		must(t, err)
		if *got.Properties.EnablePurgeProtection != true || *got.Properties.SKU.Name != armkeyvault.SKUNamePremium || got.Tags["env"] == nil {
			t.Fatalf("properties patch: %+v %+v", got.Tags, got.Properties)
		}
		// Key Vault's rules hold for a PATCH as for a PUT.
		e.Want(e.Call(admin, "PATCH", vid, map[string]any{"properties": map[string]any{"enablePurgeProtection": false}}), 400, "BadRequest")
		e.Want(e.Call(admin, "PATCH", vid, map[string]any{"properties": map[string]any{"softDeleteRetentionInDays": 90}}), 400, "BadRequest")
		e.Want(e.Call(admin, "PATCH", vid, map[string]any{"properties": map[string]any{"enableRbacAuthorization": false}}), 400, "BadRequest")
		e.Want(e.Call(admin, "PATCH", vid, map[string]any{"properties": map[string]any{"tenantId": e.Fabrikam.Tenant.ID}}), 400, "BadRequest")
		e.Want(e.Call(admin, "PATCH", vid, map[string]any{"tags": map[string]any{"bad/name": "x"}}), 400, "InvalidTagNameCharacters")
		e.Want(e.Call(admin, "PATCH", vid, "[1]"), 400, "InvalidRequestContent")
		if r := e.Call(admin, "GET", vid, nil); r.Doc["properties"].(map[string]any)["enablePurgeProtection"] != true {
			t.Fatalf("a refused patch changed the vault: %s", r.Raw)
		}

		// By id, through the generic resources client (an LRO that ends
		// at once).
		generic, err := armresources.NewClient(tb.Tenant.SubscriptionID, cred, e.ARMOptions())
		must(t, err)
		poller, err := generic.BeginUpdateByID(e.Ctx, vid, "2023-07-01", armresources.GenericResource{Tags: map[string]*string{"by": to.Ptr("id")}}, nil)
		must(t, err)
		byID, err := poller.PollUntilDone(e.Ctx, &runtime.PollUntilDoneOptions{Frequency: 1})
		must(t, err)
		if byID.Tags["by"] == nil || *byID.Tags["by"] != "id" || byID.Tags["env"] != nil {
			t.Fatalf("update by id: %+v", byID.Tags)
		}

		// A PATCH does not create: a missing vault is 404 and stays
		// missing, and so is another tenant's vault seen from its own
		// subscription (the name is global, the vault is not revealed).
		e.Want(e.Call(admin, "PATCH", rg+"/providers/Microsoft.KeyVault/vaults/kv-patch-none", map[string]any{"tags": map[string]any{}}), 404, "ResourceNotFound")
		e.Want(e.Call(admin, "GET", rg+"/providers/Microsoft.KeyVault/vaults/kv-patch-none", nil), 404, "ResourceNotFound")
		fab := e.AdminToken(e.Fabrikam)
		frg := "/subscriptions/" + e.Fabrikam.Tenant.SubscriptionID + "/resourceGroups/patch"
		e.Want(e.Call(fab, "PUT", frg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(fab, "PATCH", frg+"/providers/Microsoft.KeyVault/vaults/kv-patch-01", map[string]any{"tags": map[string]any{}}), 404, "ResourceNotFound")

		e.CheckPatchRefusals(tb, rg, vid, map[string]any{"tags": map[string]any{"refused": "yes"}})
	})
}
