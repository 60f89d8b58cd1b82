package arm_test

import (
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/solutions/armmanagedapplications"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
)

// createUIDefinition is a minimal createUiDefinition, as the portal reads
// one; the server stores and shows it.
const createUIDefinition = `{"$schema":"https://schema.management.azure.com/schemas/0.1.2-preview/CreateUIDefinition.MultiVm.json#","handler":"Microsoft.Azure.CreateUIDef","version":"0.1.2-preview","parameters":{"basics":[],"steps":[],"outputs":{"identityName":"broker-identity"}}}`

// failingTemplate parses and plans, but its vault's name is refused by
// the Key Vault provider when the deployment creates it.
const failingTemplate = `{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "resources": [
    {"type": "Microsoft.KeyVault/vaults", "apiVersion": "2023-07-01", "name": "x", "location": "[resourceGroup().location]",
     "properties": {"tenantId": "[subscription().tenantId]", "sku": {"family": "A", "name": "standard"}}}
  ]
}`

// escapingTemplate tries to create an identity outside the managed
// resource group, in the customer's group "apps", by a nested deployment.
const escapingTemplate = `{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "resources": [
    {"type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01", "name": "outside", "resourceGroup": "apps",
     "properties": {"mode": "Incremental", "template": {
       "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
       "contentVersion": "1.0.0.0",
       "resources": [{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "planted", "location": "westeurope"}]}}}
  ]
}`

// TestManagedApplicationMainTemplateSDK drives a definition whose package
// is the shared-resource-broker mainTemplate with the real
// armmanagedapplications clients: the definition keeps mainTemplate and
// createUiDefinition, a template that does not parse is refused with
// InvalidTemplate, an install deploys the template into the locked
// managed resource group as the platform (the customer itself is denied
// there) with the application's parameters and shows its outputs, and a
// template whose resource fails fails the install with DeploymentFailed
// and the provider's error.
func TestManagedApplicationMainTemplateSDK(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		subID := tb.Tenant.SubscriptionID
		admin := e.adminToken(tb)
		ctx := e.ctx
		cred, defs, apps := managedAppClients(t, e)
		pub := e.newApp(tb.Tenant.ID, "publisher-ops", false)
		definition := func(template any) armmanagedapplications.ApplicationDefinition {
			return armmanagedapplications.ApplicationDefinition{Location: to.Ptr("westeurope"), Properties: &armmanagedapplications.ApplicationDefinitionProperties{
				LockLevel: to.Ptr(armmanagedapplications.ApplicationLockLevelReadOnly), DisplayName: to.Ptr("Shared resource broker"),
				Authorizations: []*armmanagedapplications.ApplicationAuthorization{{PrincipalID: to.Ptr(pub.sp.ID), RoleDefinitionID: to.Ptr(rbac.RoleContributor)}},
				// The SDK sends either form: an object, or a JSON string.
				MainTemplate: template, CreateUIDefinition: createUIDefinition}}
		}
		createDef := func(name string, template any) (armmanagedapplications.ApplicationDefinition, error) {
			p, err := defs.BeginCreateOrUpdate(ctx, "defs", name, definition(template), nil)
			if err != nil {
				return armmanagedapplications.ApplicationDefinition{}, err
			}
			res, err := p.PollUntilDone(ctx, fastPoll)
			return res.ApplicationDefinition, err
		}

		def, err := createDef("broker", parseJSON(t, brokerTemplate))
		must(t, err)
		got, err := defs.Get(ctx, "defs", "broker", nil)
		must(t, err)
		mt, _ := got.Properties.MainTemplate.(map[string]any)
		ui, _ := got.Properties.CreateUIDefinition.(map[string]any)
		if mt["contentVersion"] != "1.0.0.0" || len(mt["resources"].([]any)) != 5 || ui["handler"] != "Microsoft.Azure.CreateUIDef" {
			t.Fatalf("definition's package %v %v", got.Properties.MainTemplate, got.Properties.CreateUIDefinition)
		}

		// A template that does not parse is refused when the definition
		// is written, with the template's error; so are a string that
		// is not a JSON object and a package by URL from a host not allowed.
		_, err = createDef("bad", `{"$schema":"https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#","contentVersion":"1.0.0.0","resources":"none"}`)
		wantCode(t, err, http.StatusBadRequest, "InvalidTemplate")
		_, err = createDef("bad", "[1, 2]")
		wantCode(t, err, http.StatusBadRequest, "InvalidRequestContent")
		byURL := definition(nil)
		byURL.Properties.PackageFileURI = to.Ptr("https://publisher.example/package.zip")
		_, err = defs.BeginCreateOrUpdate(ctx, "defs", "bad", byURL, nil)
		wantCode(t, err, http.StatusBadRequest, "BadRequest") // the package twice: by URL and inline
		byURL.Properties.CreateUIDefinition = nil
		_, err = defs.BeginCreateOrUpdate(ctx, "defs", "bad", byURL, nil)
		// No host is allowed unless the operator says so.
		wantCode(t, err, http.StatusBadRequest, "DownloadItemFromBlobFailed")
		if _, err := defs.Get(ctx, "defs", "bad", nil); err == nil {
			t.Fatal("a refused definition was stored")
		}

		// Parameters that are not an object are refused at once.
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/apps/providers/Microsoft.Solutions/applications/odd", map[string]any{"location": "westeurope", "kind": "ServiceCatalog",
			"properties": map[string]any{"applicationDefinitionId": *def.ID, "managedResourceGroupId": sub(e) + "/resourceGroups/mrg-odd", "parameters": []any{1}}}), 400, "InvalidRequestContent")

		// Install: the template runs in the managed resource group with
		// the application's parameters.
		mrgName := "mrg-broker1"
		mrg := sub(e) + "/resourceGroups/" + mrgName
		install := func(name, group string, params map[string]any) (armmanagedapplications.Application, error) {
			p, err := apps.BeginCreateOrUpdate(ctx, "apps", name, armmanagedapplications.Application{Kind: to.Ptr("ServiceCatalog"), Location: to.Ptr("westeurope"),
				Properties: &armmanagedapplications.ApplicationProperties{ApplicationDefinitionID: def.ID, ManagedResourceGroupID: to.Ptr(sub(e) + "/resourceGroups/" + group),
					Parameters: params}}, nil)
			if err != nil {
				return armmanagedapplications.Application{}, err
			}
			res, err := p.PollUntilDone(ctx, fastPoll)
			return res.Application, err
		}
		app, err := install("broker1", mrgName, map[string]any{"identityName": map[string]any{"value": "app-identity"}})
		must(t, err)
		if *app.Properties.ProvisioningState != armmanagedapplications.ProvisioningStateSucceeded {
			t.Fatalf("install %+v", app.Properties)
		}
		outs, _ := app.Properties.Outputs.(map[string]any)
		value := func(name string) any {
			o, _ := outs[name].(map[string]any)
			return o["value"]
		}
		identityID := mrg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity"
		ident := e.call(admin, "GET", identityID, nil)
		e.want(ident, 200, "")
		vaultID, _ := value("vaultResourceId").(string)
		if !strings.HasPrefix(strings.ToLower(vaultID), strings.ToLower(mrg)+"/providers/microsoft.keyvault/vaults/kv") {
			t.Fatalf("outputs %v", outs)
		}
		vault := e.call(admin, "GET", vaultID, nil)
		e.want(vault, 200, "")
		if value("identityPrincipalId") != ident.doc["properties"].(map[string]any)["principalId"] || !strings.EqualFold(value("identityResourceId").(string), identityID) ||
			value("vaultUri") != vault.doc["properties"].(map[string]any)["vaultUri"] {
			t.Fatalf("outputs %v, identity %s, vault %s", outs, ident.raw, vault.raw)
		}
		// The role assignment of the template exists on the vault.
		ras := e.call(admin, "GET", vaultID+"/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()", nil)
		e.want(ras, 200, "")
		if !strings.Contains(string(ras.raw), value("identityPrincipalId").(string)) {
			t.Fatalf("role assignments on the vault %s", ras.raw)
		}
		// Get shows the outputs too; the deployment is the group's, read
		// by the customer, under the application's name.
		read, err := apps.Get(ctx, "apps", "broker1", nil)
		must(t, err)
		if o, _ := read.Properties.Outputs.(map[string]any); o["vaultUri"] == nil {
			t.Fatalf("get %+v", read.Properties)
		}
		dc, _ := e.deploymentsClient(subID, cred)
		dep, err := dc.Get(ctx, mrgName, "broker1", nil)
		must(t, err)
		if *dep.Properties.ProvisioningState != armresources.ProvisioningStateSucceeded || len(dep.Properties.OutputResources) != 5 {
			t.Fatalf("deployment %+v", dep.Properties)
		}
		// The platform deployed into the locked group, where the
		// customer's own Owner is denied.
		e.want(e.call(admin, "PUT", mrg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mine", map[string]any{"location": "westeurope"}), 403, "DenyAssignmentAuthorizationFailed")

		// A resource the provider refuses fails the install, with the
		// provider's error; so do parameters the template does not take,
		// with the template's.
		broken, err := createDef("broken", failingTemplate)
		must(t, err)
		def = broken
		failedWith := func(name, group string, params map[string]any) map[string]any {
			t.Helper()
			if _, err := install(name, group, params); err == nil {
				t.Fatalf("%s: a failing template installed", name)
			}
			r := e.call(admin, "GET", sub(e)+"/resourceGroups/apps/providers/Microsoft.Solutions/applications/"+name, nil)
			e.want(r, 200, "")
			props := r.doc["properties"].(map[string]any)
			appErr, _ := props["error"].(map[string]any)
			details, _ := appErr["details"].([]any)
			if props["provisioningState"] != "Failed" || appErr["code"] != "DeploymentFailed" || len(details) != 1 || props["outputs"] != nil {
				t.Fatalf("failed install %s", r.raw)
			}
			return details[0].(map[string]any)
		}
		if d := failedWith("broken1", "mrg-broken1", nil); d["code"] == "InternalServerError" || d["code"] == "InvalidTemplate" || !strings.Contains(d["message"].(string), "'x'") {
			t.Fatalf("failure detail %v", d)
		}
		// The platform acts in the managed group alone: a package that
		// reaches outside it fails, and creates nothing there.
		escaping, err := createDef("escaping", escapingTemplate)
		must(t, err)
		def = escaping
		if d := failedWith("escaping1", "mrg-escaping1", nil); d["code"] != "AuthorizationFailed" {
			t.Fatalf("failure detail %v", d)
		}
		e.want(e.call(admin, "GET", sub(e)+"/resourceGroups/apps/providers/Microsoft.ManagedIdentity/userAssignedIdentities/planted", nil), 404, "")
		if d := failedWith("broken2", "mrg-broken2", map[string]any{"identityName": map[string]any{"value": "app-identity"}}); d["code"] != "InvalidTemplate" || !strings.Contains(d["message"].(string), "identityName") {
			t.Fatalf("failure detail %v", d)
		}
	})
}

// managedAppClients makes contoso's groups "defs" and "apps" and returns
// its admin's credential with the real SDK's definitions and
// applications clients of its subscription.
func managedAppClients(t *testing.T, e *env) (azcore.TokenCredential, *armmanagedapplications.ApplicationDefinitionsClient, *armmanagedapplications.ApplicationsClient) {
	t.Helper()
	tb := e.contoso
	admin := e.adminToken(tb)
	for _, g := range []string{"defs", "apps"} {
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/"+g, map[string]any{"location": "westeurope"}), 201, "")
	}
	cred := e.credential(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
	defs, err := armmanagedapplications.NewApplicationDefinitionsClient(tb.Tenant.SubscriptionID, cred, e.armOptions())
	must(t, err)
	apps, err := armmanagedapplications.NewApplicationsClient(tb.Tenant.SubscriptionID, cred, e.armOptions())
	must(t, err)
	return cred, defs, apps
}
