package vault_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// TestRevocationReachesIssuedTokens is continuous access evaluation: a
// customer deletes the service principal of a provider it had let in.
// The provider's token, issued before, is refused on its very next use
// with a claims challenge; azsecrets (azcore) answers it by asking for a
// new token with those claims, which the token service refuses, so the
// read fails — no waiting for the old token to expire.
func TestRevocationReachesIssuedTokens(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := t.Context()
		customer := e.fabrikam.Tenant.ID
		v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: customer, Name: "caevault"})
		must(t, err)
		owner := e.newApp(t, customer, "owner", false)
		e.grantAll(t, v, owner.spID)
		_, err = e.secrets(t, "https://caevault.vault.azure.net", e.credential(t, customer, owner)).
			SetSecret(ctx, "shared", azsecrets.SetSecretParameters{Value: to.Ptr("v1")}, nil)
		must(t, err)

		provider := e.newApp(t, e.contoso.Tenant.ID, "provider", true)
		sp, err := e.dir.CreateServicePrincipal(ctx, customer, provider.appID)
		must(t, err)
		e.assign(t, customer, sp.ID, "4633458b-17de-408a-b874-0445c86b69e6", v.ResourceID) // Key Vault Secrets User
		cred := e.credential(t, customer, provider)
		client := e.secrets(t, "https://caevault.vault.azure.net", cred)
		if _, err := client.GetSecret(ctx, "shared", "", nil); err != nil {
			t.Fatalf("provider read before revocation: %v", err)
		}
		tok, err := cred.GetToken(ctx, policyScope("https://vault.azure.net/.default"))
		must(t, err)

		must(t, e.dir.DeleteServicePrincipal(ctx, customer, sp.ID))

		// The token issued before is refused at once, with the challenge.
		req, err := http.NewRequest("GET", "https://caevault.vault.azure.net/secrets/shared?api-version=7.5", nil)
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := e.client.Do(req)
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		challenge := resp.Header.Get("WWW-Authenticate")
		m := regexp.MustCompile(`claims="([^"]+)"`).FindStringSubmatch(challenge)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, `error="insufficient_claims"`) || m == nil {
			t.Fatalf("revoked token: %d %q %s", resp.StatusCode, challenge, body)
		}
		claims, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil || !strings.Contains(string(claims), `"nbf":{"essential":true`) {
			t.Fatalf("claims = %q, %v", claims, err)
		}
		// The unmodified client follows the challenge and is refused a
		// new token: the read fails on its next attempt.
		if _, err := client.GetSecret(ctx, "shared", "", nil); err == nil || !strings.Contains(err.Error(), "700016") {
			t.Fatalf("provider read after revocation: %v", err)
		}
	})
}
