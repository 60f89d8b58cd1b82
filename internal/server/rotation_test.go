package server_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/operator"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// operatorClient is a client of the running server's operator API, found
// through its operator.json as the CLI finds it.
func (r *running) operatorClient(t *testing.T) (*azclient.Operator, azclient.OperatorCredential) {
	t.Helper()
	cred, err := azclient.ReadOperatorCredential(filepath.Join(r.dir, operator.FileName))
	if err != nil {
		t.Fatal(err)
	}
	op, err := azclient.NewOperatorFromCredential(cred)
	if err != nil {
		t.Fatal(err)
	}
	return op, cred
}

// jwtHeader decodes a JWT's header without verifying anything.
func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return m
}

// A token issued before a rotation still verifies after it, with a
// verifier that discovers our keys the way every OIDC library does; a
// token issued after it carries the new key.
func TestKeyRotation(t *testing.T) {
	r := start(t, server.Config{})
	tc := r.createTenant(t, "rotor")
	ctx := context.Background()
	op, _ := r.operatorClient(t)

	// A v2 token (the token exchange audience accepts v2), whose issuer
	// is discoverable: https://login.microsoftonline.com/{tid}/v2.0.
	token := func() string {
		t.Helper()
		cred, err := azidentity.NewClientSecretCredential(tc.TenantID, tc.Admin.ClientID, tc.Admin.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: r.client()}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"api://AzureADTokenExchange/.default"}})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}
	before := token()
	oldKid, _ := jwtHeader(t, before)["kid"].(string)
	claims, err := azclient.UnverifiedClaims(before)
	if err != nil {
		t.Fatal(err)
	}
	aud, _ := claims["aud"].(string)
	issuer := "https://login.microsoftonline.com/" + tc.TenantID + "/v2.0"
	if claims["iss"] != issuer || aud == "" || oldKid == "" {
		t.Fatalf("token before rotation: kid %q, claims %v", oldKid, claims)
	}
	octx := oidc.ClientContext(ctx, r.client())
	verifierNow := func() *oidc.IDTokenVerifier {
		t.Helper()
		p, err := oidc.NewProvider(octx, issuer)
		if err != nil {
			t.Fatalf("OIDC discovery of %s: %v", issuer, err)
		}
		return p.Verifier(&oidc.Config{ClientID: aud})
	}
	cached := verifierNow()
	if _, err := cached.Verify(octx, before); err != nil {
		t.Fatalf("the token does not verify before rotation: %v", err)
	}

	ks, err := op.ListKeys(ctx)
	if err != nil || len(ks) != 1 || ks[0].KeyID != oldKid || ks[0].State != "active" {
		t.Fatalf("keys before rotation = %+v, %v", ks, err)
	}
	k, err := op.RotateKeys(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID == "" || k.KeyID == oldKid || time.Until(k.Activates) > 2*time.Second {
		t.Fatalf("rotate with publish-ahead 0s = %+v", k)
	}
	// "0s" activates within a second: a key never shares its activation
	// second with another.
	time.Sleep(time.Until(k.Activates))

	after := token()
	if kid := jwtHeader(t, after)["kid"]; kid != k.KeyID {
		t.Errorf("token after rotation has kid %v; want the new key %s", kid, k.KeyID)
	}
	for name, v := range map[string]*oidc.IDTokenVerifier{"the verifier from before": cached, "a fresh verifier": verifierNow()} {
		if _, err := v.Verify(octx, before); err != nil {
			t.Errorf("%s: the token issued before rotation no longer verifies: %v", name, err)
		}
		if _, err := v.Verify(octx, after); err != nil {
			t.Errorf("%s: the token issued after rotation does not verify: %v", name, err)
		}
	}

	ks, err = op.ListKeys(ctx)
	if err != nil || len(ks) != 2 {
		t.Fatalf("keys after rotation = %+v, %v", ks, err)
	}
	if ks[0].KeyID != k.KeyID || ks[0].State != "active" || ks[1].KeyID != oldKid || ks[1].State != "retired" {
		t.Errorf("key states after rotation: %+v", ks)
	}
	if want := ks[1].Retires.Add(server.MaxTokenLifetime + 5*time.Minute); !ks[1].RemovableAfter.Equal(want) {
		t.Errorf("retired key removable after %v; want %v (retirement + longest token lifetime + margin)", ks[1].RemovableAfter, want)
	}

	// Rotating ahead publishes a pending key that does not sign yet.
	pending, err := op.RotateKeys(ctx, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if pending.State != "pending" || time.Until(pending.Activates) < 23*time.Hour {
		t.Errorf("rotate with publish-ahead 24h = %+v", pending)
	}
	if kid := jwtHeader(t, token())["kid"]; kid != k.KeyID {
		t.Errorf("a pending key signed a token: kid %v", kid)
	}
	if _, err := op.RotateKeys(ctx, 31*24*time.Hour); err == nil || !strings.Contains(err.Error(), "publishAhead") {
		t.Errorf("rotate with publish-ahead 31 days: %v", err)
	}

	recs, err := op.Audit(ctx, azclient.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	rotations := 0
	for _, rec := range recs {
		if rec.Action == "keys.rotate" && rec.Result == "success" && (rec.Target == k.KeyID || rec.Target == pending.KeyID) {
			rotations++
		}
	}
	if rotations != 2 {
		t.Errorf("audit has %d successful keys.rotate records; want 2", rotations)
	}
}

// proxied returns an HTTP client that goes through the server's proxy, as
// an unmodified program with HTTPS_PROXY does, trusting the server's CA.
func (r *running) proxied(t *testing.T, proxyURL string) *http.Client {
	t.Helper()
	u, err := url.Parse(proxyURL)
	if err != nil || u.Scheme != "http" {
		t.Fatalf("proxy URL %q", proxyURL)
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(u),
		TLSClientConfig: &tls.Config{RootCAs: r.srv.CA().Pool()},
	}, Timeout: 30 * time.Second}
}

func TestProxy(t *testing.T) {
	r := start(t, server.Config{ProxyListen: "127.0.0.1:0"})
	_, cred := r.operatorClient(t)
	if cred.ProxyURL == "" || cred.ProxyURL != r.srv.ProxyURL() || !strings.HasPrefix(cred.ProxyURL, "http://127.0.0.1:") {
		t.Fatalf("operator.json proxyUrl = %q, server says %q", cred.ProxyURL, r.srv.ProxyURL())
	}
	c := r.proxied(t, cred.ProxyURL)

	// The names the router serves are tunnelled to the front door.
	resp, err := c.Get("https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/common/oauth2/v2.0/authorize")
	if err != nil {
		t.Fatalf("login.microsoftonline.com through the proxy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("x-ms-request-id") == "" {
		t.Errorf("instance discovery through the proxy: %d", resp.StatusCode)
	}
	resp, err = c.Get("https://graph.microsoft.com/v1.0/applications")
	if err != nil {
		t.Fatalf("graph.microsoft.com through the proxy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("graph without a token through the proxy: %d", resp.StatusCode)
	}

	// Anything else is refused at CONNECT: names no surface serves
	// (though the certificate has them), names the certificate lacks
	// (though the router knows them), other sites, the listen address.
	for _, host := range []string{"management.core.windows.net", "a.b.vault.azure.net", "vault.azure.net", "windows.net", "example.com", "127.0.0.1", "localhost"} {
		if r.srv.ProxyAllows(host) {
			t.Errorf("ProxyAllows(%q) = true", host)
		}
		resp, err := c.Get("https://" + host + "/")
		if err == nil {
			resp.Body.Close()
			t.Errorf("CONNECT %s through the proxy succeeded: %d", host, resp.StatusCode)
			continue
		}
		if !strings.Contains(err.Error(), "Forbidden") {
			t.Errorf("CONNECT %s: %v; want 403 Forbidden", host, err)
		}
	}
	if got := strings.Join(r.srv.ProxiedHosts(), " "); got != "*.servicebus.windows.net *.vault.azure.net graph.microsoft.com login.microsoftonline.com login.windows.net management.azure.com sts.windows.net" {
		t.Errorf("ProxiedHosts = %s", got)
	}
	// A vault's host is tunnelled, and the vault surface answers it.
	resp, err = c.Get("https://myvault.vault.azure.net/secrets?api-version=7.5")
	if err != nil {
		t.Fatalf("a vault through the proxy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusNotFound {
		t.Errorf("a vault through the proxy: %d, want the vault surface's 401 or 404", resp.StatusCode)
	}
	for _, host := range []string{"login.microsoftonline.com", "graph.microsoft.com", "GRAPH.microsoft.com.", "myvault.vault.azure.net", "management.azure.com"} {
		if !r.srv.ProxyAllows(host) {
			t.Errorf("ProxyAllows(%q) = false", host)
		}
	}

	// Shutdown closes the proxy too.
	r.stop()
	if resp, err := c.Get("https://graph.microsoft.com/v1.0/applications"); err == nil {
		resp.Body.Close()
		t.Error("the proxy still answers after shutdown")
	}
}

func TestProxyCustomDomain(t *testing.T) {
	r := start(t, server.Config{ProxyListen: "127.0.0.1:0", CustomDomain: "tenantbridge.test"})
	for host, want := range map[string]bool{
		"login.tenantbridge.test": true, "graph.tenantbridge.test": true, "login.microsoftonline.com": true,
		"management.tenantbridge.test": true, "kv.vault.tenantbridge.test": true, "a.kv.vault.tenantbridge.test": false, "tenantbridge.test": false,
	} {
		if got := r.srv.ProxyAllows(host); got != want {
			t.Errorf("ProxyAllows(%q) = %v; want %v", host, got, want)
		}
	}
	resp, err := r.proxied(t, r.srv.ProxyURL()).Get("https://graph.tenantbridge.test/v1.0/applications")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("graph on the custom domain through the proxy: %d", resp.StatusCode)
	}
}

// Without --proxy-listen there is no proxy, and operator.json says so.
func TestNoProxy(t *testing.T) {
	dir := t.TempDir()
	first := start(t, server.Config{DataDir: dir, ProxyListen: "127.0.0.1:0"})
	first.stop()
	r := start(t, server.Config{DataDir: dir})
	if _, cred := r.operatorClient(t); cred.ProxyURL != "" || r.srv.ProxyURL() != "" {
		t.Errorf("a server without a proxy records proxyUrl %q", cred.ProxyURL)
	}
}

// The background round picks up a rotation made elsewhere (the CLI, another
// instance sharing the data directory) and prunes a retired key once every
// token it signed has expired, on record.
func TestKeyMaintenance(t *testing.T) {
	r := start(t, server.Config{})
	ctx := context.Background()
	old := r.srv.Keys().Current()

	elsewhere, err := pki.LoadOrCreateKeySet(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	k, err := elsewhere.Rotate(now.Add(2*time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.srv.Keys().Lookup(k.KeyID); ok {
		t.Fatal("the server saw the new key before reloading")
	}
	r.srv.RefreshKeysAt(ctx, now.Add(3*time.Second))
	if _, ok := r.srv.Keys().Lookup(k.KeyID); !ok {
		t.Fatal("the server did not reload the key rotated elsewhere")
	}
	if _, ok := r.srv.Keys().Lookup(old.KeyID); !ok {
		t.Fatal("the retired key was pruned while its tokens may be valid")
	}

	// Long enough after retirement, the old key goes.
	r.srv.RefreshKeysAt(ctx, k.Activates.Add(server.MaxTokenLifetime+pki.PruneMargin+time.Second))
	if _, ok := r.srv.Keys().Lookup(old.KeyID); ok {
		t.Fatal("the retired key was not pruned after its tokens expired")
	}
	if _, ok := r.srv.Keys().Lookup(k.KeyID); !ok {
		t.Fatal("the current key was pruned")
	}
	op, _ := r.operatorClient(t)
	recs, err := op.Audit(ctx, azclient.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	pruned := false
	for _, rec := range recs {
		pruned = pruned || rec.Action == "keys.prune" && rec.Target == old.KeyID && rec.Actor == "tenantbridge"
	}
	if !pruned {
		t.Error("the prune is not audited")
	}
}
