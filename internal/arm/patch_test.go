package arm_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

// TestResourceGroupUpdateSDK: Resource Groups - Update (PATCH) through
// armresources' ResourceGroupsClient.Update: the tags the patch names
// replace the group's, what it leaves out stays, a missing group is not
// created, and the refusals of a PUT apply.
func TestResourceGroupUpdateSDK(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		admin := e.adminToken(tb)
		rg := sub(e) + "/resourceGroups/patch"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope", "tags": map[string]string{"keep": "me"}}), 201, "")

		cred := e.x.Credential(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
		groups, err := armresources.NewResourceGroupsClient(tb.Tenant.SubscriptionID, cred, e.x.ARMOptions())
		must(t, err)
		got, err := groups.Update(e.ctx, "patch", armresources.ResourceGroupPatchable{Tags: map[string]*string{"env": to.Ptr("prod")}}, nil)
		must(t, err)
		if got.Tags["env"] == nil || got.Tags["keep"] != nil || *got.Location != "westeurope" || *got.Name != "patch" {
			t.Fatalf("tags patch: %+v %v", got.Tags, *got.Location)
		}
		// Without tags nothing changes.
		got, err = groups.Update(e.ctx, "patch", armresources.ResourceGroupPatchable{}, nil)
		must(t, err)
		if got.Tags["env"] == nil {
			t.Fatalf("empty patch: %+v", got.Tags)
		}
		e.want(e.call(admin, "PATCH", sub(e)+"/resourceGroups/none", map[string]any{"tags": map[string]any{}}), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "GET", sub(e)+"/resourceGroups/none", nil), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "PATCH", rg, map[string]any{"tags": map[string]any{"a<b": "x"}}), 400, "InvalidTagNameCharacters")

		e.x.CheckPatchRefusals(tb, rg, rg, map[string]any{"tags": map[string]any{"refused": "yes"}})
	})
}
