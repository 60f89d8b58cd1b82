package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// DeletedVaultTests prove the vault-level soft delete of store.Vaults.
var DeletedVaultTests = []struct {
	Name string
	Fn   func(t *testing.T, st store.Store)
}{
	{"DeletedVaults", testDeletedVaults},
}

// testDeletedVaults: a soft-deleted vault leaves GetVault, ListVaults and
// UpdateVault, keeps its name (a create of the name conflicts, in any
// tenant), its secrets and its settings; GetDeletedVault and
// ListDeletedVaults see it, of its own tenant only; RecoverVault brings
// it back with its secrets; DeleteVault purges a deleted vault; and every
// change moves the generation (vault lookups are cached).
func testDeletedVaults(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	ctx := f.ctx
	tn, other := f.tenant(), f.tenant()
	name := "kv" + newVersion()[:10]
	v := store.Vault{TenantID: tn.ID, Name: name, ResourceID: "/subscriptions/" + tn.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/" + name,
		Location: "westeurope", SoftDeleteRetentionDays: 9, EnablePurgeProtection: true, EnableSoftDelete: true}
	must(t, st.CreateVault(ctx, v), "create vault")
	_, err := st.CreateSecretVersion(ctx, store.Secret{Vault: name, Name: "s", Version: newVersion(), Value: []byte("sealed"), Enabled: true})
	must(t, err, "create secret")
	wantErr(t, st.RecoverVault(ctx, name), store.ErrNotFound, "recover a live vault")
	if _, err := st.GetDeletedVault(ctx, name); err == nil {
		t.Errorf("a live vault is seen as deleted")
	}

	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	gen := st.Generation()
	must(t, st.SoftDeleteVault(ctx, strings.ToUpper(name), at), "soft-delete vault")
	if st.Generation() == gen {
		t.Errorf("SoftDeleteVault left the generation: caches would serve the live vault")
	}
	wantErr(t, st.SoftDeleteVault(ctx, name, at), store.ErrNotFound, "soft-delete twice")
	_, err = st.GetVault(ctx, name)
	wantErr(t, err, store.ErrNotFound, "get a deleted vault as live")
	if vs, err := st.ListVaults(ctx, tn.ID); err != nil || len(vs) != 0 {
		t.Errorf("ListVaults after delete = %+v, %v", vs, err)
	}
	wantErr(t, st.UpdateVault(ctx, store.Vault{Name: name, SoftDeleteRetentionDays: 9}), store.ErrNotFound, "update a deleted vault")
	wantErr(t, st.CreateVault(ctx, store.Vault{TenantID: other.ID, Name: strings.ToUpper(name)}), store.ErrConflict, "a deleted vault's name in another tenant")
	wantErr(t, st.CreateVault(ctx, v), store.ErrConflict, "a deleted vault's name in its tenant")

	got, err := st.GetDeletedVault(ctx, strings.ToUpper(name))
	must(t, err, "get deleted vault")
	if got.Name != name || got.TenantID != tn.ID || got.ResourceID != v.ResourceID || got.Location != "westeurope" || got.SoftDeleteRetentionDays != 9 ||
		!got.EnablePurgeProtection || !got.Deleted.Equal(at) {
		t.Errorf("deleted vault = %+v", got)
	}
	if vs, err := st.ListDeletedVaults(ctx, tn.ID); err != nil || len(vs) != 1 || vs[0].Name != name || !vs[0].Deleted.Equal(at) {
		t.Errorf("ListDeletedVaults = %+v, %v", vs, err)
	}
	if vs, err := st.ListDeletedVaults(ctx, other.ID); err != nil || len(vs) != 0 {
		t.Errorf("another tenant's ListDeletedVaults = %+v, %v", vs, err)
	}

	gen = st.Generation()
	must(t, st.RecoverVault(ctx, name), "recover vault")
	if st.Generation() == gen {
		t.Errorf("RecoverVault left the generation")
	}
	live, err := st.GetVault(ctx, name)
	must(t, err, "get recovered vault")
	if !live.Deleted.IsZero() || live.SoftDeleteRetentionDays != 9 {
		t.Errorf("recovered vault = %+v", live)
	}
	if _, err := st.GetSecret(ctx, name, "s", ""); err != nil {
		t.Errorf("the recovered vault lost its secret: %v", err)
	}
	_, err = st.GetDeletedVault(ctx, name)
	wantErr(t, err, store.ErrNotFound, "get a recovered vault as deleted")

	// Purge: DeleteVault removes a deleted vault and frees its name.
	must(t, st.SoftDeleteVault(ctx, name, at), "soft-delete again")
	must(t, st.DeleteVault(ctx, name), "purge deleted vault")
	_, err = st.GetDeletedVault(ctx, name)
	wantErr(t, err, store.ErrNotFound, "get a purged vault")
	must(t, st.CreateVault(ctx, store.Vault{TenantID: other.ID, Name: name, ResourceID: "/x", Location: "eastus", SoftDeleteRetentionDays: 7, EnableSoftDelete: true}), "reuse a purged name")
	if _, err := st.GetSecret(ctx, name, "s", ""); err == nil {
		t.Errorf("a purged vault's secret survived into the new vault of its name")
	}
	wantErr(t, st.SoftDeleteVault(ctx, "", at), store.ErrNotFound, "soft-delete no name")
	_, err = st.GetDeletedVault(ctx, "")
	wantErr(t, err, store.ErrNotFound, "get deleted no name")
}
