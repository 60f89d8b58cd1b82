package arm_test

import (
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armlocks"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

// lockTemplate deploys an identity, a CanNotDelete lock on it as an
// extension resource (scope), and a CanNotDelete lock on the group.
const lockTemplate = `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0",
 "resources": [
  {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "keep-me", "location": "westeurope"},
  {"type": "Microsoft.Authorization/locks", "apiVersion": "2020-05-01", "name": "identity-lock",
   "scope": "[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'keep-me')]",
   "dependsOn": ["[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'keep-me')]"],
   "properties": {"level": "CanNotDelete", "notes": "from a template"}},
  {"type": "Microsoft.Authorization/locks", "apiVersion": "2020-05-01", "name": "group-lock", "properties": {"level": "CanNotDelete"}}
 ]}`

// TestDeploymentLocks: management locks deploy from a template, at the
// group and as an extension resource of another resource ("scope"), and
// bind at once; read back with armlocks.
func TestDeploymentLocks(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		subID := tb.Tenant.SubscriptionID
		admin := e.adminToken(tb)
		rg := sub(e) + "/resourceGroups/locks-rg"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		cred := e.credential(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
		dc, _ := e.deploymentsClient(subID, cred)
		p, err := dc.BeginCreateOrUpdate(e.ctx, "locks-rg", "locks", armresources.Deployment{Properties: &armresources.DeploymentProperties{
			Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: parseJSON(t, lockTemplate)}}, nil)
		must(t, err)
		res, err := p.PollUntilDone(e.ctx, fastPoll)
		must(t, err)
		if *res.Properties.ProvisioningState != armresources.ProvisioningStateSucceeded {
			t.Fatalf("deployment %+v", res.Properties)
		}
		locks, err := armlocks.NewManagementLocksClient(subID, cred, e.armOptions())
		must(t, err)
		got, err := locks.GetByScope(e.ctx, rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/keep-me", "identity-lock", nil)
		must(t, err)
		if *got.Properties.Level != armlocks.LockLevelCanNotDelete || *got.Properties.Notes != "from a template" {
			t.Fatalf("the identity's lock %+v", got.Properties)
		}
		if _, err := locks.GetAtResourceGroupLevel(e.ctx, "locks-rg", "group-lock", nil); err != nil {
			t.Fatal(err)
		}
		e.want(e.call(admin, "DELETE", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/keep-me", nil), http.StatusConflict, "ScopeLocked")
	})
}
