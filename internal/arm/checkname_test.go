package arm_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/servicebus/armservicebus"
)

// TestCheckNameAvailabilitySDK: Key Vault's and Service Bus's name checks
// through the real armkeyvault and armservicebus clients. A name is taken
// whichever tenant holds it (they are DNS names), an invalid name says so,
// and a free one is available.
func TestCheckNameAvailabilitySDK(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		sub := tb.Tenant.SubscriptionID
		admin := e.adminToken(tb)
		rg := "/subscriptions/" + sub + "/resourceGroups/names-rg"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/kv-taken-01", vaultBody(tb.Tenant.ID, nil)), 201, "")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-taken-0001",
			map[string]any{"location": "westeurope", "sku": map[string]any{"name": "Standard"}}), 201, "")

		// Another tenant asks: the names are taken for it too.
		other := e.fabrikam
		cred := e.credential(other.Tenant.ID, other.Admin.AppID, other.AdminSecret.SecretText)
		vaults, err := armkeyvault.NewVaultsClient(other.Tenant.SubscriptionID, cred, e.armOptions())
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
			res, err := vaults.CheckNameAvailability(e.ctx, armkeyvault.VaultCheckNameAvailabilityParameters{
				Name: to.Ptr(c.name), Type: to.Ptr("Microsoft.KeyVault/vaults")}, nil)
			must(t, err)
			if *res.NameAvailable != c.available || (c.reason != "" && (res.Reason == nil || *res.Reason != c.reason)) {
				t.Errorf("vault %q: available %v, reason %v; want %v, %q", c.name, *res.NameAvailable, res.Reason, c.available, c.reason)
			}
		}
		// The SDK always sends Key Vault's type; another is refused.
		e.want(e.raw(admin, "POST", "/subscriptions/"+sub+"/providers/Microsoft.KeyVault/checkNameAvailability?api-version=2023-07-01",
			map[string]any{"name": "kv-free-01", "type": "Microsoft.Storage/storageAccounts"}), 400, "BadRequest")

		namespaces, err := armservicebus.NewNamespacesClient(other.Tenant.SubscriptionID, cred, e.armOptions())
		must(t, err)
		for _, c := range []struct {
			name      string
			available bool
			reason    armservicebus.UnavailableReason
		}{
			{"sb-taken-0001", false, armservicebus.UnavailableReasonNameInUse},
			{"SB-Taken-0001", false, armservicebus.UnavailableReasonNameInUse},
			{"sb-free-0001", true, armservicebus.UnavailableReasonNone},
			{"x", false, armservicebus.UnavailableReasonInvalidName},
		} {
			res, err := namespaces.CheckNameAvailability(e.ctx, armservicebus.CheckNameAvailability{Name: to.Ptr(c.name)}, nil)
			must(t, err)
			if *res.NameAvailable != c.available || res.Reason == nil || *res.Reason != c.reason {
				t.Errorf("namespace %q: available %v, reason %v; want %v, %q", c.name, *res.NameAvailable, res.Reason, c.available, c.reason)
			}
		}

		// The check is the subscription's tenant's: a token of another
		// tenant is refused, as everywhere in Resource Manager.
		e.want(e.raw(admin, "POST", "/subscriptions/"+other.Tenant.SubscriptionID+"/providers/Microsoft.KeyVault/checkNameAvailability?api-version=2023-07-01",
			map[string]any{"name": "kv-free-01", "type": "Microsoft.KeyVault/vaults"}), 401, "InvalidAuthenticationTokenTenant")
		// An api-version Key Vault does not take is refused.
		e.want(e.raw(admin, "POST", "/subscriptions/"+sub+"/providers/Microsoft.KeyVault/checkNameAvailability?api-version=2099-01-01",
			map[string]any{"name": "kv-free-01", "type": "Microsoft.KeyVault/vaults"}), 400, "NoRegisteredProviderFound")
		e.want(e.raw(admin, "GET", "/subscriptions/"+sub+"/providers/Microsoft.KeyVault/checkNameAvailability?api-version=2023-07-01", nil), 405, "")
	})
}
