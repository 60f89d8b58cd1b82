package publisher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

// TestUsageEventsReachThePublisher is the seed's "emit usage data to the
// publisher": the installed application, with the credential the broker
// delivered into its vault (secret mode) or with its own managed identity
// federated to the per-installation application (secretless mode), sends
// usage events to a queue in the publisher's tenant, which the shared
// group (where the broker put the installation's principal) may send to.
func TestUsageEventsReachThePublisher(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	b := w.broker(t, nil)

	// The publisher's usage queue; the shared-resources group sends to it.
	sub := "/subscriptions/" + w.pub.SubscriptionID
	ns := sub + "/resourceGroups/usage/providers/Microsoft.ServiceBus/namespaces/usage-" + strings.ToLower(w.pub.Name)
	for _, put := range []struct {
		path string
		body any
	}{
		{sub + "/resourceGroups/usage", map[string]any{"location": "westeurope"}},
		{ns, map[string]any{"location": "westeurope"}},
		{ns + "/queues/events", map[string]any{"properties": map[string]any{}}},
		{ns + "/queues/events/providers/Microsoft.Authorization/roleAssignments/3f1c2b8a-0d4e-4a7b-9c6d-2e5f8a1b3c4d", map[string]any{"properties": map[string]any{
			"roleDefinitionId": sub + "/providers/Microsoft.Authorization/roleDefinitions/69a216fc-b8fb-44d8-bc22-1f3c2cd27a39", // Data Sender
			"principalId":      w.groupID, "principalType": "Group"}}},
		{ns + "/providers/Microsoft.Authorization/roleAssignments/8d2e4f6a-1b3c-4d5e-8f7a-9b0c1d2e3f4a", map[string]any{"properties": map[string]any{
			"roleDefinitionId": sub + "/providers/Microsoft.Authorization/roleDefinitions/090c5cfd-751d-490a-894a-3ce6f1109419", // Data Owner
			"principalId":      w.pub.Admin.ServicePrincipalID, "principalType": "ServicePrincipal"}}},
	} {
		if c, doc := w.arm(t, w.pubCred, "PUT", put.path, put.body); c/100 != 2 {
			t.Fatalf("PUT %s: %d %v", put.path, c, doc)
		}
	}
	queue := "https://usage-" + strings.ToLower(w.pub.Name) + ".servicebus.windows.net/events/messages"
	send := func(cred azcore.TokenCredential, body string) int {
		t.Helper()
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://servicebus.azure.net/.default"}})
		must(t, err)
		req, _ := http.NewRequest(http.MethodPost, queue, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := w.hc.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	received := func() string {
		t.Helper()
		tok, err := w.pubCred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://servicebus.azure.net/.default"}})
		must(t, err)
		req, _ := http.NewRequest(http.MethodDelete, queue+"/head?timeout=5", nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := w.hc.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	for _, mode := range []string{publisher.ModeSecret, publisher.ModeFederated} {
		w.publish(t, "usage-"+mode, mode)
		appID, _ := w.install(t, "usage-"+mode, "u"+mode)
		waitFor(t, "registration", func() bool {
			in := w.installation(t, b, appID)
			return in != nil && in.Status == "registered"
		})
		secrets := w.vaultSecrets(t, appID)
		var cfg publisher.VaultConfig
		must(t, json.Unmarshal([]byte(secrets[publisher.DefaultConfigName]), &cfg))
		var cred azcore.TokenCredential
		var err error
		if mode == publisher.ModeSecret {
			cred, err = azclient.NewClientSecretCredential(w.authority, cfg.TenantID, cfg.ClientID, secrets[cfg.SecretName], w.opts)
			must(t, err)
		} else {
			// The application's own managed identity token (what the
			// installed application gets from its identity endpoint; the
			// test takes it through listTokens) is the assertion.
			c, doc := w.arm(t, w.pubCred, "POST", appID+"/listTokens", map[string]any{"authorizationAudience": publisher.TokenExchangeAudience})
			if c != 200 {
				t.Fatalf("listTokens: %d %v", c, doc)
			}
			assertion := doc["value"].([]any)[0].(map[string]any)["access_token"].(string)
			cred, err = azidentity.NewClientAssertionCredential(cfg.TenantID, cfg.ClientID,
				func(context.Context) (string, error) { return assertion, nil },
				&azidentity.ClientAssertionCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.hc,
					Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: w.authority}}, DisableInstanceDiscovery: true})
			must(t, err)
		}
		event := fmt.Sprintf(`{"installation":%q,"meter":"api-calls","quantity":42}`, appID)
		if status := send(cred, event); status != http.StatusCreated {
			t.Fatalf("%s mode: usage event refused: %d", mode, status)
		}
		if got := received(); got != event {
			t.Fatalf("%s mode: the publisher received %q", mode, got)
		}
	}
}

// TestPublisherReadsManagedVaultThroughFederatedIdentity is seed 001's
// second path into the customer's data plane: the deployment spec puts a
// user-assigned identity in the managed resource group whose federated
// credential trusts the publisher tenant as issuer (subject: the broker's
// own principal), and grants it Key Vault Secrets User on the managed
// vault. The broker exchanges a token of its own tenant for that
// identity's token in the customer tenant and reads the vault: no secret,
// and no listTokens.
func TestPublisherReadsManagedVaultThroughFederatedIdentity(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	sub := "/subscriptions/" + w.pub.SubscriptionID
	if c, _ := w.arm(t, w.pubCred, "PUT", sub+"/resourceGroups/offers", map[string]any{"location": "westeurope"}); c/100 != 2 {
		t.Fatal("offers group")
	}
	// The issuer of the broker's own tokens: its tenant's v2 issuer at
	// the authority it signs in through (here the server's listen address;
	// https://login.microsoftonline.com in a deployment reached by Azure's
	// names).
	issuer := strings.TrimRight(w.authority, "/") + "/" + w.pub.TenantID + "/v2.0"
	spec := map[string]any{
		"vaults": []any{map[string]any{"name": "kv{uniqueSuffix}"}},
		"userAssignedIdentities": []any{map[string]any{"name": "publisher-reader", "federatedCredentials": []any{map[string]any{
			"name": "publisher", "issuer": issuer, "subject": w.pub.Admin.ServicePrincipalID, "audiences": []any{publisher.TokenExchangeAudience}}}}},
		"roleAssignments": []any{
			map[string]any{"role": "Key Vault Secrets User", "principal": "identity:publisher-reader", "scope": "vault:kv{uniqueSuffix}"},
			map[string]any{"role": "Key Vault Secrets Officer", "principal": "applicationIdentity", "scope": "vault:kv{uniqueSuffix}"},
		},
	}
	def := sub + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/reader"
	if c, doc := w.arm(t, w.pubCred, "PUT", def, map[string]any{"location": "westeurope", "properties": map[string]any{
		"lockLevel": "ReadOnly", "isPublishedToMarketplace": true,
		"authorizations": []any{map[string]any{"principalId": w.pub.Admin.ServicePrincipalID, "roleDefinitionId": "b24988ac-6180-42a0-ab88-20f7382dd24c"}},
		"deploymentSpec": spec}}); c/100 != 2 {
		t.Fatalf("definition: %d %v", c, doc)
	}
	appID, _ := w.install(t, "reader", "fedreader")
	suffix := publisher.UniqueSuffix(appID)

	// The application writes something into its vault (with its own
	// identity, as the installed software would).
	kv := w.managedVault(t, appID)
	if _, err := kv.SetSecret(ctx, "app-setting", azsecretsSetParams("blue"), nil); err != nil {
		t.Fatal(err)
	}

	// The identity's client id, read through ARM by the publisher (its
	// delegated role on the managed resource group).
	mrg := "/subscriptions/" + w.cust.SubscriptionID + "/resourceGroups/mrg-fedreader"
	c, doc := w.arm(t, w.pubCred, "GET", mrg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/publisher-reader", nil)
	if c != 200 {
		t.Fatalf("identity: %d %v", c, doc)
	}
	clientID := doc["properties"].(map[string]any)["clientId"].(string)

	// The broker's own token for the exchange audience, from its tenant.
	own, err := w.pubCred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{publisher.TokenExchangeAudience + "/.default"}})
	must(t, err)
	cred, err := azidentity.NewClientAssertionCredential(w.cust.TenantID, clientID,
		func(context.Context) (string, error) { return own.Token, nil },
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.hc,
			Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: w.authority}}, DisableInstanceDiscovery: true})
	must(t, err)
	reader, err := azsecretsClient("https://kv"+suffix+".vault.azure.net", cred, w.opts)
	must(t, err)
	got, err := reader.GetSecret(ctx, "app-setting", "", nil)
	if err != nil || *got.Value != "blue" {
		t.Fatalf("the publisher's federated read of the managed vault: %v", err)
	}
}

func azsecretsSetParams(v string) azsecrets.SetSecretParameters {
	return azsecrets.SetSecretParameters{Value: &v}
}

func azsecretsClient(url string, cred azcore.TokenCredential, opts policy.ClientOptions) (*azsecrets.Client, error) {
	return azsecrets.NewClient(url, cred, &azsecrets.ClientOptions{ClientOptions: opts})
}
