package servicebus_test

import (
	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/servicebus/armservicebus"
)

// TestCheckNameAvailabilitySDK: Service Bus's name check through the real
// armservicebus client (Key Vault's: package vault). A name is taken
// whichever tenant holds it (they are DNS names), an invalid name says so,
// and a free one is available.
func TestCheckNameAvailabilitySDK(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		tb := e.Contoso
		sub := tb.Tenant.SubscriptionID
		admin := e.AdminToken(tb)
		rg := "/subscriptions/" + sub + "/resourceGroups/names-rg"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-taken-0001",
			map[string]any{"location": "westeurope", "sku": map[string]any{"name": "Standard"}}), 201, "")

		// Another tenant asks: the names are taken for it too.
		other := e.Fabrikam
		cred := e.Credential(other.Tenant.ID, other.Admin.AppID, other.AdminSecret.SecretText)
		namespaces, err := armservicebus.NewNamespacesClient(other.Tenant.SubscriptionID, cred, e.ARMOptions())
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
			res, err := namespaces.CheckNameAvailability(e.Ctx, armservicebus.CheckNameAvailability{Name: to.Ptr(c.name)}, nil)
			must(t, err)
			if *res.NameAvailable != c.available || res.Reason == nil || *res.Reason != c.reason {
				t.Errorf("namespace %q: available %v, reason %v; want %v, %q", c.name, *res.NameAvailable, res.Reason, c.available, c.reason)
			}
		}
	})
}
