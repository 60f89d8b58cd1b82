package sts_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestCertificateAssertionErrors checks each refusal of a certificate
// assertion: status, OAuth error, AADSTS code and the telling part of
// Entra's text.
func TestCertificateAssertionErrors(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	now := time.Now()
	c := newTestCert(t, "client", now.Add(-time.Hour), now.Add(24*time.Hour))
	e.registerCert(e.contoso.ID, e.provider.ID, c)
	other := newTestCert(t, "other", now.Add(-time.Hour), now.Add(time.Hour))
	expired := newTestCert(t, "expired", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	expiredApp, err := e.dir.CreateApplication(e.ctx, e.contoso.ID, directory.Application{DisplayName: "expired-cert"})
	must(t, err)
	_, err = e.dir.CreateServicePrincipal(e.ctx, e.contoso.ID, expiredApp.AppID)
	must(t, err)
	e.registerCert(e.contoso.ID, expiredApp.ID, expired)

	// An application whose certificate has an EC key: only RSA keys sign
	// client assertions.
	ecApp, err := e.dir.CreateApplication(e.ctx, e.contoso.ID, directory.Application{DisplayName: "ec-cert"})
	must(t, err)
	_, err = e.dir.CreateServicePrincipal(e.ctx, e.contoso.ID, ecApp.AppID)
	must(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	ecTmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ec"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	ecDER, err := x509.CreateCertificate(rand.Reader, ecTmpl, ecTmpl, &ecKey.PublicKey, ecKey)
	must(t, err)
	ecCert, err := x509.ParseCertificate(ecDER)
	must(t, err)
	e.registerCert(e.contoso.ID, ecApp.ID, testCert{cert: ecCert})

	pid := e.provider.AppID
	v2 := e.tokenURL(e.contoso.ID, true)
	graph := "https://graph.microsoft.com/.default"

	cases := []struct {
		name      string
		clientID  string
		assertion string
		form      map[string]string // overrides
		status    int
		oauth     string
		code      int
		contains  string
	}{
		{name: "malformed", assertion: "a.b", status: 400, oauth: "invalid_request", code: 50027, contains: "JWT token is invalid or malformed."},
		{name: "no exp", assertion: certAssertion(t, c, pid, v2, func(h, cl map[string]any) { delete(cl, "exp") }),
			status: 400, oauth: "invalid_request", code: 50027},
		{name: "sub is not iss", assertion: certAssertion(t, c, pid, v2, func(h, cl map[string]any) { cl["sub"] = expiredApp.AppID }),
			status: 401, oauth: "invalid_client", code: 50048},
		{name: "iss is another client", assertion: certAssertion(t, c, expiredApp.AppID, v2, nil),
			status: 401, oauth: "invalid_client", code: 700021, contains: "doesn't match 'client_id' parameter"},
		{name: "aud another tenant's endpoint", assertion: certAssertion(t, c, pid, e.tokenURL(e.fabrikam.ID, true), nil),
			status: 401, oauth: "invalid_client", code: 700023, contains: "audience claim does not match"},
		{name: "aud Entra's host", assertion: certAssertion(t, c, pid, "https://login.microsoftonline.com/"+e.contoso.ID+"/oauth2/v2.0/token", nil),
			status: 401, oauth: "invalid_client", code: 700023},
		{name: "aud the issuer", assertion: certAssertion(t, c, pid, e.srv.URL+"/"+e.contoso.ID+"/v2.0", nil),
			status: 401, oauth: "invalid_client", code: 700023},
		{name: "expired", assertion: certAssertion(t, c, pid, v2, func(h, cl map[string]any) { cl["exp"] = now.Add(-6 * time.Minute).Unix() }),
			status: 401, oauth: "invalid_client", code: 700024, contains: "not within its valid time range"},
		{name: "not yet valid", assertion: certAssertion(t, c, pid, v2, func(h, cl map[string]any) { cl["nbf"] = now.Add(6 * time.Minute).Unix() }),
			status: 401, oauth: "invalid_client", code: 700024},
		{name: "unregistered certificate", assertion: certAssertion(t, other, pid, v2, nil),
			status: 401, oauth: "invalid_client", code: 700027, contains: "is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '"},
		{name: "registered thumbprint, other key's signature", assertion: certAssertion(t, other, pid, v2, func(h, cl map[string]any) { h["x5t#S256"] = c.x5tS256() }),
			status: 401, oauth: "invalid_client", code: 700027, contains: "Client assertion contains an invalid signature. [Reason - The provided signature value did not match"},
		{name: "x5c of one certificate, x5t#S256 of another", assertion: certAssertion(t, c, pid, v2, func(h, cl map[string]any) {
			h["x5c"] = []string{base64.StdEncoding.EncodeToString(other.cert.Raw)}
		}), status: 401, oauth: "invalid_client", code: 700027, contains: "does not match the certificate in x5c"},
		{name: "x5c of an unregistered certificate", assertion: certAssertion(t, other, pid, v2, func(h, cl map[string]any) {
			delete(h, "x5t#S256")
			h["x5c"] = []string{base64.StdEncoding.EncodeToString(other.cert.Raw), base64.StdEncoding.EncodeToString(c.cert.Raw)}
		}), status: 401, oauth: "invalid_client", code: 700027, contains: "not registered"},
		{name: "no certificate named", assertion: certAssertion(t, c, pid, v2, func(h, cl map[string]any) { delete(h, "x5t#S256"); h["kid"] = "whatever" }),
			status: 401, oauth: "invalid_client", code: 700027},
		{name: "expired key credential", clientID: expiredApp.AppID, assertion: certAssertion(t, expired, expiredApp.AppID, v2, nil),
			status: 401, oauth: "invalid_client", code: 700027, contains: "The key used is expired."},
		{name: "EC certificate", clientID: ecApp.AppID, assertion: certAssertion(t, c, ecApp.AppID, v2, func(h, cl map[string]any) {
			h["x5t#S256"] = testCert{cert: ecCert}.x5tS256()
		}), status: 401, oauth: "invalid_client", code: 700027, contains: "not an RSA key"},
		{name: "alg none", assertion: certAssertion(t, c, pid, v2, func(h, cl map[string]any) { h["alg"] = "none" }) + "AA",
			status: 401, oauth: "invalid_client", code: 700027, contains: "'none' is not supported"},
		{name: "HS256 keyed with the certificate", assertion: certAssertion(t, c, pid, v2, func(h, cl map[string]any) { h["alg"] = "HS256" }),
			status: 401, oauth: "invalid_client", code: 700027, contains: "'HS256' is not supported"},
		{name: "RS512", assertion: certAssertion(t, c, pid, v2, func(h, cl map[string]any) { h["alg"] = "RS512" }),
			status: 401, oauth: "invalid_client", code: 700027, contains: "'RS512' is not supported"},
		{name: "no client_assertion_type", assertion: certAssertion(t, c, pid, v2, nil), form: map[string]string{"client_assertion_type": ""},
			status: 400, oauth: "invalid_request", code: 900144, contains: "'client_assertion_type'"},
		{name: "wrong client_assertion_type", assertion: certAssertion(t, c, pid, v2, nil), form: map[string]string{"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"},
			status: 400, oauth: "invalid_request", code: 90023},
		{name: "type without assertion", assertion: "", status: 400, oauth: "invalid_request", code: 900144, contains: "'client_assertion'"},
		{name: "assertion and secret", assertion: certAssertion(t, c, pid, v2, nil), form: map[string]string{"client_secret": e.providerSecret},
			status: 400, oauth: "invalid_request", code: 90023},
	}
	for _, tc := range cases {
		clientID := tc.clientID
		if clientID == "" {
			clientID = pid
		}
		form := assertionForm(clientID, tc.assertion, graph)
		for k, v := range tc.form {
			if v == "" {
				form.Del(k)
			} else {
				form.Set(k, v)
			}
		}
		resp, doc := e.post(v2, form, nil)
		if tc.status == 200 {
			if resp.StatusCode != 200 {
				t.Errorf("%s: %d %s", tc.name, resp.StatusCode, description(doc))
			}
			continue
		}
		wantAAD(t, tc.name, resp, doc, tc.status, tc.oauth, tc.code)
		if !strings.Contains(description(doc), tc.contains) {
			t.Errorf("%s: description %q, want %q", tc.name, description(doc), tc.contains)
		}
		if a := e.lastAudit(); a.Action != "token.issue" || a.Result != "AADSTS"+itoa(tc.code) {
			t.Errorf("%s: audit %+v", tc.name, a)
		}
	}
}
