package servicebus_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/servicebus/armservicebus"

	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
)

// TestNamespaceUpdateSDK: Namespaces - Update (PATCH) through
// armservicebus's NamespacesClient.Update: tags and sku merge into what
// the namespace has, a location other than its own is refused as a PUT
// refuses it, a missing namespace is not created, queues have no Update
// (405), and a PUT's refusals apply.
func TestNamespaceUpdateSDK(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		tb := e.Contoso
		admin := e.AdminToken(tb)
		rg := armtest.Sub(e) + "/resourceGroups/patch"
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-patch-0001"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.Want(e.Call(admin, "PUT", nid, map[string]any{"location": "westeurope", "tags": map[string]string{"keep": "me"}, "sku": map[string]any{"name": "Standard"}}), 201, "")
		e.Want(e.Call(admin, "PUT", nid+"/queues/q1", map[string]any{"properties": map[string]any{}}), 200, "")

		cred := e.Credential(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
		namespaces, err := armservicebus.NewNamespacesClient(tb.Tenant.SubscriptionID, cred, e.ARMOptions())
		must(t, err)
		got, err := namespaces.Update(e.Ctx, "patch", "sb-patch-0001", armservicebus.SBNamespaceUpdateParameters{SKU: &armservicebus.SBSKU{Name: to.Ptr(armservicebus.SKUNamePremium)}}, nil)
		must(t, err)
		if *got.SKU.Name != armservicebus.SKUNamePremium || got.Tags["keep"] == nil || *got.Location != "westeurope" {
			t.Fatalf("sku patch: %+v %+v %v", got.SKU, got.Tags, *got.Location)
		}
		got, err = namespaces.Update(e.Ctx, "patch", "sb-patch-0001", armservicebus.SBNamespaceUpdateParameters{Tags: map[string]*string{"env": to.Ptr("prod")}}, nil)
		must(t, err)
		if *got.SKU.Name != armservicebus.SKUNamePremium || got.Tags["keep"] != nil || got.Tags["env"] == nil {
			t.Fatalf("tags patch: %+v %+v", got.SKU, got.Tags)
		}
		e.Want(e.Call(admin, "PATCH", nid, map[string]any{"location": "eastus"}), 400, "InvalidResourceLocation")
		e.Want(e.Call(admin, "PATCH", nid, map[string]any{"sku": map[string]any{"name": "Gold"}}), 400, "BadRequest")
		// Queues have no Update operation.
		e.Want(e.Call(admin, "PATCH", nid+"/queues/q1", map[string]any{"properties": map[string]any{}}), 405, "MethodNotAllowed")
		// A PATCH does not create.
		e.Want(e.Call(admin, "PATCH", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-patch-none", map[string]any{"tags": map[string]any{}}), 404, "ResourceNotFound")
		e.Want(e.Call(admin, "GET", rg+"/providers/Microsoft.ServiceBus/namespaces/sb-patch-none", nil), 404, "ResourceNotFound")

		e.CheckPatchRefusals(tb, rg, nid, map[string]any{"tags": map[string]any{"refused": "yes"}})
	})
}
