package vault_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// grantARM assigns a built-in role to a principal at scope through
// Resource Manager.
func grantARM(e *armtest.Env, admin, scope, role, principal string) {
	e.T.Helper()
	e.Want(e.Call(admin, "PUT", scope+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
		"roleDefinitionId": role, "principalId": principal}}), http.StatusCreated, "")
}

// dataPlane is an unmodified azsecrets client of the vault as app a.
func dataPlane(e *armtest.Env, tenantID, vaultName string, a armtest.App) *azsecrets.Client {
	e.T.Helper()
	c, err := azsecrets.NewClient("https://"+vaultName+".vault.azure.net", e.Credential(tenantID, a.App.AppID, a.Secret),
		&azsecrets.ClientOptions{ClientOptions: policy.ClientOptions{Transport: e.Client}})
	must(e.T, err)
	return c
}

// noValueIn fails the test when any audit record of the tenant holds one
// of the values.
func noValueIn(e *armtest.Env, tenantID string, values ...string) {
	e.T.Helper()
	recs, err := e.St.ListAudit(e.Ctx, store.AuditQuery{TenantID: tenantID})
	must(e.T, err)
	for _, rec := range recs {
		for _, v := range values {
			if strings.Contains(rec.Detail, v) || strings.Contains(rec.Target, v) || strings.Contains(rec.Action, v) {
				e.T.Errorf("audit record holds a secret's value: %+v", rec)
			}
		}
	}
}

// TestSecretsThroughResourceManager: Microsoft.KeyVault/vaults/secrets with
// armkeyvault's SecretsClient — a PUT writes a version the data plane
// reads, no answer of the control plane holds the value, lists page, a
// PATCH updates in place or (with a value) makes a version — and the
// refusals: Reader, another tenant, a ReadOnly lock, a missing or deleted
// vault, a deleted secret.
func TestSecretsThroughResourceManager(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		ctx := e.Ctx
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/app"
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-sec1"
		sid := vid + "/secrets/db-password"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), http.StatusCreated, "")
		e.Want(e.Call(admin, "PUT", sid, map[string]any{"properties": map[string]any{"value": "v"}}), http.StatusNotFound, "ParentResourceNotFound")
		e.Want(e.Call(admin, "PUT", vid, vaultBody(tid, nil)), http.StatusCreated, "")

		// PUT: 201, then 200 for a new version; never the value back.
		const v1, v2, v3 = "VALUE-one-8f3a", "VALUE-two-77c1", "VALUE-three-d02e"
		r := e.Call(admin, "PUT", sid, map[string]any{"tags": map[string]string{"env": "test"},
			"properties": map[string]any{"value": v1, "contentType": "text/plain", "attributes": map[string]any{"enabled": true}}})
		e.Want(r, http.StatusCreated, "")
		props, _ := r.Doc["properties"].(map[string]any)
		if strings.Contains(string(r.Raw), v1) || props["value"] != nil || r.Doc["id"] != sid || r.Doc["name"] != "db-password" ||
			r.Doc["type"] != "Microsoft.KeyVault/vaults/secrets" || props["secretUri"] != "https://kv-sec1.vault.azure.net/secrets/db-password" ||
			props["contentType"] != "text/plain" || props["attributes"].(map[string]any)["enabled"] != true {
			t.Errorf("created secret %s", r.Raw)
		}
		if tags, _ := r.Doc["tags"].(map[string]any); tags["env"] != "test" {
			t.Errorf("created secret %s", r.Raw)
		}
		first, _ := props["secretUriWithVersion"].(string)
		r = e.Call(admin, "PUT", sid, map[string]any{"properties": map[string]any{"value": v2}})
		e.Want(r, http.StatusOK, "")
		if props, _ := r.Doc["properties"].(map[string]any); props["secretUriWithVersion"] == first || strings.Contains(string(r.Raw), v2) {
			t.Errorf("second version %s", r.Raw)
		}

		// The data plane reads the latest version as a Secrets User.
		user := e.NewApp(tid, "secrets-user", false)
		grantARM(e, admin, vid, rbac.RoleKeyVaultSecretsUser, user.SP.ID)
		got, err := dataPlane(e, tid, "kv-sec1", user).GetSecret(ctx, "db-password", "", nil)
		must(t, err)
		if got.Value == nil || *got.Value != v2 {
			t.Fatalf("data plane reads %v", got.Value)
		}

		// armkeyvault's SecretsClient: Get, List (paged), Update.
		sc, err := armkeyvault.NewSecretsClient(e.Contoso.Tenant.SubscriptionID, e.Credential(tid, e.Contoso.Admin.AppID, e.Contoso.AdminSecret.SecretText), e.ARMOptions())
		must(t, err)
		g, err := sc.Get(ctx, "app", "kv-sec1", "db-password", nil)
		must(t, err)
		if p := g.Properties; p == nil || p.Value != nil || p.Attributes == nil || p.Attributes.Enabled == nil || !*p.Attributes.Enabled ||
			p.Attributes.Created == nil || p.SecretURIWithVersion == nil || !strings.HasPrefix(*p.SecretURIWithVersion, *p.SecretURI+"/") {
			t.Errorf("get %+v", g.Properties)
		}
		for _, n := range []string{"a-one", "b-two"} {
			_, err := sc.CreateOrUpdate(ctx, "app", "kv-sec1", n, armkeyvault.SecretCreateOrUpdateParameters{Properties: &armkeyvault.SecretProperties{Value: to.Ptr("x")}}, nil)
			must(t, err)
		}
		var names []string
		pages := 0
		for pg := sc.NewListPager("app", "kv-sec1", &armkeyvault.SecretsClientListOptions{Top: to.Ptr[int32](1)}); pg.More(); {
			page, err := pg.NextPage(ctx)
			must(t, err)
			pages++
			for _, s := range page.Value {
				if s.Properties.Value != nil {
					t.Errorf("a listed secret has a value")
				}
				names = append(names, *s.Name)
			}
		}
		if strings.Join(names, ",") != "a-one,b-two,db-password" || pages != 3 {
			t.Errorf("listed %v in %d pages", names, pages)
		}
		// Update without a value: the latest version, in place.
		before := *g.Properties.SecretURIWithVersion
		u, err := sc.Update(ctx, "app", "kv-sec1", "db-password", armkeyvault.SecretPatchParameters{Properties: &armkeyvault.SecretPatchProperties{ContentType: to.Ptr("application/x-pw")}}, nil)
		must(t, err)
		if *u.Properties.SecretURIWithVersion != before || *u.Properties.ContentType != "application/x-pw" {
			t.Errorf("update %+v", u.Properties)
		}
		// Update with a value: a new version, the properties kept.
		u, err = sc.Update(ctx, "app", "kv-sec1", "db-password", armkeyvault.SecretPatchParameters{Properties: &armkeyvault.SecretPatchProperties{Value: to.Ptr(v3)}}, nil)
		must(t, err)
		if *u.Properties.SecretURIWithVersion == before || *u.Properties.ContentType != "application/x-pw" || u.Properties.Value != nil {
			t.Errorf("update with a value %+v", u.Properties)
		}
		if got, err := dataPlane(e, tid, "kv-sec1", user).GetSecret(ctx, "db-password", "", nil); err != nil || *got.Value != v3 || *got.ContentType != "application/x-pw" {
			t.Fatalf("data plane after update: %v", err)
		}
		if _, err := sc.Update(ctx, "app", "kv-sec1", "nope", armkeyvault.SecretPatchParameters{Properties: &armkeyvault.SecretPatchProperties{ContentType: to.Ptr("x")}}, nil); !isCode(err, http.StatusNotFound, "ResourceNotFound") {
			t.Errorf("update of a missing secret: %v", err)
		}

		// Bad input.
		e.Want(e.Call(admin, "PUT", vid+"/secrets/bad_name", map[string]any{"properties": map[string]any{"value": "v"}}), http.StatusBadRequest, "BadRequest")
		e.Want(e.Call(admin, "PUT", sid, map[string]any{"properties": map[string]any{"contentType": "x"}}), http.StatusBadRequest, "BadRequest")
		e.Want(e.Call(admin, "PUT", sid, map[string]any{}), http.StatusBadRequest, "BadRequest")
		e.Want(e.Call(admin, "PUT", sid, `{"properties":`), http.StatusBadRequest, "")
		e.Want(e.Call(admin, "PUT", sid, map[string]any{"properties": map[string]any{"value": strings.Repeat("x", 25*1024+1)}}), http.StatusBadRequest, "BadRequest")
		e.Want(e.Call(admin, "DELETE", sid, nil), http.StatusMethodNotAllowed, "MethodNotAllowed")
		e.Want(e.Call(admin, "GET", vid+"/secrets/nope", nil), http.StatusNotFound, "ResourceNotFound")
		// The type takes the vaults' api-versions, and only those.
		e.Want(e.Raw(admin, "GET", sid+"?api-version=2024-11-01", nil), http.StatusOK, "")
		if r := e.Raw(admin, "GET", sid+"?api-version=2099-01-01", nil); r.Status != http.StatusBadRequest || r.Code() != "NoRegisteredProviderFound" ||
			!strings.Contains(r.Message(), "'vaults/secrets'") {
			t.Errorf("unknown api-version: %d %s", r.Status, r.Raw)
		}

		// A Reader reads the metadata (secrets/read) but cannot write; a
		// Contributor writes but cannot read the value on the data plane.
		reader := e.NewApp(tid, "reader", false)
		grantARM(e, admin, rg, rbac.RoleReader, reader.SP.ID)
		rt := e.ARMToken(tid, reader.App.AppID, reader.Secret)
		e.Want(e.Call(rt, "GET", sid, nil), http.StatusOK, "")
		r = e.Call(rt, "PUT", sid, map[string]any{"properties": map[string]any{"value": "reader-value"}})
		e.Want(r, http.StatusForbidden, "AuthorizationFailed")
		if !strings.Contains(r.Message(), "Microsoft.KeyVault/vaults/secrets/write") {
			t.Errorf("refusal %s", r.Message())
		}
		contributor := e.NewApp(tid, "contributor", false)
		grantARM(e, admin, rg, rbac.RoleContributor, contributor.SP.ID)
		ct := e.ARMToken(tid, contributor.App.AppID, contributor.Secret)
		e.Want(e.Call(ct, "PUT", vid+"/secrets/from-contributor", map[string]any{"properties": map[string]any{"value": "contributor-value"}}), http.StatusCreated, "")
		var re *azcore.ResponseError
		if _, err := dataPlane(e, tid, "kv-sec1", contributor).GetSecret(ctx, "from-contributor", "", nil); !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Errorf("a Contributor reads a value on the data plane: %v", err)
		}

		// Another tenant: its token is not taken for this subscription, and
		// its own subscription has no such vault.
		fab := e.AdminToken(e.Fabrikam)
		e.Want(e.Call(fab, "PUT", sid, map[string]any{"properties": map[string]any{"value": "evil"}}), http.StatusUnauthorized, "InvalidAuthenticationTokenTenant")
		e.Want(e.Call(fab, "GET", sid, nil), http.StatusUnauthorized, "InvalidAuthenticationTokenTenant")
		fsub := "/subscriptions/" + e.Fabrikam.Tenant.SubscriptionID + "/resourceGroups/app"
		e.Want(e.Call(fab, "PUT", fsub, map[string]any{"location": "westeurope"}), http.StatusCreated, "")
		e.Want(e.Call(fab, "PUT", fsub+"/providers/Microsoft.KeyVault/vaults/kv-sec1/secrets/db-password", map[string]any{"properties": map[string]any{"value": "evil"}}), http.StatusNotFound, "ParentResourceNotFound")

		// A ReadOnly lock on the group.
		lock := rg + "/providers/Microsoft.Authorization/locks/freeze"
		e.Want(e.Call(admin, "PUT", lock, map[string]any{"properties": map[string]any{"level": "ReadOnly"}}), http.StatusCreated, "")
		e.Want(e.Call(admin, "PUT", sid, map[string]any{"properties": map[string]any{"value": "locked"}}), http.StatusConflict, "ScopeLocked")
		e.Want(e.Call(admin, "PATCH", sid, map[string]any{"properties": map[string]any{"contentType": "locked"}}), http.StatusConflict, "ScopeLocked")
		e.Want(e.Call(admin, "GET", sid, nil), http.StatusOK, "")
		e.Want(e.Call(admin, "DELETE", lock, nil), http.StatusOK, "")

		// A soft-deleted secret's name is not reused, and is not found.
		officer := e.NewApp(tid, "officer", false)
		grantARM(e, admin, vid, rbac.RoleKeyVaultSecretsOfficer, officer.SP.ID)
		_, err = dataPlane(e, tid, "kv-sec1", officer).DeleteSecret(ctx, "a-one", nil)
		must(t, err)
		e.Want(e.Call(admin, "GET", vid+"/secrets/a-one", nil), http.StatusNotFound, "ResourceNotFound")
		e.Want(e.Call(admin, "PUT", vid+"/secrets/a-one", map[string]any{"properties": map[string]any{"value": "again"}}), http.StatusConflict, "Conflict")

		// A deleted vault is no parent.
		e.Want(e.Call(admin, "DELETE", vid, nil), http.StatusOK, "")
		e.Want(e.Call(admin, "GET", sid, nil), http.StatusNotFound, "ParentResourceNotFound")
		e.Want(e.Call(admin, "GET", vid+"/secrets", nil), http.StatusNotFound, "ParentResourceNotFound")

		// Audited as Resource Manager writes, without a value.
		recs, err := e.St.ListAudit(ctx, store.AuditQuery{TenantID: tid})
		must(t, err)
		writes := 0
		for _, rec := range recs {
			if rec.Action == "Microsoft.KeyVault/vaults/secrets/write" && rec.Result == audit.Success && strings.Contains(rec.Detail, "version ") {
				writes++
			}
		}
		if writes < 6 {
			t.Errorf("%d secret writes audited", writes)
		}
		noValueIn(e, tid, v1, v2, v3, "contributor-value", "reader-value")
	})
}

// isCode reports whether err is an ARM error with the status and code.
func isCode(err error, status int, code string) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == status && re.ErrorCode == code
}

// secretTemplate deploys a vault and a secret in it whose value is a
// secureString parameter.
const secretTemplate = `{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
    "vaultName": {"type": "string"},
    "dbPassword": {"type": "secureString"}
  },
  "resources": [
    {"type": "Microsoft.KeyVault/vaults", "apiVersion": "2023-07-01", "name": "[parameters('vaultName')]", "location": "[resourceGroup().location]",
     "properties": {"tenantId": "[subscription().tenantId]", "sku": {"family": "A", "name": "standard"}, "enableRbacAuthorization": true}},
    {"type": "Microsoft.KeyVault/vaults/secrets", "apiVersion": "2023-07-01", "name": "[format('{0}/{1}', parameters('vaultName'), 'db-password')]",
     "dependsOn": ["[resourceId('Microsoft.KeyVault/vaults', parameters('vaultName'))]"],
     "properties": {"value": "[parameters('dbPassword')]", "contentType": "password"}}
  ],
  "outputs": {
    "secretUri": {"type": "string", "value": "[reference(resourceId('Microsoft.KeyVault/vaults/secrets', parameters('vaultName'), 'db-password')).secretUri]"}
  }
}`

// TestSecretDeployedByTemplate: a template with a vault and a secret
// (armresources' DeploymentsClient) deploys both; the value, a
// secureString parameter, is read through the data plane by a Secrets User
// and appears in no answer of Resource Manager and no audit record.
func TestSecretDeployedByTemplate(t *testing.T) {
	armtest.ForEachStore(t, func(t *testing.T, e *armtest.Env) {
		ctx := e.Ctx
		admin := e.AdminToken(e.Contoso)
		tid := e.Contoso.Tenant.ID
		rg := armtest.Sub(e) + "/resourceGroups/deploy"
		e.Want(e.Call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), http.StatusCreated, "")
		var template map[string]any
		must(t, json.Unmarshal([]byte(secretTemplate), &template))
		const password = "P@ss-from-parameter-5a1e"
		dc, err := armresources.NewDeploymentsClient(e.Contoso.Tenant.SubscriptionID, e.Credential(tid, e.Contoso.Admin.AppID, e.Contoso.AdminSecret.SecretText), e.ARMOptions())
		must(t, err)
		poller, err := dc.BeginCreateOrUpdate(ctx, "deploy", "vault-and-secret", armresources.Deployment{Properties: &armresources.DeploymentProperties{
			Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: template,
			Parameters: map[string]any{"vaultName": map[string]any{"value": "kv-dep1"}, "dbPassword": map[string]any{"value": password}}}}, nil)
		must(t, err)
		res, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 20 * time.Millisecond})
		must(t, err)
		if st := res.Properties.ProvisioningState; st == nil || *st != armresources.ProvisioningStateSucceeded {
			t.Fatalf("deployment %v", st)
		}
		out, _ := res.Properties.Outputs.(map[string]any)
		if uri, _ := out["secretUri"].(map[string]any); uri["value"] != "https://kv-dep1.vault.azure.net/secrets/db-password" {
			t.Errorf("outputs %v", out)
		}

		user := e.NewApp(tid, "deployed-secrets-user", false)
		grantARM(e, admin, rg, rbac.RoleKeyVaultSecretsUser, user.SP.ID)
		got, err := dataPlane(e, tid, "kv-dep1", user).GetSecret(ctx, "db-password", "", nil)
		must(t, err)
		if got.Value == nil || *got.Value != password || got.ContentType == nil || *got.ContentType != "password" {
			t.Fatalf("data plane reads %v", got.Value)
		}
		for _, path := range []string{rg + "/providers/Microsoft.Resources/deployments/vault-and-secret",
			rg + "/providers/Microsoft.KeyVault/vaults/kv-dep1/secrets/db-password", rg + "/providers/Microsoft.KeyVault/vaults/kv-dep1/secrets"} {
			r := e.Call(admin, "GET", path, nil)
			e.Want(r, http.StatusOK, "")
			if strings.Contains(string(r.Raw), password) {
				t.Errorf("%s answers the value: %s", path, r.Raw)
			}
		}
		noValueIn(e, tid, password)
	})
}
