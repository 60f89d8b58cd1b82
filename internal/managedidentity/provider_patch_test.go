package managedidentity_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"

	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
)

// TestIdentityUpdateSDK: UserAssignedIdentities - Update (PATCH) through
// armmsi's UserAssignedIdentitiesClient.Update: tags merge into what the
// identity has (its principal and client ids unchanged), a location other
// than its own is refused, a missing identity is not created, federated
// credentials have no Update (405), and a PUT's refusals apply.
func TestIdentityUpdateSDK(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		tb := e.Contoso
		admin := e.AdminToken(tb)
		rg := armtest.Sub(e) + "/resourceGroups/patch"
		iid := rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-patch"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		created := e.Call(admin, "PUT", iid, map[string]any{"location": "westeurope", "tags": map[string]string{"keep": "me"}})
		e.Want(created, 201, "")
		e.Want(e.Call(admin, "PUT", iid+"/federatedIdentityCredentials/fic", ficBody("repo:o/r:ref:refs/heads/main")), 201, "")

		cred := e.Credential(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
		identities, err := armmsi.NewUserAssignedIdentitiesClient(tb.Tenant.SubscriptionID, cred, e.ARMOptions())
		must(t, err)
		got, err := identities.Update(e.Ctx, "patch", "id-patch", armmsi.IdentityUpdate{Tags: map[string]*string{"env": to.Ptr("prod")}}, nil)
		must(t, err)
		props := created.Doc["properties"].(map[string]any)
		if got.Tags["env"] == nil || got.Tags["keep"] != nil || *got.Location != "westeurope" ||
			*got.Properties.PrincipalID != props["principalId"] || *got.Properties.ClientID != props["clientId"] {
			t.Fatalf("tags patch: %+v %v %+v", got.Tags, *got.Location, got.Properties)
		}
		e.Want(e.Call(admin, "PATCH", iid, map[string]any{"location": "eastus"}), 400, "InvalidResourceLocation")
		e.Want(e.Call(admin, "PATCH", iid+"/federatedIdentityCredentials/fic", ficBody("x")), 405, "MethodNotAllowed")
		e.Want(e.Call(admin, "PATCH", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-none", map[string]any{"tags": map[string]any{}}), 404, "ResourceNotFound")
		e.Want(e.Call(admin, "GET", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-none", nil), 404, "ResourceNotFound")

		e.CheckPatchRefusals(tb, rg, iid, map[string]any{"tags": map[string]any{"refused": "yes"}})
	})
}
