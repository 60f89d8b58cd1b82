package vault_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// TestListPages pages through versions and deleted secrets (the page is
// 25) and checks the ids each listing gives its items.
func TestListPages(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := t.Context()
		tid := e.contoso.Tenant.ID
		v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "pagevault", SoftDeleteRetentionDays: 7})
		must(t, err)
		owner := e.newApp(t, tid, "owner", false)
		e.grantAll(t, v, owner.spID)
		c := e.secrets(t, "https://pagevault.vault.azure.net", e.credential(t, tid, owner))

		seen := map[string]bool{}
		for range 27 {
			_, err := c.SetSecret(ctx, "rotated", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
			must(t, err)
		}
		pages := 0
		for p := c.NewListSecretPropertiesVersionsPager("rotated", nil); p.More(); {
			page, err := p.NextPage(ctx)
			must(t, err)
			pages++
			for _, item := range page.Value {
				if item.ID.Name() != "rotated" || item.ID.Version() == "" || seen[item.ID.Version()] {
					t.Errorf("version item id %s", *item.ID)
				}
				seen[item.ID.Version()] = true
			}
		}
		if len(seen) != 27 || pages != 2 {
			t.Errorf("listed %d versions in %d pages, want 27 in 2", len(seen), pages)
		}

		for _, name := range []string{"gone-a", "gone-b"} {
			_, err := c.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
			must(t, err)
			_, err = c.DeleteSecret(ctx, name, nil)
			must(t, err)
		}
		var ids []string
		for p := c.NewListDeletedSecretPropertiesPager(nil); p.More(); {
			page, err := p.NextPage(ctx)
			must(t, err)
			for _, item := range page.Value {
				ids = append(ids, string(*item.ID))
			}
		}
		want := []string{"https://pagevault.vault.azure.net/secrets/gone-a", "https://pagevault.vault.azure.net/secrets/gone-b"}
		if len(ids) != 2 || ids[0] != want[0] || ids[1] != want[1] {
			t.Errorf("deleted ids = %v, want %v", ids, want)
		}
	})
}
