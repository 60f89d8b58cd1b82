package sts_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

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
