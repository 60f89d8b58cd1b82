package arm_test

import (
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/solutions/armmanagedapplications"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// TestManagedApplicationsUpdateSDK: armmanagedapplications' Update of a
// definition (tags) and of an application (tags; another managed
// resource group or parameters are refused with
// ApplicationUpdateNotSupported), 200 with the resource; a missing one is
// 404, a Reader is refused.
func TestManagedApplicationsUpdateSDK(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		subID := tb.Tenant.SubscriptionID
		ctx := e.ctx
		_, defs, apps := managedAppClients(t, e)
		dp, err := defs.BeginCreateOrUpdate(ctx, "defs", "tagged", armmanagedapplications.ApplicationDefinition{Location: to.Ptr("westeurope"),
			Properties: &armmanagedapplications.ApplicationDefinitionProperties{LockLevel: to.Ptr(armmanagedapplications.ApplicationLockLevelNone),
				MainTemplate: parseJSON(t, brokerTemplate)}}, nil)
		must(t, err)
		def, err := dp.PollUntilDone(ctx, fastPoll)
		must(t, err)

		upd, err := defs.Update(ctx, "defs", "tagged", armmanagedapplications.ApplicationDefinitionPatchable{Tags: map[string]*string{"env": to.Ptr("prod")}}, nil)
		must(t, err)
		if upd.Tags["env"] == nil || *upd.Tags["env"] != "prod" || upd.Properties.MainTemplate == nil {
			t.Fatalf("updated definition %+v", upd.ApplicationDefinition)
		}
		_, err = defs.Update(ctx, "defs", "ghost", armmanagedapplications.ApplicationDefinitionPatchable{Tags: map[string]*string{}}, nil)
		wantCode(t, err, http.StatusNotFound, "ResourceNotFound")

		ap, err := apps.BeginCreateOrUpdate(ctx, "apps", "tagged1", armmanagedapplications.Application{Kind: to.Ptr("ServiceCatalog"), Location: to.Ptr("westeurope"),
			Properties: &armmanagedapplications.ApplicationProperties{ApplicationDefinitionID: def.ID, ManagedResourceGroupID: to.Ptr(sub(e) + "/resourceGroups/mrg-tagged1")}}, nil)
		must(t, err)
		_, err = ap.PollUntilDone(ctx, fastPoll)
		must(t, err)
		au, err := apps.Update(ctx, "apps", "tagged1", &armmanagedapplications.ApplicationsClientUpdateOptions{Parameters: &armmanagedapplications.ApplicationPatchable{
			Tags: map[string]*string{"owner": to.Ptr("ops")}}})
		must(t, err)
		if au.Tags["owner"] == nil || *au.Tags["owner"] != "ops" || *au.Properties.ProvisioningState != armmanagedapplications.ProvisioningStateSucceeded {
			t.Fatalf("updated application %+v", au.Application)
		}
		got, err := apps.Get(ctx, "apps", "tagged1", nil)
		must(t, err)
		if got.Tags["owner"] == nil {
			t.Fatalf("tags not kept %+v", got.Tags)
		}
		_, err = apps.Update(ctx, "apps", "tagged1", &armmanagedapplications.ApplicationsClientUpdateOptions{Parameters: &armmanagedapplications.ApplicationPatchable{
			Properties: &armmanagedapplications.ApplicationProperties{ManagedResourceGroupID: to.Ptr(sub(e) + "/resourceGroups/elsewhere")}}})
		wantCode(t, err, http.StatusConflict, "ApplicationUpdateNotSupported")
		_, err = apps.Update(ctx, "apps", "tagged1", &armmanagedapplications.ApplicationsClientUpdateOptions{Parameters: &armmanagedapplications.ApplicationPatchable{
			Properties: &armmanagedapplications.ApplicationProperties{Parameters: map[string]any{"identityName": map[string]any{"value": "other"}}}}})
		wantCode(t, err, http.StatusConflict, "ApplicationUpdateNotSupported")

		// A Reader of the subscription may not update.
		reader := e.newApp(tb.Tenant.ID, "reader", false)
		must(t, e.st.CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: tb.Tenant.ID, ID: "3a2b1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0d", Scope: sub(e),
			RoleDefinitionID: rbac.RoleReader, PrincipalID: reader.sp.ID, PrincipalType: store.PrincipalServicePrincipal, PrincipalTenantID: tb.Tenant.ID}))
		rapps, err := armmanagedapplications.NewApplicationsClient(subID, e.credential(tb.Tenant.ID, reader.app.AppID, reader.secret), e.armOptions())
		must(t, err)
		_, err = rapps.Update(ctx, "apps", "tagged1", &armmanagedapplications.ApplicationsClientUpdateOptions{Parameters: &armmanagedapplications.ApplicationPatchable{
			Tags: map[string]*string{"owner": to.Ptr("me")}}})
		wantCode(t, err, http.StatusForbidden, "AuthorizationFailed")
	})
}
