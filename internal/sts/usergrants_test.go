package sts_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/token"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

// userFixture is a user of fabrikam who consented to the provider's use
// of Graph's User.Read, and a code the sign-in pages would have issued.
type userFixture struct {
	user     *directory.User
	redirect string
}

func (e *env) signedInUser(t *testing.T) userFixture {
	t.Helper()
	const redirect = "https://provider.example/signin-oidc"
	_, err := e.dir.UpdateApplication(e.ctx, e.contoso.ID, e.provider.ID, func(a *directory.Application) error {
		a.WebRedirectURIs = []string{redirect}
		return nil
	})
	must(t, err)
	u, err := e.dir.CreateUser(e.ctx, e.fabrikam.ID, directory.NewUser{UserPrincipalName: "ada@fabrikam.onmicrosoft.com",
		DisplayName: "Ada", Password: "correct horse battery staple 1!", AccountEnabled: true})
	must(t, err)
	graph, err := e.dir.ServicePrincipalByAppID(e.ctx, e.fabrikam.ID, directory.GraphAppID)
	must(t, err)
	_, err = e.dir.CreateDelegatedGrant(e.ctx, e.fabrikam.ID, directory.OAuth2PermissionGrant{ClientID: e.providerSPOther.ID,
		ConsentType: directory.ConsentPrincipal, PrincipalID: u.ID, ResourceID: graph.ID, Scope: "User.Read"})
	must(t, err)
	return userFixture{user: u, redirect: redirect}
}

func (e *env) code(t *testing.T, c userauth.Code) string {
	t.Helper()
	s, err := userauth.SealCode(e.kek, c)
	must(t, err)
	return s
}

func (f userFixture) codeFor(e *env, scopes ...string) userauth.Code {
	return userauth.Code{TenantID: e.fabrikam.ID, ClientID: e.provider.AppID, RedirectURI: f.redirect, UserID: f.user.ID,
		Scopes: scopes, Version: 2, Nonce: "nonce-1", AuthTime: time.Now(), AMR: []string{"pwd", "mfa"},
		Expires: time.Now().Add(userauth.CodeLifetime)}
}

func claimsOf(t *testing.T, raw string) token.Claims {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	must(t, err)
	var c token.Claims
	must(t, json.Unmarshal(b, &c))
	return c
}

func aadstsOf(doc map[string]any) float64 {
	if codes, ok := doc["error_codes"].([]any); ok && len(codes) > 0 {
		return codes[0].(float64)
	}
	return 0
}

func TestAuthorizationCodeAndRefreshRotation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		f := e.signedInUser(t)
		scopes := "https://graph.microsoft.com/User.Read openid profile offline_access"
		code := e.code(t, f.codeFor(e, strings.Fields(scopes)...))
		form := url.Values{"grant_type": {"authorization_code"}, "client_id": {e.provider.AppID}, "client_secret": {e.providerSecret},
			"code": {code}, "redirect_uri": {f.redirect}, "scope": {scopes}, "client_info": {"1"}}
		resp, doc := e.post(e.tokenURL("organizations", true), form, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("code redemption: %d %v", resp.StatusCode, doc)
		}
		at := claimsOf(t, doc["access_token"].(string))
		if at.Scope != "User.Read" || at.ObjectID != f.user.ID || at.TenantID != e.fabrikam.ID || at.Audience != directory.GraphResource ||
			at.AppID != e.provider.AppID || at.AppIDACR != "1" || at.UPN != f.user.UserPrincipalName {
			t.Fatalf("access token claims: %+v", at)
		}
		id := claimsOf(t, doc["id_token"].(string))
		if id.Audience != e.provider.AppID || id.Nonce != "nonce-1" || id.ObjectID != f.user.ID || id.Subject == "" || id.Subject == f.user.ID ||
			id.PreferredUsername != f.user.UserPrincipalName || !strings.HasSuffix(id.Issuer, "/"+e.fabrikam.ID+"/v2.0") {
			t.Fatalf("id token claims: %+v", id)
		}
		ci, err := base64.RawURLEncoding.DecodeString(doc["client_info"].(string))
		must(t, err)
		if !strings.Contains(string(ci), f.user.ID) || !strings.Contains(string(ci), e.fabrikam.ID) {
			t.Fatalf("client_info = %s", ci)
		}
		if doc["scope"] != "https://graph.microsoft.com/User.Read openid profile offline_access" {
			t.Fatalf("scope = %v", doc["scope"])
		}
		rt1, _ := doc["refresh_token"].(string)
		if rt1 == "" {
			t.Fatal("no refresh token for offline_access")
		}
		// A code is redeemed once.
		if resp, doc := e.post(e.tokenURL("organizations", true), form, nil); resp.StatusCode != 400 || aadstsOf(doc) != 54005 {
			t.Fatalf("second redemption: %d %v", resp.StatusCode, doc)
		}

		// Refresh: a new refresh token each time; the spent one, presented
		// again, revokes the family, its successor included.
		refresh := func(rt string) (*http.Response, map[string]any) {
			return e.post(e.tokenURL(e.fabrikam.ID, true), url.Values{"grant_type": {"refresh_token"}, "client_id": {e.provider.AppID},
				"client_secret": {e.providerSecret}, "refresh_token": {rt}, "scope": {"https://graph.microsoft.com/User.Read offline_access"}}, nil)
		}
		resp, doc = refresh(rt1)
		rt2, _ := doc["refresh_token"].(string)
		if resp.StatusCode != 200 || rt2 == "" || rt2 == rt1 || claimsOf(t, doc["access_token"].(string)).ObjectID != f.user.ID {
			t.Fatalf("refresh: %d %v", resp.StatusCode, doc)
		}
		if resp, doc := refresh(rt1); resp.StatusCode != 400 || aadstsOf(doc) != 50173 {
			t.Fatalf("spent refresh token reused: %d %v", resp.StatusCode, doc)
		}
		if resp, doc := refresh(rt2); resp.StatusCode != 400 || aadstsOf(doc) != 50173 {
			t.Fatalf("the family was not revoked: %d %v", resp.StatusCode, doc)
		}
		// Only the refresh token's own client redeems it.
		resp, doc = e.post(e.tokenURL("organizations", true), url.Values{"grant_type": {"authorization_code"}, "client_id": {e.provider.AppID},
			"client_secret": {e.providerSecret}, "code": {e.code(t, f.codeFor(e, strings.Fields(scopes)...))}, "redirect_uri": {f.redirect}}, nil)
		rt3, _ := doc["refresh_token"].(string)
		if resp.StatusCode != 200 || rt3 == "" {
			t.Fatalf("second sign-in: %d %v", resp.StatusCode, doc)
		}
		// Consent revoked: the next refresh gets no token.
		grants, err := e.dir.ListDelegatedGrants(e.ctx, e.fabrikam.ID, directory.GrantFilter{ClientID: e.providerSPOther.ID})
		must(t, err)
		for _, g := range grants {
			must(t, e.dir.DeleteDelegatedGrant(e.ctx, e.fabrikam.ID, g.ID))
		}
		if resp, doc := refresh(rt3); resp.StatusCode != 400 || aadstsOf(doc) != 65001 {
			t.Fatalf("refresh after the grant was removed: %d %v", resp.StatusCode, doc)
		}
	})
}

func TestAuthorizationCodeRefusals(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	f := e.signedInUser(t)
	verifier := strings.Repeat("v3rifier", 6)
	sum := sha256.Sum256([]byte(verifier))
	pkce := f.codeFor(e, "User.Read")
	pkce.CodeChallenge, pkce.CodeChallengeMethod = base64.RawURLEncoding.EncodeToString(sum[:]), "S256"
	base := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "client_id": {e.provider.AppID}, "client_secret": {e.providerSecret},
			"code": {code}, "redirect_uri": {f.redirect}}
	}
	expired := f.codeFor(e, "User.Read")
	expired.Expires = time.Now().Add(-time.Second)
	otherClient := f.codeFor(e, "User.Read")
	otherClient.ClientID = e.orders.AppID
	noSecret := base(e.code(t, f.codeFor(e, "User.Read")))
	noSecret.Del("client_secret")
	wrongRedirect := base(e.code(t, f.codeFor(e, "User.Read")))
	wrongRedirect.Set("redirect_uri", "https://evil.example/cb")
	badVerifier := base(e.code(t, pkce))
	badVerifier.Set("code_verifier", strings.Repeat("x", 48))
	goodVerifier := base(e.code(t, pkce))
	goodVerifier.Set("code_verifier", verifier)
	v1 := f.codeFor(e, "User.Read")
	v1.Version = 1

	for _, tc := range []struct {
		name   string
		tenant string
		form   url.Values
		status int
		code   float64
	}{
		{"not a code", "organizations", base("nonsense"), 400, 70000},
		{"expired", "organizations", base(e.code(t, expired)), 400, 70000},
		{"another client's code", "organizations", base(e.code(t, otherClient)), 400, 70000},
		{"another tenant", e.contoso.ID, base(e.code(t, f.codeFor(e, "User.Read"))), 400, 70000},
		{"v1 code at v2", "organizations", base(e.code(t, v1)), 400, 70000},
		{"confidential client without its secret", "organizations", noSecret, 401, 7000218},
		{"redirect mismatch", "organizations", wrongRedirect, 400, 500112},
		{"wrong PKCE verifier", "organizations", badVerifier, 400, 501481},
		{"right PKCE verifier", "organizations", goodVerifier, 200, 0},
	} {
		resp, doc := e.post(e.tokenURL(tc.tenant, true), tc.form, nil)
		if resp.StatusCode != tc.status || aadstsOf(doc) != tc.code {
			t.Errorf("%s: %d %v, want %d AADSTS%v", tc.name, resp.StatusCode, doc, tc.status, tc.code)
		}
	}
}

func TestDeviceCodeFlow(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		f := e.signedInUser(t)
		_, err := e.dir.UpdateApplication(e.ctx, e.contoso.ID, e.provider.ID, func(a *directory.Application) error {
			a.IsFallbackPublicClient = true
			return nil
		})
		must(t, err)
		resp, doc := e.post(e.srv.URL+"/organizations/oauth2/v2.0/devicecode", url.Values{"client_id": {e.provider.AppID},
			"scope": {"https://graph.microsoft.com/User.Read offline_access"}}, nil)
		if resp.StatusCode != 200 || doc["user_code"] == nil || doc["device_code"] == nil || !strings.HasSuffix(doc["verification_uri"].(string), "/common/oauth2/deviceauth") {
			t.Fatalf("devicecode: %d %v", resp.StatusCode, doc)
		}
		poll := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {e.provider.AppID},
			"device_code": {doc["device_code"].(string)}}
		if resp, doc := e.post(e.tokenURL("organizations", true), poll, nil); resp.StatusCode != 400 || doc["error"] != "authorization_pending" {
			t.Fatalf("poll before approval: %d %v", resp.StatusCode, doc)
		}
		must(t, e.st.DecideDeviceCode(e.ctx, doc["user_code"].(string), time.Now(), true, f.user.ID, e.fabrikam.ID, time.Now(), []string{"pwd"}))
		resp, tok := e.post(e.tokenURL("organizations", true), poll, nil)
		if resp.StatusCode != 200 || claimsOf(t, tok["access_token"].(string)).ObjectID != f.user.ID || tok["refresh_token"] == nil {
			t.Fatalf("poll after approval: %d %v", resp.StatusCode, tok)
		}
		if resp, doc := e.post(e.tokenURL("organizations", true), poll, nil); resp.StatusCode != 400 || doc["error"] != "invalid_grant" {
			t.Fatalf("poll after redemption: %d %v", resp.StatusCode, doc)
		}
	})
}

// MSAL Go's confidential client redeems the code, caches the account by
// its client_info, and gets a token for another Graph scope set silently
// with the refresh token (the refresh token grant, rotated).
func TestMSALAuthCodeThenSilent(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	f := e.signedInUser(t)
	graph, err := e.dir.ServicePrincipalByAppID(e.ctx, e.fabrikam.ID, directory.GraphAppID)
	must(t, err)
	grants, err := e.dir.ListDelegatedGrants(e.ctx, e.fabrikam.ID, directory.GrantFilter{ClientID: e.providerSPOther.ID, ResourceID: graph.ID})
	must(t, err)
	_, err = e.dir.UpdateDelegatedGrantScope(e.ctx, e.fabrikam.ID, grants[0].ID, "User.Read Mail.Read")
	must(t, err)

	cred, err := confidential.NewCredFromSecret(e.providerSecret)
	must(t, err)
	app, err := confidential.New(e.srv.URL+"/"+e.fabrikam.ID, e.provider.AppID, cred,
		confidential.WithHTTPClient(e.srv.Client()), confidential.WithInstanceDiscovery(false))
	must(t, err)
	code := e.code(t, f.codeFor(e, "https://graph.microsoft.com/User.Read", "openid", "profile", "offline_access"))
	res, err := app.AcquireTokenByAuthCode(e.ctx, code, f.redirect, []string{"https://graph.microsoft.com/User.Read"})
	if err != nil {
		t.Fatalf("AcquireTokenByAuthCode: %v", err)
	}
	if res.Account.HomeAccountID != f.user.ID+"."+e.fabrikam.ID || res.Account.PreferredUsername != f.user.UserPrincipalName {
		t.Fatalf("account = %+v", res.Account)
	}
	if claimsOf(t, res.AccessToken).Scope != "User.Read" {
		t.Fatalf("first token scp = %q", claimsOf(t, res.AccessToken).Scope)
	}
	silent, err := app.AcquireTokenSilent(e.ctx, []string{"https://graph.microsoft.com/Mail.Read"}, confidential.WithSilentAccount(res.Account))
	if err != nil {
		t.Fatalf("AcquireTokenSilent: %v", err)
	}
	if c := claimsOf(t, silent.AccessToken); c.Scope != "Mail.Read" || c.ObjectID != f.user.ID {
		t.Fatalf("silent token claims: %+v", c)
	}
	tokens, err := e.st.ListRefreshTokens(e.ctx, store.RefreshTokenQuery{TenantID: e.fabrikam.ID, UserID: f.user.ID})
	must(t, err)
	if len(tokens) != 2 || tokens[0].RedeemedAt.IsZero() || !tokens[1].RedeemedAt.IsZero() {
		t.Fatalf("refresh tokens after one silent refresh: %+v", tokens)
	}
}

// On-behalf-of: the provider's client gets a user token for a middle-tier
// API, which exchanges it for a Graph token as the same user.
func TestOnBehalfOf(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	f := e.signedInUser(t)
	mid, err := e.dir.CreateApplication(e.ctx, e.fabrikam.ID, directory.Application{DisplayName: "midtier",
		IdentifierURIs: []string{"api://fabrikam.onmicrosoft.com/midtier"},
		OAuth2PermissionScopes: []directory.PermissionScope{{ID: "7b8a3f10-4c6e-4b8e-9d2a-1f0e6c5b4a39", Value: "access_as_user", Type: "User",
			AdminConsentDisplayName: "Access the API", UserConsentDisplayName: "Access the API", IsEnabled: true}}})
	must(t, err)
	midSP, err := e.dir.CreateServicePrincipal(e.ctx, e.fabrikam.ID, mid.AppID)
	must(t, err)
	cred, err := e.dir.AddApplicationPassword(e.ctx, e.fabrikam.ID, mid.ID, "obo", time.Time{}, time.Time{})
	must(t, err)
	graph, err := e.dir.ServicePrincipalByAppID(e.ctx, e.fabrikam.ID, directory.GraphAppID)
	must(t, err)
	for _, g := range []directory.OAuth2PermissionGrant{
		{ClientID: e.providerSPOther.ID, ResourceID: midSP.ID, Scope: "access_as_user"},
		{ClientID: midSP.ID, ResourceID: graph.ID, Scope: "User.Read"},
	} {
		g.ConsentType, g.PrincipalID = directory.ConsentPrincipal, f.user.ID
		_, err := e.dir.CreateDelegatedGrant(e.ctx, e.fabrikam.ID, g)
		must(t, err)
	}
	resp, doc := e.post(e.tokenURL(e.fabrikam.ID, true), url.Values{"grant_type": {"authorization_code"}, "client_id": {e.provider.AppID},
		"client_secret": {e.providerSecret}, "redirect_uri": {f.redirect},
		"code": {e.code(t, f.codeFor(e, "api://fabrikam.onmicrosoft.com/midtier/access_as_user"))}}, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("user token for the middle tier: %d %v", resp.StatusCode, doc)
	}
	userToken := doc["access_token"].(string)
	obo := func(assertion, scope string) (*http.Response, map[string]any) {
		return e.post(e.tokenURL(e.fabrikam.ID, true), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
			"client_id": {mid.AppID}, "client_secret": {cred.SecretText}, "assertion": {assertion}, "scope": {scope},
			"requested_token_use": {"on_behalf_of"}}, nil)
	}
	resp, doc = obo(userToken, "https://graph.microsoft.com/User.Read")
	if resp.StatusCode != 200 {
		t.Fatalf("on-behalf-of: %d %v", resp.StatusCode, doc)
	}
	c := claimsOf(t, doc["access_token"].(string))
	if c.ObjectID != f.user.ID || c.AppID != mid.AppID || c.Scope != "User.Read" || c.Audience != directory.GraphResource {
		t.Fatalf("on-behalf-of token: %+v", c)
	}
	// Not consented for the middle tier: refused.
	if resp, doc := obo(userToken, "https://graph.microsoft.com/User.ReadBasic.All"); resp.StatusCode != 400 || aadstsOf(doc) != 65001 {
		t.Fatalf("unconsented scope: %d %v", resp.StatusCode, doc)
	}
	// A token for another audience, and an app-only token, are no assertion for it.
	if resp, doc := obo(doc["access_token"].(string), "https://graph.microsoft.com/User.Read"); resp.StatusCode != 400 || aadstsOf(doc) != 500131 {
		t.Fatalf("Graph token as assertion: %d %v", resp.StatusCode, doc)
	}
}

// A refresh token unused past its inactivity lifetime is refused with
// Entra's AADSTS700082.
func TestRefreshTokenInactivityExpiry(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	f := e.signedInUser(t)
	const value = "1.an-old-refresh-token-that-nobody-used-for-ninety-days"
	sum := sha256.Sum256([]byte(value))
	must(t, e.st.CreateRefreshToken(e.ctx, store.RefreshToken{ID: hex.EncodeToString(sum[:]), FamilyID: "fam", TenantID: e.fabrikam.ID,
		ClientID: e.provider.AppID, UserID: f.user.ID, Scope: "User.Read offline_access",
		Created: time.Now().Add(-91 * 24 * time.Hour), Expires: time.Now().Add(-24 * time.Hour)}))
	resp, doc := e.post(e.tokenURL(e.fabrikam.ID, true), url.Values{"grant_type": {"refresh_token"}, "client_id": {e.provider.AppID},
		"client_secret": {e.providerSecret}, "refresh_token": {value}, "scope": {"User.Read"}}, nil)
	if resp.StatusCode != 400 || aadstsOf(doc) != 700082 {
		t.Fatalf("expired refresh token: %d %v", resp.StatusCode, doc)
	}
}
