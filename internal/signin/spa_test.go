package signin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/sts"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

const (
	spaRedirect = "https://spa.provider.example/app"
	spaOrigin   = "https://spa.provider.example"
)

// tokenAnswer is a token endpoint response as a page's script reads it.
type tokenAnswer struct {
	status int
	header http.Header
	doc    map[string]any
}

func (a tokenAnswer) code() float64 {
	if codes, ok := a.doc["error_codes"].([]any); ok && len(codes) == 1 {
		n, _ := codes[0].(float64)
		return n
	}
	return 0
}

// fetch posts a token request as a browser's fetch() sends it: the form
// with Origin when origin is set (a cross-origin request), no cookies.
func fetch(t *testing.T, c *http.Client, endpoint string, form url.Values, origin string) tokenAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	testenv.Must(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	if origin != "" {
		req.Header.Set("Origin", origin)
		req.Header.Set("Sec-Fetch-Mode", "cors")
	}
	resp, err := c.Do(req)
	testenv.Must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := tokenAnswer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(body, &a.doc); err != nil {
		t.Fatalf("token endpoint answered %d %s", resp.StatusCode, body)
	}
	return a
}

// spaWorld is the world with a SPA redirect URI on the provider's app.
func spaWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, storetest.SQLite(t))
	_, err := w.env.Dir.UpdateApplication(context.Background(), w.fabrikam.Tenant.ID, w.app.ID, func(a *directory.Application) error {
		a.SPARedirectURIs = []string{spaRedirect}
		return nil
	})
	testenv.Must(t, err)
	return w
}

// spaCode signs alice in through the pages with the SPA redirect URI and
// returns the code; pkceOn says whether the request carries PKCE.
func (w *world) spaCode(t *testing.T, b *browser, pkceOn bool) (code, verifier string) {
	t.Helper()
	req, verifier := w.codeRequestPKCE(url.Values{"redirect_uri": {spaRedirect}, "response_mode": {"fragment"}})
	if !pkceOn {
		req.Del("code_challenge")
		req.Del("code_challenge_method")
		verifier = ""
	}
	p := b.get(authorizeURL("contoso", req))
	if p.status == http.StatusOK && strings.Contains(p.body, `name="username"`) {
		p = signIn(t, b, p, "alice@contoso.onmicrosoft.com")
	}
	if p.status == http.StatusOK && strings.Contains(p.body, "Permissions requested") {
		p = b.submit(p, url.Values{"decision": {"accept"}})
	}
	q := redirectParams(t, p, spaRedirect+"#")
	c := w.openCode(t, q.Get("code"))
	if !c.SPA || c.RedirectURI != spaRedirect {
		t.Fatalf("a SPA redirect's code = %+v", c)
	}
	return q.Get("code"), verifier
}

// TestSPAAuthorizationCodeFlow drives a single-page application's sign-in
// through the pages and redeems its code and refresh tokens at the real
// token endpoint as a browser's fetch does, with Entra's refusals for
// everything that is not a SPA's cross-origin redemption.
func TestSPAAuthorizationCodeFlow(t *testing.T) {
	w := spaWorld(t)
	ctx := context.Background()
	c := w.env.Client()
	endpoint := w.env.Server.URL + "/contoso/oauth2/v2.0/token"
	b := w.browser(t)
	code, verifier := w.spaCode(t, b, true)
	redeem := url.Values{"grant_type": {"authorization_code"}, "client_id": {w.app.AppID}, "code": {code},
		"redirect_uri": {spaRedirect}, "code_verifier": {verifier}, "scope": {"openid offline_access " + graphRead}}

	// Not cross-origin: AADSTS9002327, and the code is not spent. MSAL
	// Go's public client (a native app, which sends no Origin) is refused
	// so, as is a bare request.
	pca, err := public.New(w.app.AppID, public.WithAuthority(w.env.Server.URL+"/contoso"), public.WithHTTPClient(c),
		public.WithInstanceDiscovery(false))
	testenv.Must(t, err)
	_, err = pca.AcquireTokenByAuthCode(ctx, code, spaRedirect, []string{graphRead}, public.WithChallenge(verifier))
	if err == nil || !strings.Contains(err.Error(), "AADSTS9002327") {
		t.Fatalf("MSAL Go public client with a SPA's code: %v", err)
	}
	if a := fetch(t, c, endpoint, redeem, ""); a.status != http.StatusBadRequest || a.code() != 9002327 || a.doc["error"] != "invalid_request" {
		t.Fatalf("SPA code without Origin: %d %v", a.status, a.doc)
	}
	// A client secret on a SPA redemption: AADSTS700025.
	secret, err := w.env.Dir.AddApplicationPassword(ctx, w.fabrikam.Tenant.ID, w.app.ID, "web", time.Time{}, time.Time{})
	testenv.Must(t, err)
	withSecret := url.Values{"client_secret": {secret.SecretText}}
	for k, v := range redeem {
		withSecret[k] = v
	}
	if a := fetch(t, c, endpoint, withSecret, spaOrigin); a.status != http.StatusUnauthorized || a.code() != 700025 || a.doc["error"] != "invalid_client" {
		t.Fatalf("SPA code with a secret: %d %v", a.status, a.doc)
	}
	// The browser's redemption: tokens, readable by the page (CORS).
	a := fetch(t, c, endpoint, redeem, spaOrigin)
	if a.status != http.StatusOK || a.doc["access_token"] == nil || a.doc["id_token"] == nil {
		t.Fatalf("SPA redemption: %d %v", a.status, a.doc)
	}
	if got := a.header.Get("Access-Control-Allow-Origin"); got != spaOrigin {
		t.Fatalf("Access-Control-Allow-Origin = %q", got)
	}
	if a.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatal("credentials allowed cross-origin")
	}
	rt1, _ := a.doc["refresh_token"].(string)
	if rt1 == "" {
		t.Fatal("no refresh token")
	}

	// Its refresh token: only cross-origin, never with a secret.
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {w.app.AppID}, "refresh_token": {rt1},
		"scope": {"openid offline_access " + graphRead}}
	if a := fetch(t, c, endpoint, refresh, ""); a.status != http.StatusBadRequest || a.code() != 9002327 {
		t.Fatalf("SPA refresh without Origin: %d %v", a.status, a.doc)
	}
	refreshSecret := url.Values{"client_secret": {secret.SecretText}}
	for k, v := range refresh {
		refreshSecret[k] = v
	}
	if a := fetch(t, c, endpoint, refreshSecret, spaOrigin); a.status != http.StatusUnauthorized || a.code() != 700025 {
		t.Fatalf("SPA refresh with a secret: %d %v", a.status, a.doc)
	}
	a = fetch(t, c, endpoint, refresh, spaOrigin)
	if a.status != http.StatusOK || a.header.Get("Access-Control-Allow-Origin") != spaOrigin {
		t.Fatalf("SPA refresh: %d %v %v", a.status, a.header, a.doc)
	}
	rt2, _ := a.doc["refresh_token"].(string)
	if rt2 == "" || rt2 == rt1 {
		t.Fatalf("rotation gave %q", rt2)
	}

	// Rotation keeps the family's end: 24 hours from the sign-in.
	toks, err := w.env.Store.ListRefreshTokens(ctx, store.RefreshTokenQuery{TenantID: w.contoso.Tenant.ID, UserID: w.alice.ID})
	testenv.Must(t, err)
	if len(toks) != 2 {
		t.Fatalf("refresh tokens = %+v", toks)
	}
	for _, tk := range toks {
		if !tk.Expires.Equal(toks[0].Expires) {
			t.Fatalf("rotation moved the end: %v then %v", toks[0].Expires, tk.Expires)
		}
	}
	if left := time.Until(toks[0].Expires); left > 24*time.Hour || left < 23*time.Hour {
		t.Fatalf("a SPA refresh token ends in %v", left)
	}

	// A day later the family is over: AADSTS700084, naming the sign-in.
	later := sts.New(sts.Config{Directory: w.env.Dir, Keys: w.env.Keys, Audit: w.env.Audit, KEK: w.kek,
		Now: func() time.Time { return time.Now().Add(24*time.Hour + time.Minute) }})
	srv := httptest.NewTLSServer(later)
	defer srv.Close()
	refresh.Set("refresh_token", rt2)
	a = fetch(t, srv.Client(), srv.URL+"/contoso/oauth2/v2.0/token", refresh, spaOrigin)
	issued := time.Unix(toks[0].Expires.Add(-24*time.Hour).Unix(), 0).UTC().Format(time.RFC3339)
	if a.status != http.StatusBadRequest || a.code() != 700084 || !strings.Contains(a.doc["error_description"].(string), "issued on "+issued) {
		t.Fatalf("expired SPA refresh token: %d %v (issued %s)", a.status, a.doc, issued)
	}
	// Still usable today, once: it was not spent by the refusal.
	if a := fetch(t, c, endpoint, refresh, spaOrigin); a.status != http.StatusOK {
		t.Fatalf("refresh after the later refusal: %d %v", a.status, a.doc)
	}

	// A SPA's code without PKCE is issued and refused at the token
	// endpoint: AADSTS9002325, even cross-origin with a verifier.
	code, _ = w.spaCode(t, b, false)
	noPKCE := url.Values{"grant_type": {"authorization_code"}, "client_id": {w.app.AppID}, "code": {code},
		"redirect_uri": {spaRedirect}, "code_verifier": {verifier}, "scope": {graphRead}}
	if a := fetch(t, c, endpoint, noPKCE, spaOrigin); a.status != http.StatusBadRequest || a.code() != 9002325 {
		t.Fatalf("SPA code without PKCE: %d %v", a.status, a.doc)
	}
}

// TestCrossOriginRefusedForOtherClients: a web app's code and refresh
// token and an app-only request are never redeemed cross-origin
// (AADSTS9002326, naming the origin), while the same code is redeemed
// without Origin; a CORS preflight is answered for any origin.
func TestCrossOriginRefusedForOtherClients(t *testing.T) {
	w := spaWorld(t)
	ctx := context.Background()
	c := w.env.Client()
	endpoint := w.env.Server.URL + "/contoso/oauth2/v2.0/token"
	secret, err := w.env.Dir.AddApplicationPassword(ctx, w.fabrikam.Tenant.ID, w.app.ID, "web", time.Time{}, time.Time{})
	testenv.Must(t, err)
	b := w.browser(t)
	req, verifier := w.codeRequestPKCE(nil)
	p := signIn(t, b, b.get(authorizeURL("contoso", req)), "alice@contoso.onmicrosoft.com")
	q := redirectParams(t, b.submit(p, url.Values{"decision": {"accept"}}), webRedirect+"?")
	if w.openCode(t, q.Get("code")).SPA {
		t.Fatal("a web redirect's code is marked SPA")
	}
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {w.app.AppID}, "client_secret": {secret.SecretText},
		"code": {q.Get("code")}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}, "scope": {"offline_access " + graphRead}}
	a := fetch(t, c, endpoint, form, spaOrigin)
	if a.status != http.StatusBadRequest || a.code() != 9002326 ||
		!strings.Contains(a.doc["error_description"].(string), "Request origin: '"+spaOrigin+"'.") {
		t.Fatalf("web code cross-origin: %d %v", a.status, a.doc)
	}
	if a.header.Get("Access-Control-Allow-Origin") != spaOrigin {
		t.Fatal("the refusal is not readable by the page that caused it")
	}
	a = fetch(t, c, endpoint, form, "")
	if a.status != http.StatusOK || a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("web code from the server: %d %v %v", a.status, a.header, a.doc)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {w.app.AppID}, "client_secret": {secret.SecretText},
		"refresh_token": {a.doc["refresh_token"].(string)}, "scope": {graphRead}}
	if a := fetch(t, c, endpoint, refresh, spaOrigin); a.status != http.StatusBadRequest || a.code() != 9002326 {
		t.Fatalf("web refresh token cross-origin: %d %v", a.status, a.doc)
	}
	if a := fetch(t, c, endpoint, refresh, ""); a.status != http.StatusOK {
		t.Fatalf("web refresh token from the server: %d %v", a.status, a.doc)
	}
	cc := url.Values{"grant_type": {"client_credentials"}, "client_id": {w.app.AppID}, "client_secret": {secret.SecretText},
		"scope": {"https://graph.microsoft.com/.default"}}
	if a := fetch(t, c, w.env.Server.URL+"/fabrikam/oauth2/v2.0/token", cc, "http://localhost:3001"); a.status != http.StatusBadRequest || a.code() != 9002326 {
		t.Fatalf("client credentials cross-origin: %d %v", a.status, a.doc)
	}

	// The preflight a browser sends before a fetch with custom headers.
	pre, err := http.NewRequest(http.MethodOptions, endpoint, nil)
	testenv.Must(t, err)
	pre.Header.Set("Origin", spaOrigin)
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type,client-request-id")
	resp, err := c.Do(pre)
	testenv.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != spaOrigin ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "client-request-id") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}
