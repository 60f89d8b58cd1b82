package arm_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// nestedTemplate runs an inner-scope nested deployment "inner" in the
// group its parameter names, with a secure and a plain parameter.
const nestedTemplate = `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0",
 "parameters": {"target": {"type": "string"}},
 "resources": [{"type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01", "name": "inner", "resourceGroup": "[parameters('target')]",
  "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
   "parameters": {"pw": {"value": "n3sted-s3cret"}, "greeting": {"value": "hello"}},
   "template": {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0",
    "parameters": {"pw": {"type": "securestring"}, "greeting": {"type": "string"}},
    "resources": [{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "nested-id", "location": "westeurope"}],
    "outputs": {"said": {"type": "string", "value": "[parameters('greeting')]"}}}}}],
 "outputs": {"fromInner": {"type": "string", "value": "[reference('inner').outputs.said.value]"}}}`

// TestNestedDeploymentRecords: a nested deployment is a deployment of its
// own: GET and list at its scope show it with its outputs and its
// parameters (the secure one without value); the deployer needs
// deployments/write at its scope (a principal with rights in one group
// only cannot nest a deployment into another). Real armresources client.
func TestNestedDeploymentRecords(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		subID := tb.Tenant.SubscriptionID
		admin := e.adminToken(tb)
		for _, g := range []string{"outer-rg", "inner-rg"} {
			e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/"+g, map[string]any{"location": "westeurope"}), 201, "")
		}
		cred := e.credential(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
		dc, _ := e.deploymentsClient(subID, cred)
		run := func(dc *armresources.DeploymentsClient, name string) (armresources.DeploymentsClientCreateOrUpdateResponse, error) {
			p, err := dc.BeginCreateOrUpdate(e.ctx, "outer-rg", name, armresources.Deployment{Properties: &armresources.DeploymentProperties{
				Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: parseJSON(t, nestedTemplate),
				Parameters: map[string]any{"target": map[string]any{"value": "inner-rg"}}}}, nil)
			if err != nil {
				return armresources.DeploymentsClientCreateOrUpdateResponse{}, err
			}
			return p.PollUntilDone(e.ctx, fastPoll)
		}
		res, err := run(dc, "outer")
		must(t, err)
		if o := res.Properties.Outputs.(map[string]any)["fromInner"].(map[string]any)["value"]; o != "hello" {
			t.Fatalf("outer outputs %v", res.Properties.Outputs)
		}
		inner, err := dc.Get(e.ctx, "inner-rg", "inner", nil)
		must(t, err)
		p := inner.Properties
		if *p.ProvisioningState != armresources.ProvisioningStateSucceeded || *inner.ID != sub(e)+"/resourceGroups/inner-rg/providers/Microsoft.Resources/deployments/inner" {
			t.Fatalf("nested record %+v %+v", inner.DeploymentExtended, p)
		}
		if said := p.Outputs.(map[string]any)["said"].(map[string]any)["value"]; said != "hello" {
			t.Errorf("nested outputs %v", p.Outputs)
		}
		params := p.Parameters.(map[string]any)
		if pw := params["pw"].(map[string]any); pw["value"] != nil || params["greeting"].(map[string]any)["value"] != "hello" {
			t.Errorf("nested parameters %v", params)
		}
		pager := dc.NewListByResourceGroupPager("inner-rg", nil)
		page, err := pager.NextPage(e.ctx)
		must(t, err)
		if len(page.Value) != 1 || *page.Value[0].Name != "inner" {
			t.Errorf("the inner group's deployments %d", len(page.Value))
		}

		// A principal that may deploy in outer-rg only cannot nest one
		// into inner-rg: AuthorizationFailed, and no record there.
		limited := e.newApp(tb.Tenant.ID, "outer-only", false)
		must(t, e.st.CreateRoleAssignment(e.ctx, store.RoleAssignment{TenantID: tb.Tenant.ID, ID: "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
			Scope: sub(e) + "/resourceGroups/outer-rg", RoleDefinitionID: rbac.RoleContributor, PrincipalID: limited.sp.ID,
			PrincipalType: store.PrincipalServicePrincipal, PrincipalTenantID: tb.Tenant.ID}))
		ldc, _ := e.deploymentsClient(subID, e.credential(tb.Tenant.ID, limited.app.AppID, limited.secret))
		_, err = run(ldc, "sneaky")
		if err == nil {
			t.Fatal("a nested deployment into a group the deployer has no rights in succeeded")
		}
		if _, err := e.st.GetDeployment(e.ctx, subID, "inner-rg", "inner"); err != nil {
			t.Fatal(err)
		}
		d, err := dc.Get(e.ctx, "outer-rg", "sneaky", nil)
		must(t, err)
		if *d.Properties.ProvisioningState != armresources.ProvisioningStateFailed {
			t.Fatalf("sneaky %v", *d.Properties.ProvisioningState)
		}
		// Refused at the nested deployment itself, before its resources.
		b, _ := json.Marshal(d.Properties.Error)
		if !strings.Contains(string(b), "AuthorizationFailed") || !strings.Contains(string(b), "Microsoft.Resources/deployments/write") {
			t.Errorf("sneaky's error %s", b)
		}
	})
}
