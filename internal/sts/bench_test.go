package sts_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// BenchmarkClientCredentials measures a token issued end to end: HTTPS
// request on a kept-alive connection, form parsing, tenant, client and
// resource lookups in SQLite, the secret's HMAC, role lookup, RS256
// signing and the audit insert.
func BenchmarkClientCredentials(b *testing.B) {
	e := newEnv(b, storetest.SQLite(b))
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.provider.AppID}, "client_secret": {e.providerSecret},
		"scope":  {"https://graph.microsoft.com/.default openid profile offline_access"},
		"claims": {`{"access_token":{"xms_cc":{"values":["CP1"]}}}`}}.Encode()
	u := e.tokenURL(e.fabrikam.ID, true)
	client := e.srv.Client()
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkMint measures signing alone: the RS256 signature dominates it.
func BenchmarkMint(b *testing.B) {
	e := newEnv(b, storetest.SQLite(b))
	key := e.keys.Current()
	now := time.Now()
	c := token.Claims{Audience: "https://graph.microsoft.com", Issuer: e.srv.URL + "/" + e.fabrikam.ID + "/", TenantID: e.fabrikam.ID,
		ObjectID: e.providerSPOther.ID, Subject: e.providerSPOther.ID, AppID: e.provider.AppID, AppIDACR: "1", IdentType: "app",
		Roles: []string{"User.Read.All"}, IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: now.Add(time.Hour).Unix(), Version: "1.0"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.Mint(key, c); err != nil {
			b.Fatal(err)
		}
	}
}

// benchAssertion posts client assertion requests made by next and fails on
// anything but 200.
func benchAssertion(b *testing.B, e *env, u, clientID, scope string, next func() string) {
	client := e.srv.Client()
	b.ReportAllocs()
	for b.Loop() {
		body := assertionForm(clientID, next(), scope).Encode()
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkClientCertificate measures a certificate-credential token end to
// end, as azidentity's ClientCertificateCredential gets it: the client
// signs a fresh PS256 assertion (inside the loop, as MSAL does for each
// request), the server finds the key credential, verifies the signature,
// records the jti once, then issues as for a secret.
func BenchmarkClientCertificate(b *testing.B) {
	e := newEnv(b, storetest.SQLite(b))
	now := time.Now()
	c := newTestCert(b, "client", now.Add(-time.Hour), now.Add(24*time.Hour))
	e.registerCert(e.contoso.ID, e.provider.ID, c)
	u := e.tokenURL(e.fabrikam.ID, true)
	benchAssertion(b, e, u, e.provider.AppID, "https://graph.microsoft.com/.default openid profile offline_access", func() string {
		return certAssertion(b, c, e.provider.AppID, u, nil)
	})
}

// BenchmarkFederated measures a federated-credential token end to end with
// a managed identity token of another tenant of this server as the
// assertion (the cross-tenant case): credential match, the tenant check,
// RS256 verification against our own keys, then issuance. The assertion is
// reused, as workloads reuse theirs.
func BenchmarkFederated(b *testing.B) {
	e := newEnv(b, storetest.SQLite(b))
	w, header, err := e.dir.CreateWorkload(e.ctx, e.contoso.ID, "", "bench", true, nil)
	must(b, err)
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/"+e.contoso.ID+"/msi/token?api-version=2019-08-01&resource="+url.QueryEscape(directory.TokenExchangeAudience), nil)
	req.Header.Set("X-IDENTITY-HEADER", header)
	resp, doc := e.do(req)
	if resp.StatusCode != 200 {
		b.Fatalf("managed identity token: %d %v", resp.StatusCode, doc)
	}
	e.addFIC(e.contoso.ID, e.provider.ID, "bench", "https://login.microsoftonline.com/"+e.contoso.ID+"/v2.0", w.SystemIdentityID, directory.TokenExchangeAudience)
	assertion := doc["access_token"].(string)
	benchAssertion(b, e, e.tokenURL(e.fabrikam.ID, true), e.provider.AppID, ordersURI+"/.default", func() string { return assertion })
}
