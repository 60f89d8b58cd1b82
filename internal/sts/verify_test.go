package sts_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/sts"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// TestVerifier checks each reason a resource surface must refuse a token.
func TestVerifier(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	status, doc := e.clientCredentials(e.fabrikam.ID, true, "https://graph.microsoft.com/.default")
	if status != 200 {
		t.Fatalf("%d %v", status, doc)
	}
	issued := doc["access_token"].(string)
	tid := e.fabrikam.ID
	now := time.Now()

	// mint signs claims with the service's key, for issuers and tenants the
	// service itself would never put in a token.
	mint := func(mutate func(c *token.Claims)) string {
		c := token.Claims{Audience: "https://graph.microsoft.com", Issuer: e.srv.URL + "/" + tid + "/", TenantID: tid,
			IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: now.Add(time.Hour).Unix(), Version: "1.0"}
		mutate(&c)
		raw, err := token.Mint(e.keys.Current(), c)
		must(t, err)
		return raw
	}
	otherKeys, err := pki.LoadOrCreateKeySet(t.TempDir())
	must(t, err)
	foreign, err := token.Mint(otherKeys.Current(), token.Claims{Audience: "https://graph.microsoft.com", Issuer: e.srv.URL + "/" + tid + "/",
		TenantID: tid, Expires: now.Add(time.Hour).Unix()})
	must(t, err)
	gone, err := e.dir.CreateTenant(e.ctx, "gone")
	must(t, err)
	_, err = e.dir.DeleteTenant(e.ctx, gone.Tenant.ID)
	must(t, err)
	later := sts.NewVerifier(e.keys, e.dir, func(h string) bool { return h == "127.0.0.1" }, func() time.Time { return now.Add(3 * time.Hour) })
	noHosts := sts.NewVerifier(e.keys, e.dir, nil, nil)

	cases := []struct {
		name      string
		v         *sts.Verifier
		raw       string
		audiences []string
		want      error
	}{
		{"issued token", e.verifier, issued, []string{directory.GraphResource}, nil},
		{"trailing slash and case", e.verifier, issued, []string{"HTTPS://GRAPH.MICROSOFT.COM/"}, nil},
		{"one of several audiences", e.verifier, issued, []string{"https://vault.azure.net", directory.GraphResource}, nil},
		{"wrong audience", e.verifier, issued, []string{"https://vault.azure.net"}, sts.ErrWrongAudience},
		{"no audience", e.verifier, issued, nil, sts.ErrWrongAudience},
		{"expired", later, issued, []string{directory.GraphResource}, token.ErrExpired},
		{"tampered", e.verifier, issued[:len(issued)-4] + "AAAA", []string{directory.GraphResource}, token.ErrSignature},
		{"foreign key", e.verifier, foreign, []string{directory.GraphResource}, token.ErrUnknownKey},
		{"garbage", e.verifier, "not.a.jwt", []string{directory.GraphResource}, token.ErrMalformed},
		{"not a login host", noHosts, issued, []string{directory.GraphResource}, sts.ErrWrongIssuer},
		{"issuer on another host", e.verifier, mint(func(c *token.Claims) { c.Issuer = "https://evil.example/" + tid + "/" }), []string{directory.GraphResource}, sts.ErrWrongIssuer},
		{"issuer over http", e.verifier, mint(func(c *token.Claims) { c.Issuer = strings.Replace(c.Issuer, "https:", "http:", 1) }), []string{directory.GraphResource}, sts.ErrWrongIssuer},
		{"issuer of another tenant", e.verifier, mint(func(c *token.Claims) { c.Issuer = e.srv.URL + "/" + e.contoso.ID + "/" }), []string{directory.GraphResource}, sts.ErrWrongIssuer},
		{"issuer with extra path", e.verifier, mint(func(c *token.Claims) { c.Issuer = e.srv.URL + "/x/" + tid + "/" }), []string{directory.GraphResource}, sts.ErrWrongIssuer},
		{"v2 issuer on a v1 token", e.verifier, mint(func(c *token.Claims) { c.Issuer = e.srv.URL + "/" + tid + "/v2.0" }), []string{directory.GraphResource}, sts.ErrWrongIssuer},
		{"Entra v1 issuer", noHosts, mint(func(c *token.Claims) { c.Issuer = "https://sts.windows.net/" + tid + "/" }), []string{directory.GraphResource}, nil},
		{"Entra v2 issuer", noHosts, mint(func(c *token.Claims) {
			c.Issuer = "https://login.microsoftonline.com/" + tid + "/v2.0"
			c.Version = "2.0"
		}), []string{directory.GraphResource}, nil},
		{"unknown tenant", e.verifier, mint(func(c *token.Claims) { c.TenantID = uuid.NewString(); c.Issuer = e.srv.URL + "/" + c.TenantID + "/" }), []string{directory.GraphResource}, sts.ErrUnknownTenant},
		{"deleted tenant", e.verifier, mint(func(c *token.Claims) { c.TenantID = gone.Tenant.ID; c.Issuer = e.srv.URL + "/" + c.TenantID + "/" }), []string{directory.GraphResource}, sts.ErrUnknownTenant},
		{"tid by name", e.verifier, mint(func(c *token.Claims) { c.TenantID = "fabrikam"; c.Issuer = e.srv.URL + "/fabrikam/" }), []string{directory.GraphResource}, sts.ErrUnknownTenant},
	}
	for _, tc := range cases {
		c, err := tc.v.Verify(e.ctx, tc.raw, tc.audiences...)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if c.TenantID != "" {
			t.Errorf("%s: claims returned with an error", tc.name)
		}
	}
}

// TestVerifierTrustOfAppTokens is continuous access evaluation for
// application tokens: the answer is remembered per tenant and client,
// whatever the token's audience and however its ids are cased, and a
// change to the client's service principal in one tenant reaches that
// tenant's tokens at once and no other tenant's.
func TestVerifierTrustOfAppTokens(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	now := time.Now()
	mint := func(tid, appID, aud string) string {
		raw, err := token.Mint(e.keys.Current(), token.Claims{Audience: aud, Issuer: e.srv.URL + "/" + tid + "/", TenantID: tid,
			AppID: appID, IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: now.Add(time.Hour).Unix(), Version: "1.0"})
		must(t, err)
		return raw
	}
	type check struct {
		name, raw, aud string
	}
	fabrikam := []check{
		{"fabrikam, Graph", mint(e.fabrikam.ID, e.provider.AppID, directory.GraphResource), directory.GraphResource},
		{"fabrikam, Service Bus", mint(e.fabrikam.ID, e.provider.AppID, directory.ServiceBusResource), directory.ServiceBusResource},
		{"fabrikam, client in capitals", mint(e.fabrikam.ID, strings.ToUpper(e.provider.AppID), directory.ServiceBusResource), directory.ServiceBusResource},
		{"fabrikam, tenant in capitals", mint(strings.ToUpper(e.fabrikam.ID), e.provider.AppID, directory.ServiceBusResource), directory.ServiceBusResource},
	}
	contoso := check{"contoso, Service Bus", mint(e.contoso.ID, e.provider.AppID, directory.ServiceBusResource), directory.ServiceBusResource}
	braced := check{"fabrikam, client in braces", mint(e.fabrikam.ID, "{"+e.provider.AppID+"}", directory.ServiceBusResource), directory.ServiceBusResource}
	verify := func(c check, want error) {
		t.Helper()
		_, err := e.verifier.Verify(e.ctx, c.raw, c.aud)
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, want)
		}
	}
	for _, c := range fabrikam {
		verify(c, nil)
	}
	verify(contoso, nil)
	// An id in another form than the canonical one names no service
	// principal, however often the canonical form was accepted.
	verify(braced, token.ErrTrustRevoked)

	_, err := e.dir.UpdateServicePrincipal(e.ctx, e.fabrikam.ID, e.providerSPOther.ID, func(sp *directory.ServicePrincipal) error {
		sp.AccountEnabled = false
		return nil
	})
	must(t, err)
	for _, c := range fabrikam {
		verify(c, token.ErrTrustRevoked)
	}
	verify(contoso, nil) // the same client in another tenant

	_, err = e.dir.UpdateServicePrincipal(e.ctx, e.fabrikam.ID, e.providerSPOther.ID, func(sp *directory.ServicePrincipal) error {
		sp.AccountEnabled = true
		return nil
	})
	must(t, err)
	for _, c := range fabrikam {
		verify(c, nil)
	}
	must(t, e.dir.DeleteServicePrincipal(e.ctx, e.contoso.ID, e.providerSPHome.ID))
	verify(contoso, token.ErrTrustRevoked)
	for _, c := range fabrikam {
		verify(c, nil)
	}
}
