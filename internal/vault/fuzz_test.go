package vault_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

func policyScope(s string) policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: []string{s}}
}

// fuzzEnv is one environment with a vault and an owner's token, shared by
// the fuzz targets' iterations.
func fuzzEnv(f *testing.F) (*env, string) {
	e := newEnv(f, storetest.SQLite(f))
	ctx := context.Background()
	tid := e.contoso.Tenant.ID
	v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "myvault"})
	must(f, err)
	owner := e.newApp(f, tid, "owner", false)
	e.grantAll(f, v, owner.spID)
	tok, err := e.credential(f, tid, owner).GetToken(ctx, policyScope("https://vault.azure.net/.default"))
	must(f, err)
	return e, tok.Token
}

func (e *env) send(t *testing.T, tok, method, path, body string) int {
	req, err := http.NewRequest(method, "https://myvault.vault.azure.net/", strings.NewReader(body))
	if err != nil {
		t.Skip()
	}
	req.URL.Path = path
	req.URL.RawQuery = "api-version=7.5"
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Skip() // the client refused to send it
	}
	resp.Body.Close()
	return resp.StatusCode
}

// FuzzSecretPath: no path and method makes the handler fail with a 5xx.
func FuzzSecretPath(f *testing.F) {
	e, tok := fuzzEnv(f)
	for _, s := range []string{"/secrets", "/secrets/a", "/secrets/a/", "/secrets/a/versions", "/secrets/a/0123456789abcdef0123456789abcdef",
		"/secrets/restore", "/deletedsecrets/a/recover", "/secrets/a/backup", "//", "/secrets//x", "/SECRETS/A/B/C/D"} {
		for _, m := range []string{"GET", "PUT", "PATCH", "DELETE", "POST"} {
			f.Add(m, s)
		}
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		switch method {
		case "GET", "PUT", "PATCH", "DELETE", "POST":
		default:
			method = "GET"
		}
		if st := e.send(t, tok, method, "/"+strings.TrimPrefix(path, "/"), `{"value":"x"}`); st >= 500 {
			t.Fatalf("%s %q: %d", method, path, st)
		}
	})
}

// FuzzSetSecretBody: no body makes set fail with a 5xx, and whatever set
// accepts reads back.
func FuzzSetSecretBody(f *testing.F) {
	e, tok := fuzzEnv(f)
	for _, s := range []string{`{"value":"x"}`, `{"value":"x","contentType":"t","tags":{"a":"b","c":null},"attributes":{"enabled":false,"nbf":1,"exp":99999999999}}`,
		`{"value":null}`, `[]`, `{"value":"x","attributes":{"exp":-62135596801}}`, `{"value":"\u0000"}`, `{"tags":{"":"x"},"value":"y"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if st := e.send(t, tok, "PUT", "/secrets/fuzz", body); st >= 500 {
			t.Fatalf("%q: %d", body, st)
		}
	})
}

// BenchmarkGetSecret measures a get through the handler with azsecrets
// (token cached by the client after the first call).
func BenchmarkGetSecret(b *testing.B) {
	e := newEnv(b, storetest.SQLite(b))
	ctx := context.Background()
	tid := e.contoso.Tenant.ID
	v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "myvault"})
	must(b, err)
	owner := e.newApp(b, tid, "owner", false)
	e.grantAll(b, v, owner.spID)
	c, err := azsecrets.NewClient("https://myvault.vault.azure.net", e.credential(b, tid, owner),
		&azsecrets.ClientOptions{ClientOptions: policy.ClientOptions{Transport: e.client}})
	must(b, err)
	_, err = c.SetSecret(ctx, "bench", azsecrets.SetSecretParameters{Value: to.Ptr(strings.Repeat("v", 256))}, nil)
	must(b, err)
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.GetSecret(ctx, "bench", "", nil); err != nil {
			b.Fatal(err)
		}
	}
}
