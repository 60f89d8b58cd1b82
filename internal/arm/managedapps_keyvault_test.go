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

// TestManagedApplicationSecureParameterNotShown: a securestring parameter
// of an application deploys, and its value is in no answer: not the
// application's (which the customer and the publisher's authorized
// principals read), nor its deployment's (Azure never returns a secure
// parameter's value).
func TestManagedApplicationSecureParameterNotShown(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		admin := e.adminToken(tb)
		for _, g := range []string{"defs", "apps"} {
			e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/"+g, map[string]any{"location": "westeurope"}), 201, "")
		}
		def := sub(e) + "/resourceGroups/defs/providers/Microsoft.Solutions/applicationDefinitions/securep"
		e.want(e.call(admin, "PUT", def, map[string]any{"location": "westeurope", "properties": map[string]any{"lockLevel": "None",
			"mainTemplate": parseJSON(t, secureParamTemplate)}}), 201, "")
		app := sub(e) + "/resourceGroups/apps/providers/Microsoft.Solutions/applications/withpw"
		const value = "hunter2-do-not-echo"
		r := e.call(admin, "PUT", app, map[string]any{"location": "westeurope", "kind": "ServiceCatalog", "properties": map[string]any{
			"applicationDefinitionId": def, "managedResourceGroupId": sub(e) + "/resourceGroups/mrg-withpw",
			"parameters": map[string]any{"pw": map[string]any{"value": value}}}})
		props, _ := r.doc["properties"].(map[string]any)
		if props["provisioningState"] != "Succeeded" {
			t.Fatalf("install %d %s", r.status, r.raw)
		}
		outs, _ := props["outputs"].(map[string]any)
		if n, _ := outs["n"].(map[string]any); n["value"] != float64(len(value)) {
			t.Fatalf("the template did not get the value: %s", r.raw)
		}
		for _, path := range []string{app, sub(e) + "/resourceGroups/mrg-withpw/providers/Microsoft.Resources/deployments/withpw"} {
			g := e.call(admin, "GET", path, nil)
			e.want(g, 200, "")
			if strings.Contains(string(g.raw), value) {
				t.Errorf("GET %s shows the secure value: %s", path, g.raw)
			}
		}
		if strings.Contains(string(r.raw), value) {
			t.Errorf("the install's answer shows the secure value: %s", r.raw)
		}
		// An update that sends the parameters again, secure value and
		// all, changes nothing and is not refused; another value of a
		// plain member would be.
		e.want(e.call(admin, "PATCH", app, map[string]any{"properties": map[string]any{"parameters": map[string]any{"pw": map[string]any{"value": value}}},
			"tags": map[string]any{"t": "1"}}), 200, "")
		// Nothing of it in the store either: the record holds no value.
		res, err := e.st.GetResource(e.ctx, app)
		must(t, err)
		if strings.Contains(string(res.Properties), value) {
			t.Errorf("the stored application holds the secure value: %s", res.Properties)
		}
	})
}
