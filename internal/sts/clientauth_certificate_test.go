package sts_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestAzidentityClientCertificate drives azidentity's
// ClientCertificateCredential (MSAL's PS256 assertion with x5t#S256 in
// standard base64), with and without the certificate chain in x5c, in the
// app's home tenant and in a tenant it was consented into.
func TestAzidentityClientCertificate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		now := time.Now()
		c := newTestCert(t, "client", now.Add(-time.Hour), now.Add(24*time.Hour))
		kc := e.registerCert(e.contoso.ID, e.provider.ID, c)

		for _, chain := range []bool{false, true} {
			cred, err := azidentity.NewClientCertificateCredential(e.contoso.ID, e.provider.AppID, []*x509.Certificate{c.cert}, c.key,
				&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.clientOptions(), DisableInstanceDiscovery: true,
					SendCertificateChain: chain, AdditionallyAllowedTenants: []string{"*"}})
			must(t, err)
			tok, err := cred.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}, EnableCAE: true})
			if err != nil {
				t.Fatalf("chain=%v: %v", chain, err)
			}
			cl, err := e.verifier.Verify(e.ctx, tok.Token, directory.GraphResource)
			must(t, err)
			if cl.AppID != e.provider.AppID || cl.AppIDACR != "2" || cl.ObjectID != e.providerSPHome.ID || cl.TenantID != e.contoso.ID {
				t.Errorf("chain=%v: appid %s appidacr %s oid %s tid %s", chain, cl.AppID, cl.AppIDACR, cl.ObjectID, cl.TenantID)
			}
			if a := e.lastAudit(); !strings.Contains(a.Detail, "client_auth=private_key_jwt") || !strings.Contains(a.Detail, "credential=certificate:"+kc.KeyID) {
				t.Errorf("chain=%v: audit detail %q", chain, a.Detail)
			}

			// The same credential in the tenant the app was consented into, v2 resource.
			tok, err = cred.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{ordersURI + "/.default"}, TenantID: e.fabrikam.ID})
			if err != nil {
				t.Fatalf("chain=%v, fabrikam: %v", chain, err)
			}
			cl, err = e.verifier.Verify(e.ctx, tok.Token, e.orders.AppID)
			must(t, err)
			if cl.AZP != e.provider.AppID || cl.AZPACR != "2" || cl.TenantID != e.fabrikam.ID || !slices.Equal(cl.Roles, []string{"Orders.Read"}) {
				t.Errorf("chain=%v, fabrikam: azp %s azpacr %s tid %s roles %v", chain, cl.AZP, cl.AZPACR, cl.TenantID, cl.Roles)
			}
		}

		// A certificate the app does not hold: Entra's AADSTS700027, through the SDK.
		other := newTestCert(t, "other", now.Add(-time.Hour), now.Add(time.Hour))
		cred, err := azidentity.NewClientCertificateCredential(e.contoso.ID, e.provider.AppID, []*x509.Certificate{other.cert}, other.key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.clientOptions(), DisableInstanceDiscovery: true})
		must(t, err)
		if _, err := cred.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}}); err == nil ||
			!strings.Contains(err.Error(), "AADSTS700027") {
			t.Errorf("unregistered certificate: %v", err)
		}
	})
}

// TestHandBuiltCertificateAssertions: RS256 with x5t (SHA-1), as older
// MSAL, ADFS-style clients and hand-written code sign, and the other
// thumbprint spellings, audiences and lifetimes that are accepted.
func TestHandBuiltCertificateAssertions(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	now := time.Now()
	c := newTestCert(t, "client", now.Add(-time.Hour), now.Add(24*time.Hour))
	e.registerCert(e.contoso.ID, e.provider.ID, c)
	v2 := e.tokenURL(e.contoso.ID, true)
	graph := "https://graph.microsoft.com/.default"
	sum := c.cert.Raw

	cases := []struct {
		name   string
		tenant string // the path's tenant; default contoso's id
		v1     bool
		mutate func(h, c map[string]any)
	}{
		{name: "RS256 with x5t", mutate: func(h, cl map[string]any) {
			h["alg"] = "RS256"
			delete(h, "x5t#S256")
			h["x5t"] = c.x5t()
		}},
		{name: "x5t as uppercase hex", mutate: func(h, cl map[string]any) {
			delete(h, "x5t#S256")
			h["x5t"] = strings.ToUpper(hex.EncodeToString(sha1Sum(sum)))
		}},
		{name: "x5t#S256 as base64url", mutate: func(h, cl map[string]any) {
			h["x5t#S256"] = base64.RawURLEncoding.EncodeToString(sha256Sum(sum))
		}},
		{name: "x5c alone", mutate: func(h, cl map[string]any) {
			delete(h, "x5t#S256")
			h["x5c"] = []string{base64.StdEncoding.EncodeToString(c.cert.Raw)}
		}},
		{name: "aud as an array", mutate: func(h, cl map[string]any) { cl["aud"] = []string{"https://example.com", v2} }},
		{name: "aud with the tenant's domain, as the path names it", tenant: "contoso.onmicrosoft.com", mutate: func(h, cl map[string]any) {
			cl["aud"] = e.srv.URL + "/contoso.onmicrosoft.com/oauth2/v2.0/token"
		}},
		{name: "aud with the tenant id, path by domain", tenant: "contoso.onmicrosoft.com"},
		{name: "v1 endpoint", v1: true, mutate: func(h, cl map[string]any) { cl["aud"] = e.tokenURL(e.contoso.ID, false) }},
		{name: "no nbf", mutate: func(h, cl map[string]any) { delete(cl, "nbf") }},
		{name: "exp within the skew", mutate: func(h, cl map[string]any) { cl["exp"] = now.Add(-4 * time.Minute).Unix() }},
		{name: "nbf within the skew", mutate: func(h, cl map[string]any) { cl["nbf"] = now.Add(4 * time.Minute).Unix() }},
		// Entra accepts an assertion without jti (its docs list jti, MSAL
		// always sends one); replay protection then keys on the signature.
		{name: "no jti", mutate: func(h, cl map[string]any) { delete(cl, "jti") }},
	}
	for _, tc := range cases {
		tenant := tc.tenant
		if tenant == "" {
			tenant = e.contoso.ID
		}
		form := assertionForm(e.provider.AppID, certAssertion(t, c, e.provider.AppID, v2, tc.mutate), graph)
		if tc.v1 {
			form.Del("scope")
			form.Set("resource", directory.GraphResource)
		}
		resp, doc := e.post(e.tokenURL(tenant, !tc.v1), form, nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, description(doc))
			continue
		}
		_, claims := decodeJWT(t, doc["access_token"].(string))
		if claims["appidacr"] != "2" {
			t.Errorf("%s: appidacr %v", tc.name, claims["appidacr"])
		}
		// The same assertion again, as MSAL sends it for its next token
		// (Entra accepts it within its lifetime).
		if resp, doc = e.post(e.tokenURL(tenant, !tc.v1), form, nil); resp.StatusCode != 200 {
			t.Errorf("%s, the same assertion again: %d %s", tc.name, resp.StatusCode, description(doc))
		}
	}
}

// TestCertificateAssertionLifecycle: a key credential outside its dates and
// one removed from the app no longer authenticate.
func TestCertificateAssertionLifecycle(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	now := time.Now()
	c := newTestCert(t, "client", now.Add(-time.Hour), now.Add(24*time.Hour))
	graph := "https://graph.microsoft.com/.default"
	v2 := e.tokenURL(e.contoso.ID, true)

	// Registered with a window that has not started.
	kc, err := directory.NewKeyCredential(c.cert.Raw, "later", now.Add(time.Hour), time.Time{})
	must(t, err)
	kc, err = e.dir.AddApplicationKey(e.ctx, e.contoso.ID, e.provider.ID, kc)
	must(t, err)
	resp, doc := e.post(v2, assertionForm(e.provider.AppID, certAssertion(t, c, e.provider.AppID, v2, nil), graph), nil)
	wantAAD(t, "key not yet valid", resp, doc, 401, "invalid_client", 700027)
	if !strings.Contains(description(doc), "The key used is not yet valid") {
		t.Errorf("description %q", description(doc))
	}

	must(t, e.dir.RemoveApplicationKey(e.ctx, e.contoso.ID, e.provider.ID, kc.KeyID))
	e.registerCert(e.contoso.ID, e.provider.ID, c)
	resp, doc = e.post(v2, assertionForm(e.provider.AppID, certAssertion(t, c, e.provider.AppID, v2, nil), graph), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("valid key: %d %s", resp.StatusCode, description(doc))
	}

	apps, err := e.dir.GetApplication(e.ctx, e.contoso.ID, e.provider.ID)
	must(t, err)
	must(t, e.dir.RemoveApplicationKey(e.ctx, e.contoso.ID, e.provider.ID, apps.KeyCredentials[0].KeyID))
	resp, doc = e.post(v2, assertionForm(e.provider.AppID, certAssertion(t, c, e.provider.AppID, v2, nil), graph), nil)
	wantAAD(t, "key removed", resp, doc, 401, "invalid_client", 700027)
	if !strings.Contains(description(doc), "is not registered on application") {
		t.Errorf("description %q", description(doc))
	}
}

func sha1Sum(b []byte) []byte   { s := sha1Of(b); return s[:] }
func sha256Sum(b []byte) []byte { s := sha256Of(b); return s[:] }
