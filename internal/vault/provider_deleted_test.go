package vault_test

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

func wantSDKError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("got %v, want %d %s", err, status, code)
	}
}

// TestDeletedVaultsSDK: deleting a vault keeps it as a deleted vault
// (armkeyvault's ListDeleted, GetDeleted) with its secrets, out of the
// data plane's reach; its name stays taken (create refused, name check
// says in use) until it is recovered (CreateOrUpdate with createMode
// recover) or purged (BeginPurgeDeleted, refused under purge
// protection). Another tenant neither sees, recovers nor purges it, and
// learns no more than that the name is taken.
func TestDeletedVaultsSDK(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		tb := e.Contoso
		tid := tb.Tenant.ID
		admin := e.AdminToken(tb)
		rg := armtest.Sub(e) + "/resourceGroups/del"
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-del-01"
		pid := rg + "/providers/Microsoft.KeyVault/vaults/kv-del-02"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 7})), 201, "")
		e.Want(e.Call(admin, "PUT", pid, vaultBody(tid, map[string]any{"enablePurgeProtection": true})), 201, "")
		_, err := e.St.CreateSecretVersion(e.Ctx, store.Secret{Vault: "kv-del-01", Name: "kept", Version: "0123456789abcdef0123456789abcdef", Value: []byte("sealed"), Enabled: true})
		must(t, err)

		before := time.Now().UTC().Add(-time.Second)
		e.Want(e.Call(admin, "DELETE", vid, nil), 200, "")
		e.Want(e.Call(admin, "DELETE", pid, nil), 200, "")
		e.Want(e.Call(admin, "GET", vid, nil), 404, "ResourceNotFound")
		// The data plane finds no live vault of the name.
		if _, err := e.St.GetVault(e.Ctx, "kv-del-01"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the data plane's lookup of a deleted vault: %v", err)
		}

		cred := e.Credential(tid, tb.Admin.AppID, tb.AdminSecret.SecretText)
		vaults, err := armkeyvault.NewVaultsClient(tb.Tenant.SubscriptionID, cred, e.ARMOptions())
		must(t, err)
		deleted := map[string]*armkeyvault.DeletedVault{}
		for pager := vaults.NewListDeletedPager(nil); pager.More(); {
			page, err := pager.NextPage(e.Ctx)
			must(t, err)
			for _, d := range page.Value {
				deleted[*d.Name] = d
			}
		}
		d := deleted["kv-del-01"]
		if len(deleted) != 2 || d == nil || *d.Properties.VaultID != vid || *d.Properties.Location != "westeurope" || *d.Properties.PurgeProtectionEnabled ||
			d.Properties.DeletionDate.Before(before) || !d.Properties.ScheduledPurgeDate.Equal(d.Properties.DeletionDate.AddDate(0, 0, 7)) ||
			*d.ID != armtest.Sub(e)+"/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv-del-01" || *d.Type != "Microsoft.KeyVault/deletedVaults" {
			t.Fatalf("deleted vaults: %+v", deleted)
		}
		got, err := vaults.GetDeleted(e.Ctx, "kv-del-02", "westeurope", nil)
		must(t, err)
		if !*got.Properties.PurgeProtectionEnabled {
			t.Fatalf("GetDeleted: %+v", got.Properties)
		}
		_, err = vaults.GetDeleted(e.Ctx, "kv-del-01", "eastus", nil)
		wantSDKError(t, err, 404, "ResourceNotFound")

		// The name is taken while the vault is deleted.
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, nil)), 409, "VaultAlreadyExists")
		check, err := vaults.CheckNameAvailability(e.Ctx, armkeyvault.VaultCheckNameAvailabilityParameters{Name: to.Ptr("kv-del-01"), Type: to.Ptr("Microsoft.KeyVault/vaults")}, nil)
		must(t, err)
		if *check.NameAvailable || *check.Reason != armkeyvault.ReasonAlreadyExists {
			t.Fatalf("name check of a deleted vault's name: %+v", check)
		}

		// Another tenant: nothing to see, recover or purge; its create of
		// the name is refused as for any taken name.
		ftb := e.Fabrikam
		fab := e.AdminToken(ftb)
		frg := "/subscriptions/" + ftb.Tenant.SubscriptionID + "/resourceGroups/del"
		e.Want(e.Call(fab, "PUT", frg, map[string]any{"location": "westeurope"}), 201, "")
		fcred := e.Credential(ftb.Tenant.ID, ftb.Admin.AppID, ftb.AdminSecret.SecretText)
		fvaults, err := armkeyvault.NewVaultsClient(ftb.Tenant.SubscriptionID, fcred, e.ARMOptions())
		must(t, err)
		page, err := fvaults.NewListDeletedPager(nil).NextPage(e.Ctx)
		must(t, err)
		if len(page.Value) != 0 {
			t.Fatalf("another tenant lists %d deleted vaults", len(page.Value))
		}
		_, err = fvaults.GetDeleted(e.Ctx, "kv-del-01", "westeurope", nil)
		wantSDKError(t, err, 404, "ResourceNotFound")
		_, err = fvaults.BeginPurgeDeleted(e.Ctx, "kv-del-01", "westeurope", nil)
		wantSDKError(t, err, 404, "ResourceNotFound")
		e.Want(e.Call(fab, "PUT", frg+"/providers/Microsoft.KeyVault/vaults/kv-del-01", vaultBody(ftb.Tenant.ID, nil)), 409, "VaultAlreadyExists")
		e.Want(e.Call(fab, "PUT", frg+"/providers/Microsoft.KeyVault/vaults/kv-del-01", vaultBody(ftb.Tenant.ID, map[string]any{"createMode": "recover"})), 404, "SoftDeletedVaultDoesNotExist")
		e.Want(e.Call(fab, "GET", armtest.Sub(e)+"/providers/Microsoft.KeyVault/deletedVaults", nil), 401, "InvalidAuthenticationTokenTenant")

		// A reader lists and reads deleted vaults, and purges none.
		reader := e.NewApp(tid, "del-reader", false)
		e.Want(e.Call(admin, "PUT", armtest.Sub(e)+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.SP.ID}}), 201, "")
		rtok := e.ARMToken(tid, reader.App.AppID, reader.Secret)
		e.Want(e.Call(rtok, "GET", armtest.Sub(e)+"/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv-del-01", nil), 200, "")
		e.Want(e.Call(rtok, "POST", armtest.Sub(e)+"/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv-del-01/purge", nil), 403, "AuthorizationFailed")

		// Purge protection: the purge is refused.
		_, err = vaults.BeginPurgeDeleted(e.Ctx, "kv-del-02", "westeurope", nil)
		wantSDKError(t, err, http.StatusMethodNotAllowed, "MethodNotAllowed")

		// Recover: the vault is back with its secret, out of the list.
		poller, err := vaults.BeginCreateOrUpdate(e.Ctx, "del", "kv-del-01", armkeyvault.VaultCreateOrUpdateParameters{Location: to.Ptr("westeurope"),
			Properties: &armkeyvault.VaultProperties{TenantID: to.Ptr(tid), SKU: &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNameStandard)},
				CreateMode: to.Ptr(armkeyvault.CreateModeRecover)}}, nil)
		must(t, err)
		recovered, err := poller.PollUntilDone(e.Ctx, &runtime.PollUntilDoneOptions{Frequency: time.Millisecond})
		must(t, err)
		if *recovered.ID != vid || *recovered.Properties.SoftDeleteRetentionInDays != 7 {
			t.Fatalf("recovered: %+v", recovered.Vault)
		}
		e.Want(e.Call(admin, "GET", vid, nil), 200, "")
		if _, err := e.St.GetSecret(e.Ctx, "kv-del-01", "kept", ""); err != nil {
			t.Fatalf("the recovered vault lost its secret: %v", err)
		}
		_, err = vaults.GetDeleted(e.Ctx, "kv-del-01", "westeurope", nil)
		wantSDKError(t, err, 404, "ResourceNotFound")
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, map[string]any{"createMode": "recover"})), 404, "SoftDeletedVaultDoesNotExist")

		// Purge: the name is free again, the secret gone.
		e.Want(e.Call(admin, "DELETE", vid, nil), 200, "")
		purge, err := vaults.BeginPurgeDeleted(e.Ctx, "kv-del-01", "westeurope", nil)
		must(t, err)
		_, err = purge.PollUntilDone(e.Ctx, &runtime.PollUntilDoneOptions{Frequency: time.Millisecond})
		must(t, err)
		_, err = vaults.GetDeleted(e.Ctx, "kv-del-01", "westeurope", nil)
		wantSDKError(t, err, 404, "ResourceNotFound")
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, nil)), 201, "")
		if _, err := e.St.GetSecret(e.Ctx, "kv-del-01", "kept", ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a purged vault's secret: %v", err)
		}
	})
}

// TestDeletedVaultPurgeDate: past its scheduled purge date (deletion plus
// softDeleteRetentionInDays) a deleted vault — purge protection or not —
// is no longer listed, found or recoverable, its name is available, and
// the create that reuses the name purges it with its secrets.
func TestDeletedVaultPurgeDate(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	armtest.ForEachStoreWith(t, armtest.Options{Now: now}, func(t *testing.T, e *armtest.Env) {
		offset.Store(0)
		tb := e.Contoso
		tid := tb.Tenant.ID
		admin := e.AdminToken(tb)
		rg := armtest.Sub(e) + "/resourceGroups/exp"
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-exp-01"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, map[string]any{"softDeleteRetentionInDays": 7, "enablePurgeProtection": true})), 201, "")
		_, err := e.St.CreateSecretVersion(e.Ctx, store.Secret{Vault: "kv-exp-01", Name: "old", Version: "0123456789abcdef0123456789abcdef", Value: []byte("sealed"), Enabled: true})
		must(t, err)
		e.Want(e.Call(admin, "DELETE", vid, nil), 200, "")
		deleted := armtest.Sub(e) + "/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv-exp-01"
		e.Want(e.Call(admin, "GET", deleted, nil), 200, "")

		// Six days on it is still held; past seven it is not.
		offset.Store(int64(6 * 24 * time.Hour))
		e.Want(e.Call(admin, "GET", deleted, nil), 200, "")
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, nil)), 409, "VaultAlreadyExists")
		offset.Store(int64(7*24*time.Hour + time.Minute))
		e.Want(e.Call(admin, "GET", deleted, nil), 404, "ResourceNotFound")
		r := e.Call(admin, "GET", armtest.Sub(e)+"/providers/Microsoft.KeyVault/deletedVaults", nil)
		if vs, _ := r.Doc["value"].([]any); r.Status != 200 || len(vs) != 0 {
			t.Fatalf("list past the purge date: %s", r.Raw)
		}
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, map[string]any{"createMode": "recover"})), 404, "SoftDeletedVaultDoesNotExist")
		r = e.Call(admin, "POST", armtest.Sub(e)+"/providers/Microsoft.KeyVault/checkNameAvailability", map[string]any{"name": "kv-exp-01", "type": "Microsoft.KeyVault/vaults"})
		if r.Status != 200 || r.Doc["nameAvailable"] != true {
			t.Fatalf("name check past the purge date: %s", r.Raw)
		}
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, nil)), 201, "")
		if _, err := e.St.GetSecret(e.Ctx, "kv-exp-01", "old", ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the purged vault's secret in the new vault: %v", err)
		}
	})
}
