package vault_test

import (
	"context"
	"crypto"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// keysEnv is an environment with the vault "myvault", an owner holding
// Key Vault Crypto Officer on it, its token and an azkeys client.
func keysEnv(t testing.TB) (*env, string, *azkeys.Client) {
	e := newEnv(t, storetest.SQLite(t))
	ctx := context.Background()
	tid := e.contoso.Tenant.ID
	v, err := e.vaults.CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "myvault"})
	must(t, err)
	owner := e.newApp(t, tid, "owner", false)
	e.assign(t, tid, owner.spID, rbac.RoleKeyVaultCryptoOfficer, v.ResourceID)
	cred := e.credential(t, tid, owner)
	tok, err := cred.GetToken(ctx, policyScope("https://vault.azure.net/.default"))
	must(t, err)
	c, err := azkeys.NewClient("https://myvault.vault.azure.net", cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: e.client}})
	must(t, err)
	return e, tok.Token, c
}

// FuzzKeyRequests: no method, path and body — JWK imports and the
// operation bodies included — makes the keys surface answer 5xx.
func FuzzKeyRequests(f *testing.F) {
	e, tok, c := keysEnv(f)
	ctx := context.Background()
	for _, name := range []string{"rsa", "ec"} {
		kty := azkeys.KeyTypeRSA
		if name == "ec" {
			kty = azkeys.KeyTypeEC
		}
		_, err := c.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(kty)}, nil)
		must(f, err)
	}
	seeds := []struct{ method, path, body string }{
		{"POST", "/keys/new/create", `{"kty":"RSA","key_size":2048,"key_ops":["sign"],"attributes":{"enabled":true,"nbf":1,"exp":4102444800},"tags":{"a":"b"}}`},
		{"POST", "/keys/new/create", `{"kty":"EC","crv":"P-384"}`},
		{"POST", "/keys/new/create", `{"kty":"EC-HSM","crv":"P-521","release_policy":{"data":"x"}}`},
		{"PUT", "/keys/imp", `{"key":{"kty":"EC","crv":"P-256","d":"AAAA","x":"AAAA","y":"AAAA"}}`},
		{"PUT", "/keys/imp", `{"key":{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB","p":"Aw","q":"BQ"},"Hsm":false}`},
		{"PUT", "/keys/imp", `{"key":{"kty":"oct","k":"AAAA"}}`},
		{"PATCH", "/keys/rsa/", `{"key_ops":["verify","verify"],"attributes":{"exp":-1},"tags":{"":""}}`},
		{"POST", "/keys/rsa/sign", `{"alg":"RS256","value":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"}`},
		{"POST", "/keys/ec/sign", `{"alg":"ES256","value":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"}`},
		{"POST", "/keys/rsa//verify", `{"alg":"PS512","digest":"AA","value":"AA"}`},
		{"POST", "/keys/rsa/wrapkey", `{"alg":"RSA-OAEP-256","value":"AAECAw"}`},
		{"POST", "/keys/rsa/unwrapkey", `{"alg":"RSA-OAEP","value":"AAECAw=="}`},
		{"POST", "/keys/rsa/encrypt", `{"alg":"RSA1_5","value":"AA","iv":"AA"}`},
		{"POST", "/keys/ec/decrypt", `{"alg":"RSA-OAEP","value":"AA"}`},
		{"POST", "/keys/restore", `{"value":"AQID"}`},
		{"POST", "/keys/rsa/backup", ``},
		{"POST", "/keys/rsa/rotate", ``},
		{"GET", "/keys/rsa/versions", ``},
		{"GET", "/deletedkeys/rsa", ``},
		{"POST", "/deletedkeys/rsa/recover", ``},
		{"DELETE", "/keys/rsa", ``},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if len(path) == 0 || path[0] != '/' {
			path = "/keys/" + path
		}
		if status := e.send(t, tok, method, path, body); status >= 500 {
			t.Fatalf("%s %s %q: %d", method, path, body, status)
		}
	})
}

// BenchmarkSign measures signs per second through the whole keys surface
// (TLS, token check, RBAC, audit, unseal, sign) with the real azkeys
// client, for RSA-2048 (RS256) and EC P-256 (ES256). Run:
//
//	go test ./internal/vault -run '^$' -bench BenchmarkSign -benchtime 3s
func BenchmarkSign(b *testing.B) {
	_, _, c := keysEnv(b)
	ctx := context.Background()
	digest := crypto.SHA256.New().Sum(nil)
	for _, tc := range []struct {
		name string
		kty  azkeys.KeyType
		alg  azkeys.SignatureAlgorithm
	}{{"RSA-2048", azkeys.KeyTypeRSA, azkeys.SignatureAlgorithmRS256}, {"EC-P256", azkeys.KeyTypeEC, azkeys.SignatureAlgorithmES256}} {
		_, err := c.CreateKey(ctx, tc.name, azkeys.CreateKeyParameters{Kty: to.Ptr(tc.kty)}, nil)
		must(b, err)
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.Sign(ctx, tc.name, "", azkeys.SignParameters{Algorithm: to.Ptr(tc.alg), Value: digest}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
		})
	}
}
