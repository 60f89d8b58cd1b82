package arm_test

import (
	"strings"
	"testing"
)

// secureParamTemplate takes a securestring and deploys nothing.
const secureParamTemplate = `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0",
 "parameters": {"pw": {"type": "securestring"}}, "resources": [], "outputs": {"n": {"type": "int", "value": "[length(parameters('pw'))]"}}}`

// TestManagedApplicationKeyVaultReference: an install deploys as the
// platform, which may deploy from no vault outside the managed resource
// group: an application whose parameters name a vault elsewhere (here
// the installer's own, enabled for template deployment) fails with
// KeyVaultParameterReferenceAuthorizationFailed, so a customer cannot
// use the platform to read a vault, nor a package the publisher's
// without the grant Azure asks for.
func TestManagedApplicationKeyVaultReference(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		admin := e.adminToken(tb)
		for _, g := range []string{"defs", "apps", "secrets"} {
			e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/"+g, map[string]any{"location": "westeurope"}), 201, "")
		}
		vaultID := sub(e) + "/resourceGroups/secrets/providers/Microsoft.KeyVault/vaults/kv-appref-01"
		e.want(e.call(admin, "PUT", vaultID, vaultBody(tb.Tenant.ID, map[string]any{"enabledForTemplateDeployment": true})), 201, "")

		def := sub(e) + "/resourceGroups/defs/providers/Microsoft.Solutions/applicationDefinitions/secure"
		e.want(e.call(admin, "PUT", def, map[string]any{"location": "westeurope", "properties": map[string]any{"lockLevel": "None",
			"mainTemplate": parseJSON(t, secureParamTemplate)}}), 201, "")
		app := sub(e) + "/resourceGroups/apps/providers/Microsoft.Solutions/applications/reader1"
		r := e.call(admin, "PUT", app, map[string]any{"location": "westeurope", "kind": "ServiceCatalog", "properties": map[string]any{
			"applicationDefinitionId": def, "managedResourceGroupId": sub(e) + "/resourceGroups/mrg-reader1",
			"parameters": map[string]any{"pw": map[string]any{"reference": map[string]any{"keyVault": map[string]any{"id": vaultID}, "secretName": "anything"}}}}})
		props2, _ := r.doc["properties"].(map[string]any)
		if props2["provisioningState"] != "Failed" || !strings.Contains(string(r.raw), "KeyVaultParameterReferenceAuthorizationFailed") {
			t.Fatalf("install %d %s", r.status, r.raw)
		}
	})
}
