package publisher_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

// TestFederatedMode: the secretless installation. The per-installation
// application trusts the broker's issuer and the installation's subject
// (a non-Entra issuer: Entra allows it for any application); the managed
// vault holds only the non-secret configuration. Then every application
// and every vault of both tenants is inspected: no application but the
// tenants' own bootstrap admin apps (the test's operator identities) has
// a password or key credential, and no vault holds a credential of any
// identity.
func TestFederatedMode(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	b := w.broker(t, nil)
	w.publish(t, "secretless", publisher.ModeFederated)
	appID, _ := w.install(t, "secretless", "fed1")
	waitFor(t, "registration", func() bool {
		in := w.installation(t, b, appID)
		return in != nil && in.Status == "registered"
	})
	in := w.installation(t, b, appID)
	fics, err := w.graph.ListFederatedCredentials(ctx, in.AppObjectID)
	must(t, err)
	if len(fics) != 1 || fics[0].Issuer != w.issuer || fics[0].Subject != publisher.InstallationSubject(appID) ||
		fics[0].Audiences[0] != publisher.TokenExchangeAudience {
		t.Fatalf("federated credentials %+v", fics)
	}
	if in.WorkloadObjectID == "" || in.WorkloadObjectID == in.IdentityObjectID {
		t.Fatalf("the installation's identity: %+v", in)
	}
	secrets := w.vaultSecrets(t, appID)
	if len(secrets) != 1 {
		t.Fatalf("vault secrets %v", secrets)
	}
	var cfg publisher.VaultConfig
	must(t, json.Unmarshal([]byte(secrets[publisher.DefaultConfigName]), &cfg))
	if cfg.CredentialMode != publisher.ModeFederated || cfg.ClientID != in.ClientID || cfg.SecretName != "" ||
		cfg.ExchangeEndpoint != w.issuer+"/exchange" || cfg.Installation != appID {
		t.Errorf("config %+v", cfg)
	}
	if strings.Contains(w.logs.String(), "secretText") {
		t.Error("a secret in the logs")
	}
	if !w.isMember(t, in.SPObjectID) {
		t.Error("not in the group")
	}
	// The installation signs in (end to end), then the inspection.
	cred, err := publisher.InstallationCredential(cfg, w.installedSoftware(t, appID),
		&publisher.InstallationCredentialOptions{ClientOptions: w.opts, ExchangeClient: w.issuerSrv.Client()})
	must(t, err)
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}}); err != nil {
		t.Fatalf("the installation's sign-in: %v", err)
	}
	w.noSecretAnywhere(t, appID)
}

// noSecretAnywhere inspects every application (Graph) and every vault
// (Resource Manager, then the vault's secrets) of both tenants.
func (w *world) noSecretAnywhere(t *testing.T, appID string) {
	t.Helper()
	ctx := context.Background()
	for _, tn := range []struct {
		t    *azclient.Tenant
		cred azcore.TokenCredential
	}{{w.pub, w.pubCred}, {w.cust, w.custCred}} {
		tok, err := tn.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azclient.GraphScope}})
		must(t, err)
		req, _ := http.NewRequest(http.MethodGet, azclient.GraphEndpoint+"/applications", nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := w.hc.Do(req)
		must(t, err)
		var apps struct {
			Value []struct {
				AppID               string `json:"appId"`
				DisplayName         string `json:"displayName"`
				PasswordCredentials []any  `json:"passwordCredentials"`
				KeyCredentials      []any  `json:"keyCredentials"`
			} `json:"value"`
			Next string `json:"@odata.nextLink"`
		}
		must(t, json.NewDecoder(resp.Body).Decode(&apps))
		resp.Body.Close()
		if resp.StatusCode != 200 || apps.Next != "" || len(apps.Value) == 0 {
			t.Fatalf("applications of %s: %d, %d, next %q", tn.t.Name, resp.StatusCode, len(apps.Value), apps.Next)
		}
		for _, a := range apps.Value {
			if a.AppID == tn.t.Admin.ClientID {
				continue // the test's own bootstrap identity of the tenant
			}
			if len(a.PasswordCredentials) != 0 || len(a.KeyCredentials) != 0 {
				t.Errorf("tenant %s: application %q holds %d passwords and %d keys", tn.t.Name, a.DisplayName, len(a.PasswordCredentials), len(a.KeyCredentials))
			}
		}
		c, doc := w.arm(t, tn.cred, "GET", "/subscriptions/"+tn.t.SubscriptionID+"/providers/Microsoft.KeyVault/vaults", nil)
		if c != 200 {
			t.Fatalf("vaults of %s: %d %v", tn.t.Name, c, doc)
		}
		for _, v := range asList(doc["value"]) {
			name := toString(v.(map[string]any)["name"])
			var kv *azsecrets.Client
			if name == "kv"+publisher.UniqueSuffix(appID) {
				kv = w.managedVault(t, appID) // read as the installation's identity
			} else {
				// The tenant's admin (the subscription's Owner) lets itself read.
				id := toString(v.(map[string]any)["id"])
				if c, doc := w.arm(t, tn.cred, "PUT", id+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{
					"properties": map[string]any{"roleDefinitionId": "/subscriptions/" + tn.t.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + roleSecretsUser,
						"principalId": tn.t.Admin.ServicePrincipalID, "principalType": "ServicePrincipal"}}); c/100 != 2 {
					t.Fatalf("role %d %v", c, doc)
				}
				kv, err = azsecretsClient("https://"+name+".vault.azure.net", tn.cred, w.opts)
				must(t, err)
			}
			pager := kv.NewListSecretPropertiesPager(nil)
			for pager.More() {
				page, err := pager.NextPage(ctx)
				must(t, err)
				for _, p := range page.Value {
					s := p.ID.Name()
					r, err := kv.GetSecret(ctx, s, "", nil)
					must(t, err)
					switch {
					case s == publisher.DefaultConfigName:
						var m map[string]any
						must(t, json.Unmarshal([]byte(*r.Value), &m))
						for k := range m {
							if k := strings.ToLower(k); strings.Contains(k, "secret") || strings.Contains(k, "password") {
								t.Errorf("vault %s: %s carries %q", name, s, k)
							}
						}
					case s == "BootstrapSecret" && name == "pubboot":
						// Seed 000's registration call is authenticated by
						// this shared secret of the publisher's; it is no
						// credential of any identity: it signs nobody in.
						c, err := azclient.NewClientSecretCredential(w.authority, w.pub.TenantID, w.installationClientID(t), *r.Value, w.opts)
						must(t, err)
						if _, err := c.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}}); err == nil {
							t.Error("the bootstrap secret signs the installation in")
						}
					default:
						t.Errorf("vault %s holds the secret %s", name, s)
					}
				}
			}
		}
	}
}

// Key Vault Secrets User, Azure's built-in role.
const roleSecretsUser = "4633458b-17de-408a-b874-0445c86b69e6"

func (w *world) installationClientID(t testing.TB) string {
	t.Helper()
	apps, err := w.graph.ListApplications(context.Background(), "")
	must(t, err)
	for _, a := range apps {
		if strings.HasPrefix(a.DisplayName, "managedapp-") {
			return a.AppID
		}
	}
	t.Fatal("no per-installation application")
	return ""
}

// TestExchangeEndpoint: the broker's issuer (discovery, JWKS: the Key
// Vault key's public half only) and its exchange: the installation's
// identity token is answered with an assertion of the broker's issuer;
// every other token and every malformed request is refused with RFC 6749
// errors; after uninstall the credential is gone and the exchange refuses.
func TestExchangeEndpoint(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	b := w.broker(t, nil)
	hc := w.issuerSrv.Client()

	// Discovery and JWKS.
	var disc map[string]any
	getJSON(t, hc, w.issuer+"/.well-known/openid-configuration", &disc)
	if disc["issuer"] != w.issuer || disc["jwks_uri"] != w.issuer+"/keys" || disc["token_endpoint"] != w.issuer+"/exchange" {
		t.Fatalf("discovery %v", disc)
	}
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, hc, w.issuer+"/keys", &jwks)
	pub := w.issuerKey(t).PublicKeys()
	if len(jwks.Keys) != 1 || jwks.Keys[0]["kid"] != pub[0].KeyID || jwks.Keys[0]["alg"] != "RS256" || jwks.Keys[0]["d"] != nil ||
		jwks.Keys[0]["n"] != base64.RawURLEncoding.EncodeToString(pub[0].Key.N.Bytes()) {
		t.Fatalf("jwks %v", jwks)
	}

	w.publish(t, "secretless", publisher.ModeFederated)
	appID, _ := w.install(t, "secretless", "fed2")
	waitFor(t, "registration", func() bool {
		in := w.installation(t, b, appID)
		return in != nil && in.Status == "registered"
	})
	in := w.installation(t, b, appID)
	token := func(cred azcore.TokenCredential, scope string) string {
		t.Helper()
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		must(t, err)
		return tok.Token
	}
	exchangeScope := publisher.TokenExchangeAudience + "/.default"
	good := token(w.installedSoftware(t, appID), exchangeScope)

	// The assertion: the broker's issuer, the installation's subject.
	a, err := publisher.ExchangeToken(ctx, hc, b.ExchangeURL(), appID, good)
	must(t, err)
	claims, err := azclient.UnverifiedClaims(a)
	must(t, err)
	exp, _ := claims["exp"].(float64)
	if claims["iss"] != w.issuer || claims["sub"] != publisher.InstallationSubject(appID) || claims["aud"] != publisher.TokenExchangeAudience ||
		time.Until(time.Unix(int64(exp), 0)) > publisher.DefaultAssertionLifetime {
		t.Fatalf("assertion claims %v", claims)
	}

	// Other tokens.
	stranger, err := w.op.CreateIdentity(ctx, w.cust.TenantID, "stranger", "")
	must(t, err)
	strangerTok := token(w.workloadAs(t, stranger.PrincipalID, stranger.ClientID), exchangeScope)
	vaultTok := token(w.installedSoftware(t, appID), "https://vault.azure.net/.default")
	c, doc := w.arm(t, w.pubCred, "POST", appID+"/listTokens", map[string]any{"authorizationAudience": publisher.TokenExchangeAudience})
	if c != 200 {
		t.Fatalf("listTokens %d %v", c, doc)
	}
	systemTok := doc["value"].([]any)[0].(map[string]any)["access_token"].(string)
	pubTok := token(w.pubCred, exchangeScope)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "." + flip(parts[2])
	forged := forge(t, parts[0], parts[1])
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"x"}`)) + "." + parts[1] + "."

	form := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {good},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "installation": {appID}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	for _, c := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"another identity of the customer", form("subject_token", strangerTok), 400, "invalid_grant"},
		{"the application's system-assigned identity", form("subject_token", systemTok), 400, "invalid_grant"},
		{"another audience", form("subject_token", vaultTok), 400, "invalid_grant"},
		{"the publisher tenant's token", form("subject_token", pubTok), 400, "invalid_grant"},
		{"tampered signature", form("subject_token", tampered), 400, "invalid_grant"},
		{"forged with another key", form("subject_token", forged), 400, "invalid_grant"},
		{"alg none", form("subject_token", none), 400, "invalid_grant"},
		{"unknown installation", form("installation", strings.Replace(appID, "fed2", "nobody", 1)), 400, "invalid_grant"},
		{"not an application id", form("installation", "/subscriptions/x"), 400, "invalid_request"},
		{"another grant", form("grant_type", "client_credentials"), 400, "unsupported_grant_type"},
		{"no grant", form("grant_type", ""), 400, "invalid_request"},
		{"another audience asked", form("audience", "api://other"), 400, "invalid_target"},
		{"no subject token", form("subject_token", ""), 400, "invalid_request"},
		{"an unknown parameter", form("scope", "x"), 400, "invalid_request"},
	} {
		status, code := postForm(t, hc, b.ExchangeURL(), "application/x-www-form-urlencoded", c.form.Encode())
		if status != c.status || code != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, code, c.status, c.code)
		}
	}
	if status, code := postForm(t, hc, b.ExchangeURL(), "application/x-www-form-urlencoded", form().Encode()+"&installation="+url.QueryEscape(appID)); status != 400 || code != "invalid_request" {
		t.Errorf("a repeated parameter: %d %s", status, code)
	}
	if status, _ := postForm(t, hc, b.ExchangeURL(), "application/json", `{}`); status != http.StatusUnsupportedMediaType {
		t.Errorf("JSON body: %d", status)
	}
	if resp, err := hc.Get(b.ExchangeURL()); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET exchange: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Uninstall: the credential goes first, and the exchange refuses.
	if c, _ := w.arm(t, w.custCred, "DELETE", appID, nil); c != 200 {
		t.Fatalf("delete %d", c)
	}
	waitFor(t, "deprovisioning", func() bool { return w.installation(t, b, appID).Status == "deleted" })
	if _, err := w.graph.GetApplication(ctx, in.AppObjectID); !azclient.IsNotFound(err) {
		t.Errorf("the per-installation application survived: %v", err)
	}
	if _, err := publisher.ExchangeToken(ctx, hc, b.ExchangeURL(), appID, good); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("the exchange after uninstall: %v", err)
	}
}

// workloadAs is a workload of the customer's tenant running as the
// user-assigned identity principalID, through ManagedIdentityCredential.
func (w *world) workloadAs(t testing.TB, principalID, clientID string) azcore.TokenCredential {
	t.Helper()
	w.mu.Lock()
	header, ok := w.workloads[principalID]
	w.mu.Unlock()
	if !ok {
		wl, err := w.op.CreateWorkload(context.Background(), w.cust.TenantID, azclient.NewWorkload{Name: "wl-" + principalID, Identities: []string{principalID}})
		must(t, err)
		header = wl.IdentityHeader
		w.mu.Lock()
		if w.workloads == nil {
			w.workloads = map[string]string{}
		}
		w.workloads[principalID] = header
		w.mu.Unlock()
	}
	endpoint, err := w.opcred.IdentityEndpoint(w.cust.TenantID)
	must(t, err)
	t.Setenv("IDENTITY_ENDPOINT", endpoint) // azidentity reads these from the process environment
	t.Setenv("IDENTITY_HEADER", header)
	mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: w.opts, ID: azidentity.ClientID(clientID)})
	must(t, err)
	return mi
}

func flip(s string) string {
	b := []byte(s)
	if b[10] == 'A' {
		b[10] = 'B'
	} else {
		b[10] = 'A'
	}
	return string(b)
}

// forge signs header.claims with a key of its own.
func forge(t testing.TB, header, claims string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	digest := sha256.Sum256([]byte(header + "." + claims))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
	must(t, err)
	return header + "." + claims + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func getJSON(t testing.TB, hc *http.Client, u string, out any) {
	t.Helper()
	resp, err := hc.Get(u)
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	must(t, json.NewDecoder(resp.Body).Decode(out))
}

func postForm(t testing.TB, hc *http.Client, u, ct, body string) (int, string) {
	t.Helper()
	resp, err := hc.Post(u, ct, strings.NewReader(body))
	must(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Error
}
