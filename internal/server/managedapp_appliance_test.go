package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// bootstrapPackage is a package that reads the publisher's secret as
// Azure's documentation asks: a Key Vault reference in the parameters of
// a nested deployment (key-vault-access). It outputs the secret's length,
// never the secret. Its top-level parameter customerSecret is a
// securestring the customer gives at install.
const bootstrapPackage = `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0",
 "parameters": {"customerSecret": {"type": "securestring", "defaultValue": ""}},
 "resources": [{"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "bootstrap",
   "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
     "parameters": {"boot": {"reference": {"keyVault": {"id": "VAULT_ID"}, "secretName": "BootstrapSecret"}}},
     "template": {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0",
       "parameters": {"boot": {"type": "securestring"}}, "resources": [],
       "outputs": {"n": {"type": "int", "value": "[length(parameters('boot'))]"}}}}}],
 "outputs": {"bootstrapLength": {"type": "int", "value": "[reference('bootstrap').outputs.n.value]"}}}`

// TestManagedApplicationApplianceRP: a managed application's package
// reads the publisher's bootstrap secret through a Key Vault reference in
// a nested deployment's parameters, resolved as the publisher tenant's
// "Appliance Resource Provider" (found by display name through Graph, as
// az ad sp list --display-name does): refused with
// KeyVaultParameterReferenceAuthorizationFailed until the publisher
// grants that principal a role with deploy/action on its vault, then the
// install succeeds with the secret in the template and in no record. The
// attacker cases: the customer naming the publisher's vault in the
// application's own parameters, and the customer's own package (its own
// definition) naming it, are refused: the customer's parameters resolve
// as the platform, and the customer tenant's Appliance Resource Provider
// holds no grant in the publisher's tenant.
func TestManagedApplicationApplianceRP(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testManagedApplicationApplianceRP(t, server.Config{}) })
	t.Run("postgres", func(t *testing.T) {
		testManagedApplicationApplianceRP(t, server.Config{StoreURL: storetest.PostgresSchemaDSN(t)})
	})
}

func testManagedApplicationApplianceRP(t *testing.T, cfg server.Config) {
	ctx := context.Background()
	r := start(t, cfg)
	pub := r.createTenant(t, "arppub")
	cust := r.createTenant(t, "arpcust")
	c := r.client()
	pubCred, custCred := adminCredential(t, c, pub), adminCredential(t, c, cust)
	call := func(cred azcore.TokenCredential, method, path string, body any) (int, map[string]any, string) {
		t.Helper()
		raw, _ := json.Marshal(body)
		if body == nil {
			raw = nil
		}
		status, out := armCall(t, r, cred, method, path+"?api-version="+apiVersionOf(path), string(raw))
		var doc map[string]any
		_ = json.Unmarshal(out, &doc)
		return status, doc, string(out)
	}
	mustPut := func(cred azcore.TokenCredential, path string, body any) {
		t.Helper()
		if s, _, raw := call(cred, "PUT", path, body); s/100 != 2 {
			t.Fatalf("PUT %s: %d %s", path, s, raw)
		}
	}
	psub, csub := "/subscriptions/"+pub.SubscriptionID, "/subscriptions/"+cust.SubscriptionID
	for _, g := range []string{"secrets", "offers"} {
		mustPut(pubCred, psub+"/resourceGroups/"+g, map[string]any{"location": "westeurope"})
	}
	for _, g := range []string{"apps", "defs"} {
		mustPut(custCred, csub+"/resourceGroups/"+g, map[string]any{"location": "westeurope"})
	}

	// The publisher's vault, enabled for template deployment, and its
	// bootstrap secret.
	vaultID := psub + "/resourceGroups/secrets/providers/Microsoft.KeyVault/vaults/kvarp-pub-01"
	mustPut(pubCred, vaultID, map[string]any{"location": "westeurope", "properties": map[string]any{"tenantId": pub.TenantID,
		"sku": map[string]any{"family": "A", "name": "standard"}, "enableRbacAuthorization": true, "enabledForTemplateDeployment": true}})
	if err := r.srv.Store().CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: pub.TenantID, ID: "7d0c2b8e-1f3a-4c5d-9e6f-a1b2c3d4e5f6",
		Scope: vaultID, RoleDefinitionID: rbac.RoleKeyVaultSecretsOfficer, PrincipalID: pub.Admin.ServicePrincipalID,
		PrincipalType: store.PrincipalServicePrincipal, CreatedOn: time.Now()}); err != nil {
		t.Fatal(err)
	}
	const secret = "b00tstrap-Secret-of-the-publisher"
	kv, err := azsecrets.NewClient("https://kvarp-pub-01.vault.azure.net", pubCred, &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: c}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.SetSecret(ctx, "BootstrapSecret", azsecrets.SetSecretParameters{Value: to.Ptr(secret)}, nil); err != nil {
		t.Fatal(err)
	}

	var pkg map[string]any
	if err := json.Unmarshal([]byte(strings.Replace(bootstrapPackage, "VAULT_ID", vaultID, 1)), &pkg); err != nil {
		t.Fatal(err)
	}
	def := psub + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/boot"
	mustPut(pubCred, def, map[string]any{"location": "westeurope", "properties": map[string]any{"lockLevel": "ReadOnly",
		"authorizations": []any{map[string]any{"principalId": pub.Admin.ServicePrincipalID, "roleDefinitionId": "b24988ac-6180-42a0-ab88-20f7382dd24c"}},
		"mainTemplate":   pkg}})
	op := azclient.NewOperator("https://"+r.addr, r.srv.Operator().Key, c)
	if _, err := op.PublishOffer(ctx, def); err != nil {
		t.Fatal(err)
	}
	install := func(name string, params map[string]any) (map[string]any, string) {
		t.Helper()
		body := map[string]any{"location": "westeurope", "kind": "MarketPlace",
			"plan":       map[string]any{"name": "standard", "publisher": pub.Domain, "product": "boot", "version": "1.0.0"},
			"properties": map[string]any{"managedResourceGroupId": csub + "/resourceGroups/mrg-" + name}}
		if params != nil {
			body["properties"].(map[string]any)["parameters"] = params
		}
		s, doc, raw := call(custCred, "PUT", csub+"/resourceGroups/apps/providers/Microsoft.Solutions/applications/"+name, body)
		if s != http.StatusCreated {
			t.Fatalf("install %s: %d %s", name, s, raw)
		}
		if strings.Contains(raw, secret) {
			t.Fatalf("the install's answer shows the secret: %s", raw)
		}
		p, _ := doc["properties"].(map[string]any)
		return p, raw
	}
	wantRefused := func(p map[string]any, raw, who string) {
		t.Helper()
		if p["provisioningState"] != "Failed" || !strings.Contains(raw, "KeyVaultParameterReferenceAuthorizationFailed") {
			t.Fatalf("want Failed with KeyVaultParameterReferenceAuthorizationFailed: %s", raw)
		}
		if who != "" && !strings.Contains(raw, who) {
			t.Fatalf("the refusal does not name the deployer %s: %s", who, raw)
		}
	}

	// The publisher tenant's Appliance Resource Provider, by display name.
	arp := servicePrincipalByName(t, c, pub, directory.ApplianceRPName)

	// 1. Not granted yet: refused, naming the Appliance Resource Provider.
	p, raw := install("before", nil)
	wantRefused(p, raw, arp)

	// 2. The publisher grants it Contributor (deploy/action) on the vault,
	// as Azure's documentation says: the secret reaches the package.
	mustPut(pubCred, vaultID+"/providers/Microsoft.Authorization/roleAssignments/0e5a3c1b-2d4f-4a6b-8c9d-e1f2a3b4c5d6",
		map[string]any{"properties": map[string]any{"roleDefinitionId": psub + "/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
			"principalId": arp, "principalType": "ServicePrincipal"}})
	p, raw = install("after", nil)
	if p["provisioningState"] != "Succeeded" {
		t.Fatalf("install after the grant: %s", raw)
	}
	outs, _ := p["outputs"].(map[string]any)
	if n, _ := outs["bootstrapLength"].(map[string]any); n == nil || n["value"] != float64(len(secret)) {
		t.Fatalf("outputs %v", outs)
	}

	// 3. The customer names the publisher's vault in the application's
	// own parameters: those resolve as the platform, refused outside the
	// managed group, whatever the publisher granted.
	p, raw = install("steal", map[string]any{"customerSecret": map[string]any{"reference": map[string]any{
		"keyVault": map[string]any{"id": vaultID}, "secretName": "BootstrapSecret"}}})
	wantRefused(p, raw, "")

	// 4. The customer's own package (its own definition, the same
	// template) names the publisher's vault: deployed as the customer
	// tenant's Appliance Resource Provider, which holds no grant there.
	cdef := csub + "/resourceGroups/defs/providers/Microsoft.Solutions/applicationDefinitions/copycat"
	mustPut(custCred, cdef, map[string]any{"location": "westeurope", "properties": map[string]any{"lockLevel": "None", "mainTemplate": pkg}})
	s, doc, craw := call(custCred, "PUT", csub+"/resourceGroups/apps/providers/Microsoft.Solutions/applications/copycat", map[string]any{
		"location": "westeurope", "kind": "ServiceCatalog", "properties": map[string]any{"applicationDefinitionId": cdef,
			"managedResourceGroupId": csub + "/resourceGroups/mrg-copycat"}})
	cp, _ := doc["properties"].(map[string]any)
	if s != http.StatusCreated || strings.Contains(craw, secret) {
		t.Fatalf("the copycat install: %d %s", s, craw)
	}
	wantRefused(cp, craw, servicePrincipalByName(t, c, cust, directory.ApplianceRPName))

	// The secret is in no record the customer or the publisher can read,
	// nor in the audit log; the reads are audited as the Appliance
	// Resource Provider's.
	for _, path := range []string{csub + "/resourceGroups/apps/providers/Microsoft.Solutions/applications/after",
		csub + "/resourceGroups/mrg-after/providers/Microsoft.Resources/deployments/after",
		csub + "/resourceGroups/mrg-after/providers/Microsoft.Resources/deployments/after/operations",
		csub + "/resourceGroups/mrg-after/providers/Microsoft.Resources/deployments/bootstrap"} {
		for _, cred := range []azcore.TokenCredential{custCred, pubCred} {
			if _, _, body := call(cred, "GET", path, nil); strings.Contains(body, secret) {
				t.Errorf("%s shows the secret", path)
			}
		}
	}
	recs, err := r.srv.Store().ListAudit(ctx, store.AuditQuery{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	arpReads := 0
	for _, rec := range recs {
		if strings.Contains(rec.Detail+rec.Target+rec.Action, secret) {
			t.Errorf("audit record shows the secret: %+v", rec)
		}
		if rec.Action == "Microsoft.KeyVault/vaults/deploy/action" && rec.Actor == arp {
			arpReads++
		}
	}
	if arpReads != 1 {
		t.Errorf("the Appliance Resource Provider's reads audited: %d, want 1", arpReads)
	}
}

// adminCredential is the tenant administrator's credential, through c.
func adminCredential(t *testing.T, c *http.Client, tc tenantCreated) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tc.TenantID, tc.Admin.ClientID, tc.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: c}})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// apiVersionOf is an api-version Resource Manager serves for path.
func apiVersionOf(path string) string {
	l := strings.ToLower(path)
	switch {
	case strings.Contains(l, "/microsoft.solutions/"):
		return "2021-07-01"
	case strings.Contains(l, "/microsoft.authorization/roleassignments/"):
		return "2022-04-01"
	case strings.Contains(l, "/microsoft.keyvault/"):
		return "2023-07-01"
	case strings.Contains(l, "/microsoft.resources/deployments"):
		return "2022-09-01"
	}
	return "2021-04-01"
}

// servicePrincipalByName finds a service principal of the tenant by its
// display name through Graph, as the tenant's administrator.
func servicePrincipalByName(t *testing.T, c *http.Client, tc tenantCreated, name string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {tc.Admin.ClientID}, "client_secret": {tc.Admin.ClientSecret},
		"scope": {"https://graph.microsoft.com/.default"}}
	resp, err := c.PostForm("https://login.microsoftonline.com/"+tc.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if err != nil || tr.AccessToken == "" {
		t.Fatalf("graph token: %v", err)
	}
	req, _ := http.NewRequest("GET", "https://graph.microsoft.com/v1.0/servicePrincipals?$filter="+url.QueryEscape("displayName eq '"+name+"'"), nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var list struct {
		Value []struct {
			ID    string `json:"id"`
			AppID string `json:"appId"`
		} `json:"value"`
	}
	if err := json.Unmarshal(raw, &list); err != nil || len(list.Value) != 1 || list.Value[0].AppID != directory.ApplianceRPAppID {
		t.Fatalf("service principals named %q: %s", name, raw)
	}
	return list.Value[0].ID
}
