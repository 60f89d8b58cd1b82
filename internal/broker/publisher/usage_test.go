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
// (secretless mode: the real ManagedIdentityCredential, its token traded
// at the broker's exchange for the broker's assertion, which the
// per-installation application's federated credential trusts; the real
// ClientAssertionCredential), sends usage events to a queue in the
// publisher's tenant, which the shared group (where the broker put the
// installation's principal) may send to.
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
			// The installed software runs as the managed group's
			// user-assigned identity (a workload of the customer's tenant).
			if cfg.ExchangeEndpoint != w.issuer+"/exchange" || cfg.Installation != appID {
				t.Fatalf("federated configuration %+v", cfg)
			}
			cred, err = publisher.InstallationCredential(cfg, w.installedSoftware(t, appID),
				&publisher.InstallationCredentialOptions{ClientOptions: w.opts, ExchangeClient: w.issuerSrv.Client()})
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
// credential trusts the publisher's broker as issuer (a non-Entra OpenID
// issuer, which Entra allows; subject AccessSubject of the installation),
// and grants it Key Vault Secrets User on the managed vault. The broker
// presents its own assertion (signed through Key Vault) as the client
// assertion and reads the vault: no secret, and no listTokens. The old
// design, an identity trusting the publisher tenant's Entra issuer, is
// refused as Entra refuses it (AADSTS700236).
func TestPublisherReadsManagedVaultThroughFederatedIdentity(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	b := w.broker(t, nil)
	sub := "/subscriptions/" + w.pub.SubscriptionID
	if c, _ := w.arm(t, w.pubCred, "PUT", sub+"/resourceGroups/offers", map[string]any{"location": "westeurope"}); c/100 != 2 {
		t.Fatal("offers group")
	}
	// The issuer of the publisher tenant's own tokens, as an earlier
	// design trusted it (its tenant's v2 issuer at the authority it signs
	// in through).
	entraIssuer := strings.TrimRight(w.authority, "/") + "/" + w.pub.TenantID + "/v2.0"
	fic := func(name, issuer, subject string) map[string]any {
		return map[string]any{"name": name, "federatedCredentials": []any{map[string]any{
			"name": "publisher", "issuer": issuer, "subject": subject, "audiences": []any{publisher.TokenExchangeAudience}}}}
	}
	spec := map[string]any{
		"vaults": []any{map[string]any{"name": "kv{uniqueSuffix}"}},
		"userAssignedIdentities": []any{
			fic("publisher-reader", b.IssuerURL(), publisher.AccessSubjectTemplate),
			fic("old-design", entraIssuer, w.pub.Admin.ServicePrincipalID),
		},
		"roleAssignments": []any{
			map[string]any{"role": "Key Vault Secrets User", "principal": "identity:publisher-reader", "scope": "vault:kv{uniqueSuffix}"},
			map[string]any{"role": "Key Vault Secrets User", "principal": "identity:old-design", "scope": "vault:kv{uniqueSuffix}"},
			map[string]any{"role": "Key Vault Secrets Officer", "principal": "applicationIdentity", "scope": "vault:kv{uniqueSuffix}"},
		},
	}
	def := sub + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/reader"
	if c, doc := w.arm(t, w.pubCred, "PUT", def, map[string]any{"location": "westeurope", "properties": map[string]any{
		"lockLevel":      "ReadOnly",
		"authorizations": []any{map[string]any{"principalId": w.pub.Admin.ServicePrincipalID, "roleDefinitionId": "b24988ac-6180-42a0-ab88-20f7382dd24c"}},
		"deploymentSpec": spec}}); c/100 != 2 {
		t.Fatalf("definition: %d %v", c, doc)
	}
	w.publishOffer(t, def)
	appID, _ := w.install(t, "reader", "fedreader")
	suffix := publisher.UniqueSuffix(appID)

	// The application writes something into its vault (with its own
	// identity, as the installed software would).
	kv := w.managedVault(t, appID)
	if _, err := kv.SetSecret(ctx, "app-setting", azsecretsSetParams("blue"), nil); err != nil {
		t.Fatal(err)
	}

	// The identities' client ids, read through ARM by the publisher (its
	// delegated role on the managed resource group).
	mrg := "/subscriptions/" + w.cust.SubscriptionID + "/resourceGroups/mrg-fedreader"
	clientID := func(name string) string {
		c, doc := w.arm(t, w.pubCred, "GET", mrg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"+name, nil)
		if c != 200 {
			t.Fatalf("identity %s: %d %v", name, c, doc)
		}
		return doc["properties"].(map[string]any)["clientId"].(string)
	}
	credOpts := &azidentity.ClientAssertionCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.hc,
		Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: w.authority}}, DisableInstanceDiscovery: true}

	// The broker's own assertion, for this installation's identity.
	cred, err := azidentity.NewClientAssertionCredential(w.cust.TenantID, clientID("publisher-reader"),
		func(ctx context.Context) (string, error) { return b.AccessAssertion(ctx, appID) }, credOpts)
	must(t, err)
	reader, err := azsecretsClient("https://kv"+suffix+".vault.azure.net", cred, w.opts)
	must(t, err)
	got, err := reader.GetSecret(ctx, "app-setting", "", nil)
	if err != nil || *got.Value != "blue" {
		t.Fatalf("the publisher's federated read of the managed vault: %v", err)
	}
	// Another installation's subject does not fit this identity.
	other, err := azidentity.NewClientAssertionCredential(w.cust.TenantID, clientID("publisher-reader"),
		func(ctx context.Context) (string, error) {
			return b.AccessAssertion(ctx, strings.Replace(appID, "fedreader", "other", 1))
		}, credOpts)
	must(t, err)
	if _, err := other.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}); !strings.Contains(fmt.Sprint(err), "AADSTS700213") {
		t.Errorf("another installation's assertion: %v", err)
	}

	// The old design: the identity trusts the publisher tenant's Entra
	// issuer. Created as Entra creates it, refused at the exchange.
	own, err := w.pubCred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{publisher.TokenExchangeAudience + "/.default"}})
	must(t, err)
	old, err := azidentity.NewClientAssertionCredential(w.cust.TenantID, clientID("old-design"),
		func(context.Context) (string, error) { return own.Token, nil }, credOpts)
	must(t, err)
	if _, err := old.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}); !strings.Contains(fmt.Sprint(err), "AADSTS700236") {
		t.Errorf("the publisher tenant's Entra issuer on the customer's identity: %v, want AADSTS700236", err)
	}
}

func azsecretsSetParams(v string) azsecrets.SetSecretParameters {
	return azsecrets.SetSecretParameters{Value: &v}
}

func azsecretsClient(url string, cred azcore.TokenCredential, opts policy.ClientOptions) (*azsecrets.Client, error) {
	return azsecrets.NewClient(url, cred, &azsecrets.ClientOptions{ClientOptions: opts})
}

// installedSoftware is the installed application's managed identity: a
// workload of the customer's tenant running as the managed group's
// user-assigned identity, through the real ManagedIdentityCredential (App
// Service's identity endpoint protocol).
func (w *world) installedSoftware(t testing.TB, appID string) azcore.TokenCredential {
	t.Helper()
	mrg := "/subscriptions/" + w.cust.SubscriptionID + "/resourceGroups/mrg-" + appID[strings.LastIndex(appID, "/")+1:]
	c, doc := w.arm(t, w.custCred, "GET", mrg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"+installationIdentity, nil)
	if c != 200 {
		t.Fatalf("the installation's identity: %d %v", c, doc)
	}
	props := doc["properties"].(map[string]any)
	return w.workloadAs(t, props["principalId"].(string), props["clientId"].(string))
}
