package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// kvRefTemplate takes a securestring and says only its length.
const kvRefTemplate = `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0",
 "parameters": {"pw": {"type": "securestring"}, "plain": {"type": "string", "defaultValue": "x"}}, "resources": [],
 "outputs": {"pwLength": {"type": "int", "value": "[length(parameters('pw'))]"}}}`

// TestDeploymentKeyVaultReference: a deployment parameter given as a Key
// Vault reference takes the secret's value, with the real armresources
// and armkeyvault clients, only when the vault is enabled for template
// deployment and the deployer may perform
// Microsoft.KeyVault/vaults/deploy/action on it; Azure's error codes
// otherwise; the value is in no record (deployment, operations, audit);
// another tenant's deployer learns nothing of the vault.
func TestDeploymentKeyVaultReference(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testDeploymentKeyVaultReference(t, server.Config{}) })
	t.Run("postgres", func(t *testing.T) {
		testDeploymentKeyVaultReference(t, server.Config{StoreURL: storetest.PostgresSchemaDSN(t)})
	})
}

func testDeploymentKeyVaultReference(t *testing.T, cfg server.Config) {
	ctx := context.Background()
	r := start(t, cfg)
	pub := r.createTenant(t, "kvrefpub")
	attacker := r.createTenant(t, "kvrefatk")
	c := r.client()
	opts := &azarm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: c, Cloud: cloud.AzurePublic, Retry: policy.RetryOptions{MaxRetries: -1}}}
	credOf := func(tc tenantCreated) azcore.TokenCredential {
		cred, err := azidentity.NewClientSecretCredential(tc.TenantID, tc.Admin.ClientID, tc.Admin.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: c}})
		if err != nil {
			t.Fatal(err)
		}
		return cred
	}
	pubCred, atkCred := credOf(pub), credOf(attacker)
	groups := func(tc tenantCreated, cred azcore.TokenCredential, name string) {
		gc, err := armresources.NewResourceGroupsClient(tc.SubscriptionID, cred, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gc.CreateOrUpdate(ctx, name, armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	groups(pub, pubCred, "secrets")
	groups(attacker, atkCred, "loot")

	// The publisher's vault, through the real armkeyvault client.
	vc, err := armkeyvault.NewVaultsClient(pub.SubscriptionID, pubCred, opts)
	if err != nil {
		t.Fatal(err)
	}
	vp, err := vc.BeginCreateOrUpdate(ctx, "secrets", "kvref-pub-01", armkeyvault.VaultCreateOrUpdateParameters{Location: to.Ptr("westeurope"),
		Properties: &armkeyvault.VaultProperties{TenantID: to.Ptr(pub.TenantID), SKU: &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNameStandard)},
			EnableRbacAuthorization: to.Ptr(true)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vault, err := vp.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	vaultID := *vault.ID
	if err := r.srv.Store().CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: pub.TenantID, ID: "2c4f7a1e-5b3d-4e6f-8a9b-0c1d2e3f4a5b",
		Scope: vaultID, RoleDefinitionID: rbac.RoleKeyVaultSecretsOfficer, PrincipalID: pub.Admin.ServicePrincipalID,
		PrincipalType: store.PrincipalServicePrincipal, CreatedOn: time.Now()}); err != nil {
		t.Fatal(err)
	}
	const secret = "Sup3r-s3cret-DB-pw!"
	kv, err := azsecrets.NewClient("https://kvref-pub-01.vault.azure.net", pubCred, &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: c}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.SetSecret(ctx, "dbpw", azsecrets.SetSecretParameters{Value: to.Ptr(secret)}, nil); err != nil {
		t.Fatal(err)
	}

	ref := func(id, name string) map[string]any {
		return map[string]any{"reference": map[string]any{"keyVault": map[string]any{"id": id}, "secretName": name}}
	}
	deploy := func(tc tenantCreated, cred azcore.TokenCredential, rg, name string, params map[string]any) (armresources.DeploymentExtended, error) {
		dc, err := armresources.NewDeploymentsClient(tc.SubscriptionID, cred, opts)
		if err != nil {
			t.Fatal(err)
		}
		var tmpl map[string]any
		if err := json.Unmarshal([]byte(kvRefTemplate), &tmpl); err != nil {
			t.Fatal(err)
		}
		p, err := dc.BeginCreateOrUpdate(ctx, rg, name, armresources.Deployment{Properties: &armresources.DeploymentProperties{
			Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: tmpl, Parameters: params}}, nil)
		if err != nil {
			return armresources.DeploymentExtended{}, err
		}
		res, err := p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 20 * time.Millisecond})
		return res.DeploymentExtended, err
	}
	wantCode := func(err error, code string) {
		t.Helper()
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 400 || re.ErrorCode != code {
			t.Fatalf("got %v, want 400 %s", err, code)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("the error shows the secret: %v", err)
		}
	}

	// A vault made without enabledForTemplateDeployment: every reference
	// is refused as Azure refuses it for such a vault.
	_, err = deploy(pub, pubCred, "secrets", "off", map[string]any{"pw": ref(vaultID, "dbpw")})
	wantCode(err, "KeyVaultParameterReferenceSecretRetrieveFailed")
	// Turned on with the SDK's Update (a PATCH that names only the switch).
	upd, err := vc.Update(ctx, "secrets", "kvref-pub-01", armkeyvault.VaultPatchParameters{
		Properties: &armkeyvault.VaultPatchProperties{EnabledForTemplateDeployment: to.Ptr(true)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := upd.Properties; p == nil || p.EnabledForTemplateDeployment == nil || !*p.EnabledForTemplateDeployment {
		t.Fatalf("the vault after the update: %+v", upd.Properties)
	}

	// The publisher may deploy from its vault: the secret arrives.
	got, err := deploy(pub, pubCred, "secrets", "on", map[string]any{"pw": ref(vaultID, "dbpw")})
	if err != nil {
		t.Fatal(err)
	}
	outs, _ := got.Properties.Outputs.(map[string]any)
	if l, _ := outs["pwLength"].(map[string]any); l == nil || l["value"] != float64(len(secret)) {
		t.Fatalf("outputs %v", outs)
	}
	pw, _ := got.Properties.Parameters.(map[string]any)["pw"].(map[string]any)
	if _, shown := pw["value"]; shown || !strings.EqualFold(pw["type"].(string), "SecureString") {
		t.Errorf("the secure parameter as shown: %v", pw)
	}
	// Nested in the record? Read everything the customer can read.
	for _, path := range []string{"/resourceGroups/secrets/providers/Microsoft.Resources/deployments/on",
		"/resourceGroups/secrets/providers/Microsoft.Resources/deployments/on/operations",
		"/resourceGroups/secrets/providers/Microsoft.Resources/deployments"} {
		body := armGet(t, c, pub, "/subscriptions/"+pub.SubscriptionID+path)
		if strings.Contains(body, secret) {
			t.Errorf("%s shows the secret", path)
		}
	}

	// Azure's errors: a missing secret, a missing vault, a string parameter.
	_, err = deploy(pub, pubCred, "secrets", "nosecret", map[string]any{"pw": ref(vaultID, "nope")})
	wantCode(err, "KeyVaultParameterReferenceSecretRetrieveFailed")
	ghost := strings.Replace(vaultID, "kvref-pub-01", "kvref-ghost-01", 1)
	_, err = deploy(pub, pubCred, "secrets", "novault", map[string]any{"pw": ref(ghost, "dbpw")})
	wantCode(err, "KeyVaultParameterReferenceNotFound")
	_, err = deploy(pub, pubCred, "secrets", "plain", map[string]any{"pw": map[string]any{"value": "v"}, "plain": ref(vaultID, "dbpw")})
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || strings.Contains(err.Error(), secret) {
		t.Fatalf("a string parameter by reference: %v", err)
	}

	// The attacker names the publisher's vault from its own group: no
	// deploy/action there, so AuthorizationFailed; and a vault that does
	// not exist in the publisher's subscription answers the same.
	_, err = deploy(attacker, atkCred, "loot", "steal", map[string]any{"pw": ref(vaultID, "dbpw")})
	wantCode(err, "KeyVaultParameterReferenceAuthorizationFailed")
	_, err = deploy(attacker, atkCred, "loot", "probe", map[string]any{"pw": ref(ghost, "dbpw")})
	wantCode(err, "KeyVaultParameterReferenceAuthorizationFailed")

	// No record of the audit log holds the value.
	recs, err := r.srv.Store().ListAudit(ctx, store.AuditQuery{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	deployUses := 0
	for _, rec := range recs {
		if strings.Contains(rec.Detail+rec.Target+rec.Action, secret) {
			t.Errorf("audit record shows the secret: %+v", rec)
		}
		if rec.Action == "Microsoft.KeyVault/vaults/deploy/action" && rec.Actor == pub.Admin.ServicePrincipalID {
			deployUses++
		}
	}
	if deployUses < 2 {
		t.Errorf("the publisher's uses of its vault by deployments are not audited (%d)", deployUses)
	}
}

// armGet reads an ARM path as the tenant's administrator and returns the body.
func armGet(t *testing.T, c *http.Client, tc tenantCreated, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://management.azure.com"+path+"?api-version=2021-04-01", nil)
	req.Header.Set("Authorization", "Bearer "+armToken(t, c, tc))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}
