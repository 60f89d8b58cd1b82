package arm_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

// TestGenericResourcesByID: armresources' generic Client works by id on
// every tracked type tenantbridge serves — create, check existence, get
// and delete — with each type's own api-version, as az resource and
// Terraform's azapi use it; an api-version the type does not take is
// refused, and a deleted resource no longer exists.
func TestGenericResourcesByID(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		sub := tb.Tenant.SubscriptionID
		admin := e.adminToken(tb)
		rg := "/subscriptions/" + sub + "/resourceGroups/byid-rg"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		cred := e.credential(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
		client, err := armresources.NewClient(sub, cred, e.armOptions())
		must(t, err)
		ctx := e.ctx

		for _, c := range []struct {
			id, version string
			body        armresources.GenericResource
		}{
			{rg + "/providers/Microsoft.KeyVault/vaults/kv-byid-01", "2023-07-01", armresources.GenericResource{Location: to.Ptr("westeurope"),
				Properties: map[string]any{"tenantId": tb.Tenant.ID, "sku": map[string]any{"family": "A", "name": "standard"}, "enableRbacAuthorization": true}}},
			{rg + "/providers/Microsoft.ServiceBus/namespaces/sb-byid-0001", "2022-10-01-preview", armresources.GenericResource{Location: to.Ptr("westeurope"),
				SKU: &armresources.SKU{Name: to.Ptr("Standard")}}},
			{rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-byid", "2023-01-31", armresources.GenericResource{Location: to.Ptr("westeurope")}},
		} {
			poller, err := client.BeginCreateOrUpdateByID(ctx, c.id, c.version, c.body, nil)
			must(t, err)
			created, err := poller.PollUntilDone(ctx, fastPoll)
			must(t, err)
			if created.ID == nil || *created.ID != c.id {
				t.Errorf("created %s: id %v", c.id, created.ID)
			}
			exists, err := client.CheckExistenceByID(ctx, c.id, c.version, nil)
			must(t, err)
			if !exists.Success {
				t.Errorf("%s does not exist after its PUT", c.id)
			}
			got, err := client.GetByID(ctx, c.id, c.version, nil)
			must(t, err)
			if got.Location == nil || *got.Location != "westeurope" || got.Name == nil {
				t.Errorf("get %s: %+v", c.id, got.GenericResource)
			}
			if _, err := client.GetByID(ctx, c.id, "2099-01-01", nil); err == nil {
				t.Errorf("get %s with an unknown api-version succeeded", c.id)
			}
			del, err := client.BeginDeleteByID(ctx, c.id, c.version, nil)
			must(t, err)
			_, err = del.PollUntilDone(ctx, fastPoll)
			must(t, err)
			gone, err := client.CheckExistenceByID(ctx, c.id, c.version, nil)
			must(t, err)
			if gone.Success {
				t.Errorf("%s still exists after its DELETE", c.id)
			}
		}
	})
}
