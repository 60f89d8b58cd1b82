package sts_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// exchangeToken gets the workload's managed identity token for the token
// exchange audience, through ManagedIdentityCredential.
func (e *env) exchangeToken(t *testing.T, m *miWorkload) string {
	t.Helper()
	m.use(t)
	// The workload's user-assigned identity: only those may be an app's
	// federated credential.
	tok, err := e.miCredential(azidentity.ClientID(m.worker.AppID)).GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{directory.TokenExchangeAudience + "/.default"}, Claims: noCache})
	must(t, err)
	return tok.Token
}

// TestCrossTenantManagedIdentityFederation is Entra's "managed identity as
// a federated identity credential of a multi-tenant app": a workload in
// contoso holds a managed identity token (issuer: contoso's v2 issuer on
// this server); the provider app, whose service principal is in fabrikam,
// trusts that identity through a federated credential; the workload
// presents its token as the client assertion and gets a fabrikam token.
// No secret crosses a tenant, and this server verifies the assertion with
// its own keys, without a request to itself.
func TestCrossTenantManagedIdentityFederation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		m := e.newWorkload(e.contoso.ID, "bridge")
		contosoIssuer := "https://login.microsoftonline.com/" + e.contoso.ID + "/v2.0" // managed identity tokens carry Entra's issuer
		e.addFIC(e.contoso.ID, e.provider.ID, "contoso-bridge", contosoIssuer, m.worker.ID, directory.TokenExchangeAudience)
		m.use(t)
		mi := e.miCredential(azidentity.ClientID(m.worker.AppID))

		cred, err := azidentity.NewClientAssertionCredential(e.fabrikam.ID, e.provider.AppID, func(ctx context.Context) (string, error) {
			tok, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{directory.TokenExchangeAudience + "/.default"}, Claims: noCache})
			return tok.Token, err
		}, &azidentity.ClientAssertionCredentialOptions{ClientOptions: e.clientOptions(), DisableInstanceDiscovery: true})
		must(t, err)
		tok, err := cred.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{ordersURI + "/.default"}, EnableCAE: true})
		must(t, err)
		c, err := e.verifier.Verify(e.ctx, tok.Token, e.orders.AppID)
		must(t, err)
		if c.TenantID != e.fabrikam.ID || c.ObjectID != e.providerSPOther.ID || c.AZP != e.provider.AppID || c.AZPACR != "2" ||
			c.IDP != e.srv.URL+"/"+e.contoso.ID+"/" {
			t.Errorf("fabrikam token: tid %s oid %s azp %s azpacr %s idp %s", c.TenantID, c.ObjectID, c.AZP, c.AZPACR, c.IDP)
		}

		// A federated credential for someone else: AADSTS700213, as the SDK reports it.
		other, err := e.dir.CreateApplication(e.ctx, e.contoso.ID, directory.Application{DisplayName: "other", SignInAudience: directory.AudienceMultipleOrgs})
		must(t, err)
		_, err = e.dir.CreateServicePrincipal(e.ctx, e.fabrikam.ID, other.AppID)
		must(t, err)
		e.addFIC(e.contoso.ID, other.ID, "someone-else", contosoIssuer, "00000000-0000-0000-0000-000000000001", directory.TokenExchangeAudience)
		cred, err = azidentity.NewClientAssertionCredential(e.fabrikam.ID, other.AppID, func(ctx context.Context) (string, error) {
			tok, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{directory.TokenExchangeAudience + "/.default"}, Claims: noCache})
			return tok.Token, err
		}, &azidentity.ClientAssertionCredentialOptions{ClientOptions: e.clientOptions(), DisableInstanceDiscovery: true})
		must(t, err)
		if _, err := cred.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{ordersURI + "/.default"}}); err == nil ||
			!strings.Contains(err.Error(), "AADSTS700213") {
			t.Errorf("subject mismatch: %v", err)
		}
	})
}

// TestFederationErrors checks each refusal of a federated assertion,
// foreign and cross-tenant: status, OAuth error and AADSTS code.
func TestFederationErrors(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	is := newTestIssuer(t)
	m := e.newWorkload(e.contoso.ID, "bridge")
	contosoIssuer := "https://login.microsoftonline.com/" + e.contoso.ID + "/v2.0" // managed identity tokens carry Entra's issuer
	e.addFIC(e.contoso.ID, e.provider.ID, "contoso-bridge", contosoIssuer, m.worker.ID, directory.TokenExchangeAudience)
	e.addFIC(e.contoso.ID, e.provider.ID, "payments", is.url, workloadSubject, directory.TokenExchangeAudience)
	miToken := e.exchangeToken(t, m)

	// Apps in awkward states, all multi-tenant, homed in contoso.
	app := func(name string, spInFabrikam bool) *directory.Application {
		a, err := e.dir.CreateApplication(e.ctx, e.contoso.ID, directory.Application{DisplayName: name, SignInAudience: directory.AudienceMultipleOrgs})
		must(t, err)
		if spInFabrikam {
			_, err = e.dir.CreateServicePrincipal(e.ctx, e.fabrikam.ID, a.AppID)
			must(t, err)
		}
		return a
	}
	wrongSubject := app("wrong-subject", true)
	e.addFIC(e.contoso.ID, wrongSubject.ID, "someone-else", contosoIssuer, "00000000-0000-0000-0000-000000000001", directory.TokenExchangeAudience)
	caseSubject := app("case-subject", true)
	e.addFIC(e.contoso.ID, caseSubject.ID, "upper", contosoIssuer, strings.ToUpper(m.worker.ID), directory.TokenExchangeAudience)
	wrongAudience := app("wrong-audience", true)
	e.addFIC(e.contoso.ID, wrongAudience.ID, "audience", contosoIssuer, m.worker.ID, "api://somewhere-else")
	noSP := app("no-sp-in-fabrikam", false)
	e.addFIC(e.contoso.ID, noSP.ID, "bridge", contosoIssuer, m.worker.ID, directory.TokenExchangeAudience)
	noFIC := app("no-fic", true)
	unreachable := app("unreachable", true)
	e.addFIC(e.contoso.ID, unreachable.ID, "gone", "https://127.0.0.1:1/gone", workloadSubject, directory.TokenExchangeAudience)

	// Another tenant's identity.
	northwind, err := e.dir.CreateTenant(e.ctx, "northwind")
	must(t, err)
	nw := e.newWorkload(northwind.Tenant.ID, "intruder")
	northwindToken := e.exchangeToken(t, nw)

	// A tenant that is gone, and a token of ours that is not app-only.
	doomed, err := e.dir.CreateTenant(e.ctx, "doomed")
	must(t, err)
	doomedIssuer := e.srv.URL + "/" + doomed.Tenant.ID + "/v2.0"
	e.addFIC(e.contoso.ID, e.provider.ID, "doomed", doomedIssuer, "doomed-subject", directory.TokenExchangeAudience)
	now := time.Now()
	mint := func(keys *pki.KeySet, iss, tid, sub, idtyp string) string {
		raw, err := token.Mint(keys.Current(), token.Claims{Audience: directory.TokenExchangeAppID, Issuer: iss, TenantID: tid, ObjectID: sub, Subject: sub,
			IdentType: idtyp, IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: now.Add(time.Hour).Unix(), Version: "2.0"})
		must(t, err)
		return raw
	}
	doomedToken := mint(e.keys, doomedIssuer, doomed.Tenant.ID, "doomed-subject", "app")
	_, err = e.dir.DeleteTenant(e.ctx, doomed.Tenant.ID)
	must(t, err)
	userToken := mint(e.keys, contosoIssuer, e.contoso.ID, m.worker.ID, "")
	foreignKeys, err := pki.LoadOrCreateKeySet(t.TempDir())
	must(t, err)
	forged := mint(foreignKeys, contosoIssuer, e.contoso.ID, m.worker.ID, "app")

	// Entra's own issuers: the owner's tenant and a user-assigned identity
	// only (AADSTS700236). The provider app (homed in contoso) trusts
	// contoso's system-assigned identity, and northwind's worker; an app
	// homed in northwind trusts contoso's worker.
	e.addFIC(e.contoso.ID, e.provider.ID, "contoso-system", contosoIssuer, m.system.ID, directory.TokenExchangeAudience)
	m.use(t)
	systemTok, err := e.miCredential(nil).GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{directory.TokenExchangeAudience + "/.default"}, Claims: noCache})
	must(t, err)
	northwindIssuer := "https://login.microsoftonline.com/" + northwind.Tenant.ID + "/v2.0"
	e.addFIC(e.contoso.ID, e.provider.ID, "northwind-worker", northwindIssuer, nw.worker.ID, directory.TokenExchangeAudience)
	nwApp, err := e.dir.CreateApplication(e.ctx, northwind.Tenant.ID, directory.Application{DisplayName: "northwind-app", SignInAudience: directory.AudienceMultipleOrgs})
	must(t, err)
	_, err = e.dir.CreateServicePrincipal(e.ctx, e.fabrikam.ID, nwApp.AppID)
	must(t, err)
	e.addFIC(northwind.Tenant.ID, nwApp.ID, "contoso-worker", contosoIssuer, m.worker.ID, directory.TokenExchangeAudience)

	graph := "https://graph.microsoft.com/.default"
	cases := []struct {
		name      string
		tenant    string // default fabrikam
		clientID  string // default provider
		assertion string
		status    int
		oauth     string
		code      int
		contains  string
	}{
		{name: "no federated credential", clientID: noFIC.AppID, assertion: miToken, status: 400, oauth: "invalid_request", code: 70021,
			contains: "Assertion Issuer: '" + contosoIssuer + "'. Assertion Subject: '" + m.worker.ID + "'"},
		{name: "another tenant's identity trusted by the app", assertion: northwindToken, status: 401, oauth: "invalid_client", code: 700236,
			contains: "issued by issuer '" + northwindIssuer + "' may not be used for federated identity credential flows"},
		{name: "the identity's tenant, another tenant's app", clientID: nwApp.AppID, assertion: miToken, status: 401, oauth: "invalid_client", code: 700236,
			contains: contosoIssuer},
		{name: "a system-assigned identity", assertion: systemTok.Token, status: 401, oauth: "invalid_client", code: 700236},
		{name: "an issuer nobody trusts", assertion: signJWT(t, "RS256", is.key, map[string]any{"kid": is.kid},
			map[string]any{"iss": "https://evil.example/oidc", "sub": workloadSubject, "aud": directory.TokenExchangeAudience, "exp": now.Add(time.Hour).Unix()}),
			status: 401, oauth: "invalid_client", code: 700211},
		{name: "audience", clientID: wrongAudience.AppID, assertion: miToken, status: 401, oauth: "invalid_client", code: 700212,
			contains: "assertion audience '" + directory.TokenExchangeAppID + "'"},
		{name: "subject", clientID: wrongSubject.AppID, assertion: miToken, status: 401, oauth: "invalid_client", code: 700213,
			contains: "assertion subject '" + m.worker.ID + "'. Please note that the matching is done using a case-sensitive comparison."},
		{name: "subject in another case", clientID: caseSubject.AppID, assertion: miToken, status: 401, oauth: "invalid_client", code: 700213},
		{name: "foreign issuer, wrong subject", assertion: is.token(t, "system:serviceaccount:payments:other", directory.TokenExchangeAudience, nil),
			status: 401, oauth: "invalid_client", code: 700213},
		{name: "foreign issuer, wrong audience", assertion: is.token(t, workloadSubject, "api://other", nil), status: 401, oauth: "invalid_client", code: 700212},
		{name: "service principal absent from the tenant", clientID: noSP.AppID, assertion: miToken, status: 400, oauth: "unauthorized_client", code: 700016},
		{name: "expired", assertion: is.token(t, workloadSubject, directory.TokenExchangeAudience, func(c map[string]any) {
			c["exp"] = now.Add(-10 * time.Minute).Unix()
		}), status: 401, oauth: "invalid_client", code: 700024},
		{name: "not yet valid", assertion: is.token(t, workloadSubject, directory.TokenExchangeAudience, func(c map[string]any) {
			c["nbf"] = now.Add(10 * time.Minute).Unix()
		}), status: 401, oauth: "invalid_client", code: 700024},
		{name: "signed by another key", assertion: signJWT(t, "RS256", testRSAKey(t, "attacker"), map[string]any{"kid": is.kid},
			map[string]any{"iss": is.url, "sub": workloadSubject, "aud": directory.TokenExchangeAudience, "exp": now.Add(time.Hour).Unix()}),
			status: 401, oauth: "invalid_client", code: 700027},
		{name: "unknown kid", assertion: signJWT(t, "RS256", is.key, map[string]any{"kid": "rotated-away"},
			map[string]any{"iss": is.url, "sub": workloadSubject, "aud": directory.TokenExchangeAudience, "exp": now.Add(time.Hour).Unix()}),
			status: 401, oauth: "invalid_client", code: 700027},
		{name: "alg none", assertion: signJWT(t, "none", nil, nil,
			map[string]any{"iss": is.url, "sub": workloadSubject, "aud": directory.TokenExchangeAudience, "exp": now.Add(time.Hour).Unix()}) + "AA",
			status: 400, oauth: "invalid_request", code: 50027},
		{name: "HS256 keyed with the issuer's modulus", assertion: signJWT(t, "HS256", is.key.N.Bytes(), map[string]any{"kid": is.kid},
			map[string]any{"iss": is.url, "sub": workloadSubject, "aud": directory.TokenExchangeAudience, "exp": now.Add(time.Hour).Unix()}),
			status: 400, oauth: "invalid_request", code: 50027},
		{name: "issuer unreachable", clientID: unreachable.AppID, assertion: signJWT(t, "RS256", is.key, map[string]any{"kid": is.kid},
			map[string]any{"iss": "https://127.0.0.1:1/gone", "sub": workloadSubject, "aud": directory.TokenExchangeAudience, "exp": now.Add(time.Hour).Unix()}),
			status: 400, oauth: "invalid_request", code: 50166},
		{name: "our issuer, not our key", assertion: forged, status: 401, oauth: "invalid_client", code: 700027},
		{name: "our issuer, a user's token", assertion: userToken, status: 401, oauth: "invalid_client", code: 700229},
		{name: "our issuer, tenant deleted", assertion: doomedToken, status: 401, oauth: "invalid_client", code: 700027},
		{name: "not a JWT", assertion: "not-a-jwt", status: 400, oauth: "invalid_request", code: 50027},
	}
	for _, tc := range cases {
		tenant, clientID := tc.tenant, tc.clientID
		if tenant == "" {
			tenant = e.fabrikam.ID
		}
		if clientID == "" {
			clientID = e.provider.AppID
		}
		resp, doc := e.post(e.tokenURL(tenant, true), assertionForm(clientID, tc.assertion, graph), nil)
		wantAAD(t, tc.name, resp, doc, tc.status, tc.oauth, tc.code)
		if !strings.Contains(description(doc), tc.contains) {
			t.Errorf("%s: description %q, want %q", tc.name, description(doc), tc.contains)
		}
		if a := e.lastAudit(); a.Result != "AADSTS"+itoa(tc.code) {
			t.Errorf("%s: audit result %s", tc.name, a.Result)
		}
	}

	// The accepted ones, for contrast: the same client and tenant.
	for name, assertion := range map[string]string{
		"managed identity token":          miToken,
		"foreign issuer":                  is.token(t, workloadSubject, directory.TokenExchangeAudience, nil),
		"foreign issuer, token file line": is.token(t, workloadSubject, directory.TokenExchangeAudience, nil) + "\n",
		"audience as the exchange app id": is.token(t, workloadSubject, directory.TokenExchangeAppID, nil),
	} {
		resp, doc := e.post(e.tokenURL(e.fabrikam.ID, true), assertionForm(e.provider.AppID, assertion, graph), nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", name, resp.StatusCode, description(doc))
		}
	}
	// Federated assertions are bearer tokens the workload reuses until they
	// expire: the same one twice is not a replay.
	for range 2 {
		if resp, doc := e.post(e.tokenURL(e.fabrikam.ID, true), assertionForm(e.provider.AppID, miToken, graph), nil); resp.StatusCode != http.StatusOK {
			t.Errorf("reused federated assertion: %d %s", resp.StatusCode, description(doc))
		}
	}
}
