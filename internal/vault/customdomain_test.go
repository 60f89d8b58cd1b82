package vault_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// resourceApp registers, in tenantID, an application whose identifier
// URI is uri, so that the token service mints tokens with that audience.
func (e *env) resourceApp(t *testing.T, tenantID, uri string) {
	t.Helper()
	a, err := e.dir.CreateApplication(e.ctx, tenantID, directory.Application{DisplayName: uri, IdentifierURIs: []string{uri}})
	must(t, err)
	_, err = e.dir.CreateServicePrincipal(e.ctx, tenantID, a.AppID)
	must(t, err)
}

// TestCustomDomainAudience: a vault reached as {vault}.vault.{domain} is
// the resource https://vault.{domain}: its 401 challenge names that
// resource, a token for it is accepted (and Key Vault's own audiences
// still are), and a token for the same vault under another domain, or for
// another resource, is refused with Key Vault's 401.
func TestCustomDomainAudience(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	ctx := t.Context()
	tid := e.contoso.Tenant.ID
	v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "domvault"})
	must(t, err)
	owner := e.newApp(t, tid, "owner", false)
	e.grantAll(t, v, owner.spID)
	// The secret is set through Key Vault's default name, read back below
	// through the custom domain.
	_, err = e.secrets(t, "https://domvault.vault.azure.net", e.credential(t, tid, owner)).
		SetSecret(ctx, "greeting", azsecrets.SetSecretParameters{Value: to.Ptr("hello")}, nil)
	must(t, err)

	const vaultURL = "https://domvault.vault.contoso.test"
	// https://vault.contoso.test is the server's alias of Key Vault (its
	// custom domain); https://contoso.onmicrosoft.com/vault is some other
	// application's resource.
	e.resourceApp(t, tid, "https://contoso.onmicrosoft.com/vault")

	// The unmodified azsecrets client follows the challenge to the custom
	// domain's resource, gets a token for it, and reads.
	got, err := e.secrets(t, vaultURL, e.credential(t, tid, owner)).GetSecret(ctx, "greeting", "", nil)
	if err != nil || got.Value == nil || *got.Value != "hello" {
		t.Fatalf("azsecrets through the custom domain: %v", err)
	}

	// The challenge names the custom domain's resource and the vault's tenant.
	resp, err := e.client.Get(vaultURL + "/secrets/greeting?api-version=7.5")
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`Bearer authorization="%s/%s", resource="https://vault.contoso.test"`, e.srv.URL, tid)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
		t.Errorf("challenge: %d %q %s, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, want)
	}

	token := func(scope string) string {
		t.Helper()
		tok, err := e.credential(t, tid, owner).GetToken(ctx, policyScope(scope))
		must(t, err)
		return tok.Token
	}
	read := func(tok string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest("GET", vaultURL+"/secrets/greeting?api-version=7.5", nil)
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := e.client.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	// A token for https://vault.contoso.test reads the secret.
	if status, _, body := read(token("https://vault.contoso.test/.default")); status != http.StatusOK || !strings.Contains(body, `"value":"hello"`) {
		t.Errorf("custom-domain token: %d %s", status, body)
	}
	// So does one for Key Vault itself (its v1 resource), as in Azure's sovereign clouds' aliases.
	if status, _, body := read(token("https://vault.azure.net/.default")); status != http.StatusOK {
		t.Errorf("Key Vault token: %d %s", status, body)
	}
	// Another domain's vault resource, and another resource: 401 with the challenge.
	for _, scope := range []string{"https://contoso.onmicrosoft.com/vault/.default", "https://graph.microsoft.com/.default"} {
		status, hdr, body := read(token(scope))
		if status != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") != want || !strings.Contains(body, "AKV10022") {
			t.Errorf("token for %s: %d %q %s, want 401 AKV10022 with %q", scope, status, hdr.Get("WWW-Authenticate"), body, want)
		}
	}
	// And a token for the custom domain's resource does not open the vault under Azure's name.
	req, err := http.NewRequest("GET", "https://domvault.vault.azure.net/secrets/greeting?api-version=7.5", nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+token("https://vault.contoso.test/.default"))
	resp, err = e.client.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("custom-domain token at vault.azure.net: %d, want 401", resp.StatusCode)
	}
}

// TestServiceUpdateVault: the management API follows Azure's rules for a
// vault's soft-delete settings, and the data plane sees a change at once.
func TestServiceUpdateVault(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := t.Context()
		tid := e.contoso.Tenant.ID
		v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "updvault", SoftDeleteRetentionDays: 7})
		must(t, err)
		owner := e.newApp(t, tid, "owner", false)
		e.grantAll(t, v, owner.spID)
		c := e.secrets(t, "https://updvault.vault.azure.net", e.credential(t, tid, owner))
		for _, name := range []string{"a", "b"} {
			_, err = c.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
			must(t, err)
		}
		// Without purge protection a deleted secret can be purged (the
		// data plane has now cached the vault).
		_, err = c.DeleteSecret(ctx, "a", nil)
		must(t, err)
		_, err = c.PurgeDeletedSecret(ctx, "a", nil)
		must(t, err)

		// The rules.
		if _, err := e.vaults.UpdateVault(ctx, tid, "updvault", vault.VaultUpdate{SoftDeleteRetentionDays: to.Ptr(30)}); !errors.Is(err, vault.ErrRetentionFixed) {
			t.Errorf("changing the retention: %v, want ErrRetentionFixed", err)
		}
		if _, err := e.vaults.UpdateVault(ctx, tid, "updvault", vault.VaultUpdate{SoftDeleteRetentionDays: to.Ptr(3)}); !errors.Is(err, vault.ErrRetentionRange) {
			t.Errorf("retention 3: %v, want ErrRetentionRange", err)
		}
		if _, err := e.vaults.UpdateVault(ctx, tid, "updvault", vault.VaultUpdate{EnablePurgeProtection: to.Ptr(false)}); !errors.Is(err, vault.ErrPurgeProtectionIrreversible) {
			t.Errorf("purge protection false: %v, want ErrPurgeProtectionIrreversible", err)
		}
		if _, err := e.vaults.UpdateVault(ctx, e.fabrikam.Tenant.ID, "updvault", vault.VaultUpdate{EnablePurgeProtection: to.Ptr(true)}); !errors.Is(err, vault.ErrNotFound) {
			t.Errorf("another tenant's vault: %v, want ErrNotFound", err)
		}
		got, err := e.vaults.UpdateVault(ctx, tid, "UPDVAULT", vault.VaultUpdate{SoftDeleteRetentionDays: to.Ptr(7), EnablePurgeProtection: to.Ptr(true)})
		must(t, err)
		if !got.EnablePurgeProtection || got.SoftDeleteRetentionDays != 7 || got.Name != "updvault" {
			t.Errorf("updated vault %+v", got)
		}

		// The data plane enforces it on the next request: purge is refused.
		_, err = c.DeleteSecret(ctx, "b", nil)
		must(t, err)
		_, err = c.PurgeDeletedSecret(ctx, "b", nil)
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("purge with purge protection on: %v, want 403", err)
		}
	})
}
