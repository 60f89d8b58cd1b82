package vault_test

import (
	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
)

// TestCheckNameAvailabilitySDK: Key Vault's name check through the real
// armkeyvault client (Service Bus's: package servicebus). A name is taken
// whichever tenant holds it (they are DNS names), an invalid name says so,
// and a free one is available.
func TestCheckNameAvailabilitySDK(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		tb := e.Contoso
		sub := tb.Tenant.SubscriptionID
		admin := e.AdminToken(tb)
		rg := "/subscriptions/" + sub + "/resourceGroups/names-rg"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-taken-01", vaultBody(tb.Tenant.ID, nil)), 201, "")

		// Another tenant asks: the names are taken for it too.
		other := e.Fabrikam
		cred := e.Credential(other.Tenant.ID, other.Admin.AppID, other.AdminSecret.SecretText)
		vaults, err := armkeyvault.NewVaultsClient(other.Tenant.SubscriptionID, cred, e.ARMOptions())
		must(t, err)
		for _, c := range []struct {
			name      string
			available bool
			reason    armkeyvault.Reason
		}{
			{"kv-taken-01", false, armkeyvault.ReasonAlreadyExists},
			{"KV-TAKEN-01", false, armkeyvault.ReasonAlreadyExists},
			{"kv-free-01", true, ""},
			{"1kv--bad", false, armkeyvault.ReasonAccountNameInvalid},
		} {
			res, err := vaults.CheckNameAvailability(e.Ctx, armkeyvault.VaultCheckNameAvailabilityParameters{
				Name: to.Ptr(c.name), Type: to.Ptr("Microsoft.KeyVault/vaults")}, nil)
			must(t, err)
			if *res.NameAvailable != c.available || (c.reason != "" && (res.Reason == nil || *res.Reason != c.reason)) {
				t.Errorf("vault %q: available %v, reason %v; want %v, %q", c.name, *res.NameAvailable, res.Reason, c.available, c.reason)
			}
		}
		// The SDK always sends Key Vault's type; another is refused.
		e.Want(e.Raw(admin, "POST", "/subscriptions/"+sub+"/providers/Microsoft.KeyVault/checkNameAvailability?api-version=2023-07-01",
			map[string]any{"name": "kv-free-01", "type": "Microsoft.Storage/storageAccounts"}), 400, "BadRequest")

		// The check is the subscription's tenant's: a token of another
		// tenant is refused, as everywhere in Resource Manager.
		e.Want(e.Raw(admin, "POST", "/subscriptions/"+other.Tenant.SubscriptionID+"/providers/Microsoft.KeyVault/checkNameAvailability?api-version=2023-07-01",
			map[string]any{"name": "kv-free-01", "type": "Microsoft.KeyVault/vaults"}), 401, "InvalidAuthenticationTokenTenant")
		// An api-version Key Vault does not take is refused.
		e.Want(e.Raw(admin, "POST", "/subscriptions/"+sub+"/providers/Microsoft.KeyVault/checkNameAvailability?api-version=2099-01-01",
			map[string]any{"name": "kv-free-01", "type": "Microsoft.KeyVault/vaults"}), 400, "NoRegisteredProviderFound")
		e.Want(e.Raw(admin, "GET", "/subscriptions/"+sub+"/providers/Microsoft.KeyVault/checkNameAvailability?api-version=2023-07-01", nil), 405, "")
	})
}
