package signin_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/signin"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

const (
	password    = "Correct-Horse-9"
	webRedirect = "https://app.provider.example/callback"
	pubRedirect = "http://localhost:8400"
	graphRead   = "https://graph.microsoft.com/User.Read"
)

// world is a running sign-in surface over a real directory: contoso is
// the customer (alice, a user; admin, a Global Administrator with TOTP),
// fabrikam the provider with a multi-tenant app.
type world struct {
	env          *testenv.Env
	kek          []byte
	contoso      *directory.TenantBootstrap
	fabrikam     *directory.TenantBootstrap
	app          *directory.Application // multi-tenant, web redirect
	native       *directory.Application // public client in contoso
	alice, admin *directory.User
	adminTOTP    string
	devices      *fakeDevices
}

func newWorld(t *testing.T, st store.Store) *world {
	t.Helper()
	ctx := context.Background()
	env := testenv.New(t, st)
	w := &world{env: env, kek: env.KEK, devices: &fakeDevices{codes: map[string]*deviceEntry{}}}
	w.contoso, w.fabrikam = env.Tenants(t)
	var err error
	w.app, err = env.Dir.CreateApplication(ctx, w.fabrikam.Tenant.ID, directory.Application{DisplayName: "Fabrikam Portal",
		SignInAudience: directory.AudienceMultipleOrgs, WebRedirectURIs: []string{webRedirect},
		RequiredResourceAccess: []directory.RequiredResourceAccess{{ResourceAppID: directory.GraphAppID, ResourceAccess: []directory.ResourceAccess{
			{ID: "e1fe6dd8-ba31-4d61-89e7-88639da4683d", Type: "Scope"}, // User.Read
			{ID: "df021288-bdef-4463-88db-98f22de89214", Type: "Role"},  // User.Read.All
		}}}})
	testenv.Must(t, err)
	w.native, err = env.Dir.CreateApplication(ctx, w.contoso.Tenant.ID, directory.Application{DisplayName: "Contoso CLI",
		PublicClientRedirectURIs: []string{pubRedirect}, IsFallbackPublicClient: true})
	testenv.Must(t, err)
	mk := func(name string) *directory.User {
		u, err := env.Dir.CreateUser(ctx, w.contoso.Tenant.ID, directory.NewUser{UserPrincipalName: name + "@contoso.onmicrosoft.com",
			DisplayName: name, Password: password, AccountEnabled: true})
		testenv.Must(t, err)
		return u
	}
	w.alice, w.admin = mk("alice"), mk("admin")
	testenv.Must(t, env.Dir.AssignDirectoryRole(ctx, w.contoso.Tenant.ID, w.admin.ID, directory.RoleGlobalAdministrator))
	_, w.adminTOTP, err = env.Dir.EnrollTOTP(ctx, w.contoso.Tenant.ID, w.admin.ID)
	testenv.Must(t, err)
	h := signin.New(signin.Config{Directory: env.Dir, Audit: env.Audit, Logger: env.Logger, KEK: w.kek, Devices: w.devices})
	env.Route(func(r *http.Request) http.Handler {
		if signin.Paths(r.URL.Path) {
			return h
		}
		return nil
	})
	return w
}

// browser is a client with its own cookie jar that does not follow redirects.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func (w *world) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	testenv.Must(t, err)
	c := *w.env.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, c: &c, base: w.env.Server.URL}
}

type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	testenv.Must(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(body), location: resp.Header.Get("Location"), header: resp.Header}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	testenv.Must(b.t, err)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	testenv.Must(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	actionRE = regexp.MustCompile(`<form method="post"[^>]* action="([^"]+)"`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// submit posts the page's form with its hidden fields plus fields.
func (b *browser) submit(p page, fields url.Values) page {
	b.t.Helper()
	m := actionRE.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no form on page (%d): %s", p.status, p.body)
	}
	form := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	return b.post(html.UnescapeString(m[1]), form)
}

func expectPage(t *testing.T, p page, want string) {
	t.Helper()
	if p.status != http.StatusOK || !strings.Contains(p.body, want) {
		t.Fatalf("want page with %q, got %d %s %s", want, p.status, p.location, p.body)
	}
}

// redirectParams returns the parameters a redirect to the client carries.
func redirectParams(t *testing.T, p page, prefix string) url.Values {
	t.Helper()
	if p.status != http.StatusFound || !strings.HasPrefix(p.location, prefix) {
		t.Fatalf("want redirect to %s, got %d %q %s", prefix, p.status, p.location, p.body)
	}
	u, err := url.Parse(p.location)
	testenv.Must(t, err)
	if u.Fragment != "" {
		q, err := url.ParseQuery(u.Fragment)
		testenv.Must(t, err)
		return q
	}
	return u.Query()
}

func pkce() (verifier, challenge string) {
	verifier = strings.Repeat("v", 43) + userauth.NewID()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func authorizeURL(tenant string, q url.Values) string {
	return "/" + tenant + "/oauth2/v2.0/authorize?" + q.Encode()
}

func (w *world) codeRequest(extra url.Values) url.Values {
	q, _ := w.codeRequestPKCE(extra)
	return q
}

func (w *world) codeRequestPKCE(extra url.Values) (url.Values, string) {
	verifier, challenge := pkce()
	q := url.Values{"client_id": {w.app.AppID}, "redirect_uri": {webRedirect}, "response_type": {"code"},
		"scope": {"openid offline_access " + graphRead}, "state": {"st-123"}, "nonce": {"n-456"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	return q, verifier
}

func (w *world) openCode(t *testing.T, code string) userauth.Code {
	t.Helper()
	c, err := userauth.OpenCode(w.kek, code, time.Now())
	if err != nil {
		t.Fatalf("OpenCode: %v", err)
	}
	return c
}

// signIn walks the name and password pages from p.
func signIn(t *testing.T, b *browser, p page, upn string) page {
	t.Helper()
	if strings.Contains(p.body, `name="username"`) {
		p = b.submit(p, url.Values{"username": {upn}})
	}
	expectPage(t, p, "Enter password")
	return b.submit(p, url.Values{"password": {password}})
}

func TestAuthCodeFlowWithUserConsent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		w := newWorld(t, st)
		b := w.browser(t)
		p := b.get(authorizeURL("contoso", w.codeRequest(nil)))
		expectPage(t, p, "Sign in")
		if p.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Fatalf("frame headers: %v", p.header)
		}
		// A wrong password is refused and audited; the right one goes on.
		bad := b.submit(p, url.Values{"username": {"alice@contoso.onmicrosoft.com"}})
		bad = b.submit(bad, url.Values{"password": {"Wrong-Horse-1"}})
		expectPage(t, bad, "Your account or password is incorrect")
		p = b.submit(bad, url.Values{"password": {password}})
		expectPage(t, p, "Permissions requested")
		for _, want := range []string{"Fabrikam Portal", "fabrikam.onmicrosoft.com", "Sign in and read user profile"} {
			if !strings.Contains(p.body, want) {
				t.Errorf("consent page lacks %q", want)
			}
		}
		if strings.Contains(p.body, "on behalf of your organization") {
			t.Error("a user is offered organization-wide consent")
		}
		q := redirectParams(t, b.submit(p, url.Values{"decision": {"accept"}}), webRedirect+"?")
		if q.Get("state") != "st-123" {
			t.Fatalf("state = %q", q.Get("state"))
		}
		c := w.openCode(t, q.Get("code"))
		if c.TenantID != w.contoso.Tenant.ID || c.UserID != w.alice.ID || c.ClientID != w.app.AppID || c.Nonce != "n-456" ||
			c.Version != 2 || c.RedirectURI != webRedirect || c.CodeChallengeMethod != "S256" || !slices.Equal(c.AMR, []string{"pwd"}) ||
			!slices.Equal(c.Scopes, []string{"openid", "offline_access", graphRead}) {
			t.Fatalf("code = %+v", c)
		}
		if !userauth.ValidChallenge(c.CodeChallenge) {
			t.Fatal("challenge not carried")
		}
		// The consent is the user's own grant, and the app's SP now exists in contoso.
		ctx := context.Background()
		sp, err := w.env.Dir.ServicePrincipalByAppID(ctx, w.contoso.Tenant.ID, w.app.AppID)
		testenv.Must(t, err)
		graph, _ := w.env.Dir.ServicePrincipalByAppID(ctx, w.contoso.Tenant.ID, directory.GraphAppID)
		got, _ := w.env.Dir.ConsentedScopes(ctx, w.contoso.Tenant.ID, sp.ID, w.alice.ID, graph.ID)
		if !slices.Equal(got, []string{"openid", "offline_access", "User.Read"}) {
			t.Fatalf("consented = %v", got)
		}
		if got, _ := w.env.Dir.ConsentedScopes(ctx, w.contoso.Tenant.ID, sp.ID, w.admin.ID, graph.ID); len(got) != 0 {
			t.Fatalf("another user got %v", got)
		}

		// SSO: prompt=none now answers at once.
		q = redirectParams(t, b.get(authorizeURL("contoso", w.codeRequest(url.Values{"prompt": {"none"}}))), webRedirect+"?")
		if c := w.openCode(t, q.Get("code")); c.UserID != w.alice.ID {
			t.Fatalf("SSO code = %+v", c)
		}
		// prompt=none for a scope not consented: consent_required.
		q = redirectParams(t, b.get(authorizeURL("contoso", w.codeRequest(url.Values{"prompt": {"none"}, "scope": {"https://graph.microsoft.com/email"}}))), webRedirect+"?")
		if q.Get("error") != "consent_required" || !strings.HasPrefix(q.Get("error_description"), "AADSTS65001") {
			t.Fatalf("consent_required = %v", q)
		}
		// prompt=login asks for the password again, even with a session.
		p = b.get(authorizeURL("contoso", w.codeRequest(url.Values{"prompt": {"login"}, "login_hint": {"alice@contoso.onmicrosoft.com"}})))
		expectPage(t, p, "Enter password")
		q = redirectParams(t, b.submit(p, url.Values{"password": {password}}), webRedirect+"?")
		if c := w.openCode(t, q.Get("code")); c.UserID != w.alice.ID || time.Since(c.AuthTime) > time.Minute {
			t.Fatalf("re-authenticated code = %+v", c)
		}
		// prompt=consent shows the page though everything is granted.
		expectPage(t, b.get(authorizeURL("contoso", w.codeRequest(url.Values{"prompt": {"consent"}}))), "Permissions requested")
		// select_account shows the name page; picking the signed-in account needs no password.
		p = b.get(authorizeURL("contoso", w.codeRequest(url.Values{"prompt": {"select_account"}})))
		expectPage(t, p, `name="username"`)
		redirectParams(t, b.submit(p, url.Values{"username": {"alice@contoso.onmicrosoft.com"}}), webRedirect+"?")

		// v1: resource instead of scopes, answered with the session.
		v1 := url.Values{"client_id": {w.app.AppID}, "redirect_uri": {webRedirect}, "response_type": {"code"}, "resource": {"https://graph.microsoft.com"}, "prompt": {"none"}}
		q = redirectParams(t, b.get("/contoso/oauth2/authorize?"+v1.Encode()), webRedirect+"?")
		if c := w.openCode(t, q.Get("code")); c.Version != 1 || c.Resource != "https://graph.microsoft.com" {
			t.Fatalf("v1 code = %+v", c)
		}
		recs, _ := st.ListAudit(ctx, store.AuditQuery{TenantID: w.contoso.Tenant.ID})
		var actions []string
		for _, r := range recs {
			actions = append(actions, r.Action+"/"+r.Result)
			if strings.Contains(r.Detail, password) {
				t.Fatal("a password reached the audit log")
			}
		}
		for _, want := range []string{"signin.password/AADSTS50126", "signin.password/success", "consent.grant/success", "signin.code/success"} {
			if !slices.Contains(actions, want) {
				t.Errorf("audit lacks %s: %v", want, actions)
			}
		}
	})
}

func TestResponseModesAndMFA(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	b := w.browser(t)
	// The admin has TOTP: password, then the code; as an admin they may consent for everyone.
	p := b.get(authorizeURL("contoso", w.codeRequest(url.Values{"login_hint": {"admin@contoso.onmicrosoft.com"}, "response_mode": {"fragment"}})))
	p = signIn(t, b, p, "")
	expectPage(t, p, "Enter code")
	p = b.submit(p, url.Values{"otc": {"000000"}})
	expectPage(t, p, "expected verification code")
	code, err := directory.TOTPCode(w.adminTOTP, time.Now())
	testenv.Must(t, err)
	p = b.submit(p, url.Values{"otc": {code}})
	expectPage(t, p, "Consent on behalf of your organization")
	q := redirectParams(t, b.submit(p, url.Values{"decision": {"accept"}, "org": {"on"}}), webRedirect+"#")
	c := w.openCode(t, q.Get("code"))
	if !slices.Equal(c.AMR, []string{"pwd", "mfa"}) || q.Get("state") != "st-123" {
		t.Fatalf("code = %+v, params %v", c, q)
	}
	ctx := context.Background()
	sp, _ := w.env.Dir.ServicePrincipalByAppID(ctx, w.contoso.Tenant.ID, w.app.AppID)
	graph, _ := w.env.Dir.ServicePrincipalByAppID(ctx, w.contoso.Tenant.ID, directory.GraphAppID)
	if got, _ := w.env.Dir.ConsentedScopes(ctx, w.contoso.Tenant.ID, sp.ID, w.alice.ID, graph.ID); len(got) != 3 {
		t.Fatalf("organization-wide consent does not cover alice: %v", got)
	}
	// form_post: a page that posts code and state to the client, with the session (mfa kept).
	p = b.get(authorizeURL("contoso", w.codeRequest(url.Values{"response_mode": {"form_post"}})))
	if p.status != http.StatusOK || !strings.Contains(p.body, `action="`+webRedirect+`"`) || !strings.Contains(p.header.Get("Content-Security-Policy"), "script-src 'nonce-") {
		t.Fatalf("form_post page: %d %v %s", p.status, p.header, p.body)
	}
	fields := map[string]string{}
	for _, h := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		fields[h[1]] = html.UnescapeString(h[2])
	}
	if fields["state"] != "st-123" || !slices.Equal(w.openCode(t, fields["code"]).AMR, []string{"pwd", "mfa"}) {
		t.Fatalf("form_post fields = %v", fields)
	}
	// A tenant that requires MFA refuses a password-only session silently.
	testenv.Must(t, w.env.Dir.SetSignInPolicy(ctx, w.contoso.Tenant.ID, directory.SignInPolicy{UserConsentAllowed: true, RequireMFA: true}))
	b2 := w.browser(t)
	p = signIn(t, b2, b2.get(authorizeURL("contoso", w.codeRequest(nil))), "alice@contoso.onmicrosoft.com")
	if p.status != http.StatusFound {
		t.Fatalf("alice without authenticator under MFA policy: %d %s", p.status, p.body)
	}
	if q := redirectParams(t, p, webRedirect+"?"); q.Get("error") != "interaction_required" || !strings.HasPrefix(q.Get("error_description"), "AADSTS50079") {
		t.Fatalf("MFA enrollment error = %v", q)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	b := w.browser(t)
	pageErr := func(name, path, code string) {
		t.Helper()
		p := b.get(path)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, code) || p.location != "" {
			t.Errorf("%s: want page %s, got %d %q %s", name, code, p.status, p.location, p.body)
		}
	}
	clientErr := func(name string, extra url.Values, oauth, code string) {
		t.Helper()
		q := redirectParams(t, b.get(authorizeURL("contoso", w.codeRequest(extra))), webRedirect+"?")
		if q.Get("error") != oauth || !strings.HasPrefix(q.Get("error_description"), code) || q.Get("state") != "st-123" {
			t.Errorf("%s: got %v", name, q)
		}
	}
	pageErr("unknown client", authorizeURL("contoso", w.codeRequest(url.Values{"client_id": {"6c3b4e0e-0000-4000-8000-000000000001"}})), "AADSTS700016")
	pageErr("malformed client", authorizeURL("contoso", w.codeRequest(url.Values{"client_id": {"not-a-guid"}})), "AADSTS700016")
	pageErr("single-tenant app of another tenant", authorizeURL("fabrikam", url.Values{"client_id": {w.native.AppID}, "response_type": {"code"}, "scope": {"openid"}}), "AADSTS700016")
	pageErr("redirect mismatch", authorizeURL("contoso", w.codeRequest(url.Values{"redirect_uri": {"https://evil.example/callback"}})), "AADSTS50011")
	pageErr("redirect prefix", authorizeURL("contoso", w.codeRequest(url.Values{"redirect_uri": {webRedirect + "/x"}})), "AADSTS50011")
	pageErr("no client", "/contoso/oauth2/v2.0/authorize?response_type=code", "AADSTS900144")
	pageErr("duplicate", authorizeURL("contoso", w.codeRequest(url.Values{"state": {"a", "b"}})), "AADSTS90023")
	pageErr("unknown tenant", authorizeURL("nosuchtenant", w.codeRequest(nil)), "AADSTS90002")
	clientErr("token", url.Values{"response_type": {"token"}}, "unsupported_response_type", "AADSTS700051")
	clientErr("id_token", url.Values{"response_type": {"code id_token"}}, "unsupported_response_type", "AADSTS700054")
	clientErr("plain PKCE", url.Values{"code_challenge_method": {"plain"}}, "invalid_request", "AADSTS90023")
	clientErr("short challenge", url.Values{"code_challenge": {"abc"}}, "invalid_request", "AADSTS501491")
	clientErr("no scope", url.Values{"scope": {""}}, "invalid_request", "AADSTS900144")
	clientErr("bad mode", url.Values{"response_mode": {"web_message"}}, "invalid_request", "AADSTS90023")
	clientErr("bad prompt", url.Values{"prompt": {"maybe"}}, "invalid_request", "AADSTS90023")
	clientErr("prompt none, no session", url.Values{"prompt": {"none"}}, "login_required", "AADSTS50058")
	clientErr("unknown resource", url.Values{"scope": {"https://nowhere.example/read"}, "prompt": {"none"}}, "login_required", "AADSTS50058")
	// A public client must use PKCE.
	q := redirectParams(t, b.get(authorizeURL("contoso", url.Values{"client_id": {w.native.AppID}, "redirect_uri": {pubRedirect},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"s"}})), pubRedirect+"?")
	if q.Get("error") != "invalid_request" || !strings.HasPrefix(q.Get("error_description"), "AADSTS9002325") {
		t.Errorf("public client without PKCE: %v", q)
	}
	// Errors found after sign-in go to the client too.
	p := signIn(t, b, b.get(authorizeURL("contoso", w.codeRequest(url.Values{"scope": {"https://graph.microsoft.com/Nope.Read"}}))), "alice@contoso.onmicrosoft.com")
	if q := redirectParams(t, p, webRedirect+"?"); q.Get("error") != "invalid_client" || !strings.HasPrefix(q.Get("error_description"), "AADSTS650053") {
		t.Errorf("unknown scope: %v", q)
	}
	// A user asking for an admin-only scope is told to get an admin.
	p = b.get(authorizeURL("contoso", w.codeRequest(url.Values{"scope": {"https://graph.microsoft.com/Application.Read.All"}})))
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "Need admin approval") || !strings.Contains(p.body, "AADSTS90094") {
		t.Errorf("admin-only scope: %d %s", p.status, p.body)
	}
}

func TestCommonFindsHomeTenantAndCancel(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	b := w.browser(t)
	p := b.get(authorizeURL("common", w.codeRequest(nil)))
	expectPage(t, p, `name="username"`)
	// A name no tenant holds.
	expectPage(t, b.submit(p, url.Values{"username": {"bob@nowhere.example"}}), "This username may be incorrect")
	p = signIn(t, b, p, "alice@contoso.onmicrosoft.com")
	expectPage(t, p, "Permissions requested")
	q := redirectParams(t, b.submit(p, url.Values{"decision": {"cancel"}}), webRedirect+"?")
	if q.Get("error") != "access_denied" || q.Get("error_subcode") != "cancel" || !strings.HasPrefix(q.Get("error_description"), "AADSTS65004: User declined to consent") {
		t.Fatalf("cancel = %v", q)
	}
	// Nothing was granted.
	if _, err := w.env.Dir.ServicePrincipalByAppID(context.Background(), w.contoso.Tenant.ID, w.app.AppID); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("SP after cancel: %v", err)
	}
	// organizations with a session: the home tenant comes from the session.
	p = b.get(authorizeURL("organizations", w.codeRequest(nil)))
	q = redirectParams(t, b.submit(p, url.Values{"decision": {"accept"}}), webRedirect+"?")
	if c := w.openCode(t, q.Get("code")); c.TenantID != w.contoso.Tenant.ID {
		t.Fatalf("common code tenant = %s", c.TenantID)
	}
	// domain_hint picks the tenant: the name page then knows it.
	b2 := w.browser(t)
	p = b2.get(authorizeURL("common", w.codeRequest(url.Values{"domain_hint": {"contoso.onmicrosoft.com"}, "login_hint": {"alice@contoso.onmicrosoft.com"}})))
	expectPage(t, p, "Enter password")
}

func TestCSRF(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	b := w.browser(t)
	p := b.get(authorizeURL("contoso", w.codeRequest(url.Values{"login_hint": {"alice@contoso.onmicrosoft.com"}})))
	expectPage(t, p, "Enter password")
	// A forged token, a missing one, and the same form from another browser.
	for name, fields := range map[string]url.Values{"forged": {"csrf": {"forged-token-123456"}}, "missing": {"csrf": {""}}} {
		fields.Set("password", password)
		if got := b.submit(p, fields); got.status != http.StatusForbidden || !strings.Contains(got.body, "anti-forgery") {
			t.Errorf("%s: %d %s", name, got.status, got.body)
		}
	}
	other := w.browser(t)
	if got := other.submit(p, url.Values{"password": {password}}); got.status != http.StatusForbidden {
		t.Errorf("other browser: %d %s", got.status, got.body)
	}
	// The genuine form still works.
	expectPage(t, b.submit(p, url.Values{"password": {password}}), "Permissions requested")
}

func TestAdminConsent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		w := newWorld(t, st)
		ctx := context.Background()
		cid := w.contoso.Tenant.ID
		// A non-admin is refused, and nothing is provisioned.
		b := w.browser(t)
		q := url.Values{"client_id": {w.app.AppID}, "redirect_uri": {webRedirect}, "state": {"ac-1"}}
		p := signIn(t, b, b.get("/contoso/adminconsent?"+q.Encode()), "alice@contoso.onmicrosoft.com")
		r := redirectParams(t, p, webRedirect+"?")
		if r.Get("error") != "access_denied" || r.Get("state") != "ac-1" || r.Get("admin_consent") != "" {
			t.Fatalf("non-admin = %v", r)
		}
		if _, err := w.env.Dir.ServicePrincipalByAppID(ctx, cid, w.app.AppID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("SP after refusal: %v", err)
		}
		// An unregistered redirect URI never gets a redirect.
		bad := url.Values{"client_id": {w.app.AppID}, "redirect_uri": {"https://evil.example/"}}
		if p := b.get("/contoso/adminconsent?" + bad.Encode()); p.status != http.StatusBadRequest || !strings.Contains(p.body, "AADSTS50011") {
			t.Fatalf("bad redirect: %d %s", p.status, p.body)
		}

		// The admin: password, TOTP, the consent page, accept.
		b = w.browser(t)
		p = signIn(t, b, b.get("/contoso/adminconsent?"+q.Encode()), "admin@contoso.onmicrosoft.com")
		code, _ := directory.TOTPCode(w.adminTOTP, time.Now())
		p = b.submit(p, url.Values{"otc": {code}})
		expectPage(t, p, "Read all users&#39; full profiles")
		r = redirectParams(t, b.submit(p, url.Values{"decision": {"accept"}}), webRedirect+"?")
		if r.Get("admin_consent") != "True" || r.Get("tenant") != cid || r.Get("state") != "ac-1" {
			t.Fatalf("admin consent = %v", r)
		}
		sp, err := w.env.Dir.ServicePrincipalByAppID(ctx, cid, w.app.AppID)
		testenv.Must(t, err)
		graph, _ := w.env.Dir.ServicePrincipalByAppID(ctx, cid, directory.GraphAppID)
		if roles, _ := w.env.Dir.GrantedRoles(ctx, cid, sp.ID, store.KindServicePrincipal, graph); !slices.Equal(roles, []string{"User.Read.All"}) {
			t.Fatalf("roles = %v", roles)
		}
		grants, _ := w.env.Dir.ListDelegatedGrants(ctx, cid, directory.GrantFilter{ClientID: sp.ID})
		if len(grants) != 1 || grants[0].ConsentType != directory.ConsentAllPrincipals || grants[0].Scope != "User.Read" {
			t.Fatalf("grants = %+v", grants)
		}

		// v2 with the session: the scope is echoed; cancel is access_denied.
		q2 := url.Values{"client_id": {w.app.AppID}, "redirect_uri": {webRedirect}, "state": {"ac-2"}, "scope": {"https://graph.microsoft.com/.default"}}
		p = b.get("/contoso/v2.0/adminconsent?" + q2.Encode())
		r = redirectParams(t, b.submit(p, url.Values{"decision": {"accept"}}), webRedirect+"?")
		if r.Get("admin_consent") != "True" || r.Get("scope") != "https://graph.microsoft.com/.default" {
			t.Fatalf("v2 admin consent = %v", r)
		}
		p = b.get("/contoso/v2.0/adminconsent?" + q2.Encode())
		r = redirectParams(t, b.submit(p, url.Values{"decision": {"cancel"}}), webRedirect+"?")
		if r.Get("error") != "access_denied" || !strings.HasPrefix(r.Get("error_description"), "AADSTS65004") {
			t.Fatalf("v2 cancel = %v", r)
		}
	})
}

type deviceEntry struct {
	clientID, scope, tenant string
	decided                 bool
	approve                 bool
	userID, tenantID        string
	amr                     []string
}

type fakeDevices struct {
	mu    sync.Mutex
	codes map[string]*deviceEntry
}

func (f *fakeDevices) Lookup(code string) (string, string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.codes[code]
	if !ok || e.decided {
		return "", "", "", errors.New("no such code")
	}
	return e.clientID, e.scope, e.tenant, nil
}

func (f *fakeDevices) Decide(code string, approve bool, userID, tenantID string, _ time.Time, amr []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.codes[code]
	if !ok || e.decided {
		return errors.New("no such code")
	}
	e.decided, e.approve, e.userID, e.tenantID, e.amr = true, approve, userID, tenantID, amr
	return nil
}

func TestDeviceCodePage(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	w.devices.codes["ABCD-EFGH"] = &deviceEntry{clientID: w.native.AppID, scope: "openid " + graphRead, tenant: "organizations"}
	w.devices.codes["WXYZ-0000"] = &deviceEntry{clientID: w.native.AppID, scope: "openid " + graphRead, tenant: "contoso"}
	b := w.browser(t)
	p := b.get("/common/oauth2/deviceauth")
	expectPage(t, p, "Enter code")
	expectPage(t, b.submit(p, url.Values{"otc": {"NOPE-NOPE"}}), "That code didn&#39;t work")
	p = signIn(t, b, b.submit(p, url.Values{"otc": {"abcd-efgh"}}), "alice@contoso.onmicrosoft.com")
	expectPage(t, p, "Permissions requested")
	expectPage(t, b.submit(p, url.Values{"decision": {"accept"}}), "You have signed in")
	e := w.devices.codes["ABCD-EFGH"]
	if !e.decided || !e.approve || e.userID != w.alice.ID || e.tenantID != w.contoso.Tenant.ID || !slices.Equal(e.amr, []string{"pwd"}) {
		t.Fatalf("decision = %+v", e)
	}
	// Second device, same browser: signed in and consented, so only a confirmation; cancel denies.
	p = b.submit(b.get("/common/oauth2/deviceauth"), url.Values{"otc": {"WXYZ-0000"}})
	expectPage(t, p, "Are you trying to sign in to Contoso CLI?")
	expectPage(t, b.submit(p, url.Values{"decision": {"cancel"}}), "declined")
	if e := w.devices.codes["WXYZ-0000"]; !e.decided || e.approve {
		t.Fatalf("cancelled decision = %+v", e)
	}
	// The code page's form needs its CSRF token too.
	other := w.browser(t)
	if p := other.post("/common/oauth2/deviceauth", url.Values{"otc": {"ABCD-EFGH"}}); p.status != http.StatusForbidden {
		t.Fatalf("device form without CSRF: %d", p.status)
	}
}

func TestStaticAndMethods(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	b := w.browser(t)
	if p := b.get("/_signin/static/signin.css"); p.status != http.StatusOK || !strings.Contains(p.body, "font") {
		t.Fatalf("css: %d", p.status)
	}
	req, _ := http.NewRequest(http.MethodDelete, b.base+"/contoso/oauth2/v2.0/authorize", nil)
	if p := b.do(req); p.status != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE authorize: %d", p.status)
	}
	// POST to authorize works like GET (form body).
	p := b.post("/contoso/oauth2/v2.0/authorize", w.codeRequest(nil))
	expectPage(t, p, `name="username"`)
	// An expired or forged flow.
	if p := b.post("/contoso/login/password", url.Values{"flow": {"garbage"}, "password": {password}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, "AADSTS50132") {
		t.Fatalf("forged flow: %d %s", p.status, p.body)
	}
}

// TestCodeRedeemsAtTokenEndpoint hands the code to the real token
// endpoint, as a confidential client with its secret and PKCE verifier.
func TestCodeRedeemsAtTokenEndpoint(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	ctx := context.Background()
	secret, err := w.env.Dir.AddApplicationPassword(ctx, w.fabrikam.Tenant.ID, w.app.ID, "test", time.Time{}, time.Time{})
	testenv.Must(t, err)
	b := w.browser(t)
	req, verifier := w.codeRequestPKCE(nil)
	p := signIn(t, b, b.get(authorizeURL("contoso", req)), "alice@contoso.onmicrosoft.com")
	q := redirectParams(t, b.submit(p, url.Values{"decision": {"accept"}}), webRedirect+"?")
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {w.app.AppID}, "client_secret": {secret.SecretText},
		"code": {q.Get("code")}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}, "scope": {"openid offline_access " + graphRead}}
	resp, err := w.env.Client().Post(w.env.Server.URL+"/contoso/oauth2/v2.0/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	testenv.Must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"access_token"`) || !strings.Contains(string(body), `"id_token"`) {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
}
