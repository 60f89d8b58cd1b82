package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// TestManagedAppRegistrationCall: a marketplace install whose definition's
// spec has registration.endpoint makes the cloud POST the registration to
// it, after the Accepted and Succeeded notifications, with the bootstrap
// secret read from the publisher's vault at send time as
// "Authorization: Bootstrap {secret}"; the outbox never holds the value.
// A bootstrap secret in a vault of another tenant fails the install.
func TestManagedAppRegistrationCall(t *testing.T) {
	r := start(t, server.Config{})
	ctx := context.Background()
	pub := r.createTenant(t, "regpub")
	cust := r.createTenant(t, "regcust")
	c := r.client()
	op := azclient.NewOperator("https://"+r.addr, r.srv.Operator().Key, c)

	// The publisher keeps the bootstrap secret in its own vault.
	const bootstrap = "b00tstr4p-VALUE-42"
	v, err := r.srv.Vaults().CreateVault(ctx, vault.VaultSpec{TenantID: pub.TenantID, Name: "pubboot-kv", ResourceGroup: "secrets"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Store().CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: pub.TenantID, ID: "0b7c6a5e-4d3c-4b2a-9f1e-0d9c8b7a6f5e",
		Scope: v.ResourceID, RoleDefinitionID: rbac.RoleKeyVaultSecretsOfficer, PrincipalID: pub.Admin.ServicePrincipalID,
		PrincipalType: store.PrincipalServicePrincipal, CreatedOn: time.Now()}); err != nil {
		t.Fatal(err)
	}
	cred, err := azidentity.NewClientSecretCredential(pub.TenantID, pub.Admin.ClientID, pub.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: c}})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := azsecrets.NewClient("https://pubboot-kv.vault.azure.net", cred, &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: c}})
	if err != nil {
		t.Fatal(err)
	}
	value := bootstrap
	if _, err := kv.SetSecret(ctx, "bootstrap", azsecrets.SetSecretParameters{Value: &value}, nil); err != nil {
		t.Fatal(err)
	}
	// A vault of the customer's, which a publisher's definition must not use.
	if _, err := r.srv.Vaults().CreateVault(ctx, vault.VaultSpec{TenantID: cust.TenantID, Name: "custboot-kv", ResourceGroup: "secrets"}); err != nil {
		t.Fatal(err)
	}

	type hookCall struct {
		path, auth, contentType string
		body                    map[string]any
	}
	var mu sync.Mutex
	var calls []hookCall
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var doc map[string]any
		_ = json.Unmarshal(b, &doc)
		mu.Lock()
		calls = append(calls, hookCall{req.URL.Path, req.Header.Get("Authorization"), req.Header.Get("Content-Type"), doc})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	call := func(tc tenantCreated, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://management.azure.com"+path+"?api-version="+testenv.ARMAPIVersion(path), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+armToken(t, c, tc))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var doc map[string]any
		_ = json.Unmarshal(b, &doc)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode, doc
	}
	psub, csub := "/subscriptions/"+pub.SubscriptionID, "/subscriptions/"+cust.SubscriptionID
	call(pub, "PUT", psub+"/resourceGroups/offers", `{"location":"westeurope"}`)
	call(cust, "PUT", csub+"/resourceGroups/apps", `{"location":"westeurope"}`)
	publish := func(name, secretURI string) string {
		def := psub + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/" + name
		call(pub, "PUT", def, `{"location":"westeurope","properties":{"lockLevel":"ReadOnly",`+
			`"notificationPolicy":{"notificationEndpoints":[{"uri":"`+hook.URL+`/hooks"}]},`+
			`"deploymentSpec":{"vaults":[{"name":"kv{uniqueSuffix}"}],"registration":{"endpoint":"`+hook.URL+`/register","credentialMode":"secret",`+
			`"vault":"kv{uniqueSuffix}","bootstrapSecret":"`+secretURI+`"}}}}`)
		// The offer is the operator's step, as Partner Center's is in Azure.
		if _, err := op.PublishOffer(ctx, def); err != nil {
			t.Fatalf("publishing %s: %v", def, err)
		}
		return def
	}
	install := func(product, name string) (string, map[string]any) {
		appID := csub + "/resourceGroups/apps/providers/Microsoft.Solutions/applications/" + name
		_, doc := call(cust, "PUT", appID, `{"location":"westeurope","kind":"MarketPlace","identity":{"type":"SystemAssigned"},`+
			`"plan":{"name":"std","publisher":"`+pub.Domain+`","product":"`+product+`","version":"1.0"},`+
			`"properties":{"managedResourceGroupId":"`+csub+`/resourceGroups/mrg-`+name+`"}}`)
		return appID, doc
	}

	publish("srb", "https://pubboot-kv.vault.azure.net/secrets/bootstrap")
	appID, app := install("srb", "srb1")
	props, _ := app["properties"].(map[string]any)
	ident, _ := app["identity"].(map[string]any)
	if props["provisioningState"] != "Succeeded" || ident["principalId"] == nil {
		t.Fatalf("install: %v", app)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d calls in 30 s, want 3", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	got := append([]hookCall(nil), calls...)
	mu.Unlock()
	if got[0].path != "/hooks/resource" || got[1].path != "/hooks/resource" || got[2].path != "/register" ||
		got[0].body["provisioningState"] != "Accepted" || got[1].body["provisioningState"] != "Succeeded" {
		t.Fatalf("calls in order %+v: want Accepted, Succeeded, then the registration", got)
	}
	for _, n := range got[:2] {
		if n.auth != "" {
			t.Errorf("a lifecycle notification carries Authorization %q", n.auth)
		}
	}
	reg := got[2]
	if reg.auth != "Bootstrap "+bootstrap || reg.contentType != "application/json" {
		t.Errorf("registration headers: Authorization %q Content-Type %q", reg.auth, reg.contentType)
	}
	plan, _ := reg.body["plan"].(map[string]any)
	if reg.body["applicationId"] != appID || reg.body["customerTenantId"] != cust.TenantID ||
		reg.body["managedResourceGroupId"] != csub+"/resourceGroups/mrg-srb1" || reg.body["identityPrincipalId"] != ident["principalId"] ||
		plan["product"] != "srb" || reg.body["eventTime"] == nil {
		t.Errorf("registration body %v", reg.body)
	}
	if _, err := time.Parse(time.RFC3339, reg.body["eventTime"].(string)); err != nil {
		t.Errorf("eventTime: %v", err)
	}
	// The outbox holds the reference, never the value.
	ms, err := r.srv.Store().ListOutbox(ctx, store.OutboxQuery{TenantID: pub.TenantID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	refs := 0
	for _, m := range ms {
		if strings.Contains(string(m.Body), bootstrap) || strings.Contains(m.AuthRef, bootstrap) || strings.Contains(m.LastError, bootstrap) {
			t.Errorf("the outbox holds the secret: %+v", m)
		}
		if m.AuthRef != "" {
			refs++
			if m.State != store.OutboxDelivered {
				t.Errorf("registration message %s, want delivered", m.State)
			}
		}
	}
	if refs != 1 {
		t.Errorf("%d registration messages, want 1", refs)
	}

	// A bootstrap secret in the customer's vault: the install fails.
	publish("srb-bad", "https://custboot-kv.vault.azure.net/secrets/bootstrap")
	_, bad := install("srb-bad", "srb2")
	bprops, _ := bad["properties"].(map[string]any)
	raw, _ := json.Marshal(bad)
	if bprops["provisioningState"] != "Failed" || !strings.Contains(string(raw), "InvalidBootstrapSecret") || !strings.Contains(string(raw), "publisher") {
		t.Errorf("install with another tenant's vault: %s", raw)
	}
}
