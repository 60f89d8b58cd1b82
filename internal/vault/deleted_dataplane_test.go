package vault_test

import (
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// TestDeletedVaultDataPlane: the data plane does not serve a deleted
// vault (404 VaultNotFound through azsecrets, as for no vault, even right
// after a read that cached it), and serves it again, secrets and all,
// once it is recovered.
func TestDeletedVaultDataPlane(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := t.Context()
		tid := e.contoso.Tenant.ID
		v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "kv-gone-dp", SoftDeleteRetentionDays: 7})
		must(t, err)
		owner := e.newApp(t, tid, "owner", false)
		e.grantAll(t, v, owner.spID)
		c := e.secrets(t, "https://kv-gone-dp.vault.azure.net", e.credential(t, tid, owner))
		_, err = c.SetSecret(ctx, "kept", azsecrets.SetSecretParameters{Value: to.Ptr("v1")}, nil)
		must(t, err)
		_, err = c.GetSecret(ctx, "kept", "", nil)
		must(t, err)

		must(t, st.SoftDeleteVault(ctx, "kv-gone-dp", time.Now()))
		_, err = c.GetSecret(ctx, "kept", "", nil)
		wantStatus(t, err, 404, "VaultNotFound")
		_, err = c.SetSecret(ctx, "new", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil)
		wantStatus(t, err, 404, "VaultNotFound")

		must(t, st.RecoverVault(ctx, "kv-gone-dp"))
		got, err := c.GetSecret(ctx, "kept", "", nil)
		must(t, err)
		if *got.Value != "v1" {
			t.Fatalf("recovered secret %q", *got.Value)
		}
	})
}
