package partner_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/partner"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

const (
	password  = "Partner-Admin-Pass-9"
	graphRead = "https://graph.microsoft.com/User.Read"
	vaultURL  = "https://partner-kv.vault.azure.net"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// world is a running tenantbridge with a partner tenant: admin (Global
// Administrator with TOTP) and nomfa (Global Administrator without a second
// factor), the broker's application (whose only credential is a federated
// credential trusting the broker's managed identity), and the broker's
// vault, which only that managed identity may use. All of it is cloud-side
// setup; the broker under test reaches the cloud over the wire only.
type world struct {
	srv          *server.Server
	hc           *http.Client // trusts the server's CA, dials it for Azure names
	transport    http.RoundTripper
	tenant       string
	appID        string
	admin        string // UPN
	adminTOTP    string
	nomfa        string
	outsider     string // a Global Administrator with TOTP in another tenant
	outsiderTOTP string
	mi           azcore.TokenCredential
	broker       *httptest.Server
	brokerH      http.Handler
	redirect     string
	adminVault   *azsecrets.Client // the tenant's admin app, to read the vault as the test
	// revokeWrite and grantWrite take the managed identity's write access
	// to the vault away and give it back.
	revokeWrite, grantWrite func()
	appObjectID             string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	srv, err := server.New(ctx, server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	ln, err := srv.Listen()
	must(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	cred, err := azclient.ReadOperatorCredential(srv.OperatorFile())
	must(t, err)
	local, err := cred.Local()
	must(t, err)
	tr, err := local.Transport()
	must(t, err)
	w := &world{srv: srv, transport: tr, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
	op, err := azclient.NewOperatorFromCredential(cred)
	must(t, err)
	ten, err := op.CreateTenant(ctx, "partner")
	must(t, err)
	w.tenant = ten.TenantID

	// The broker's consent page, at a URL known before the app is registered.
	w.broker = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { w.brokerH.ServeHTTP(rw, r) }))
	t.Cleanup(w.broker.Close)
	w.redirect = w.broker.URL + "/callback"

	dir := srv.Directory()
	mkAdmin := func(name string, totp bool) (string, string) {
		u, err := dir.CreateUser(ctx, w.tenant, directory.NewUser{UserPrincipalName: name + "@partner.onmicrosoft.com",
			DisplayName: name, Password: password, AccountEnabled: true})
		must(t, err)
		must(t, dir.AssignDirectoryRole(ctx, w.tenant, u.ID, directory.RoleGlobalAdministrator))
		var secret string
		if totp {
			_, secret, err = dir.EnrollTOTP(ctx, w.tenant, u.ID)
			must(t, err)
		}
		return u.UserPrincipalName, secret
	}
	w.admin, w.adminTOTP = mkAdmin("admin", true)
	w.nomfa, _ = mkAdmin("nomfa", false)
	other, err := op.CreateTenant(ctx, "outsider")
	must(t, err)
	ou, err := dir.CreateUser(ctx, other.TenantID, directory.NewUser{UserPrincipalName: "admin@outsider.onmicrosoft.com",
		DisplayName: "outsider", Password: password, AccountEnabled: true})
	must(t, err)
	must(t, dir.AssignDirectoryRole(ctx, other.TenantID, ou.ID, directory.RoleGlobalAdministrator))
	_, w.outsiderTOTP, err = dir.EnrollTOTP(ctx, other.TenantID, ou.ID)
	must(t, err)
	w.outsider = ou.UserPrincipalName

	app, err := dir.CreateApplication(ctx, w.tenant, directory.Application{DisplayName: "Partner Broker",
		SignInAudience: directory.AudienceMultipleOrgs, WebRedirectURIs: []string{w.redirect},
		RequiredResourceAccess: []directory.RequiredResourceAccess{{ResourceAppID: directory.GraphAppID, ResourceAccess: []directory.ResourceAccess{
			{ID: "e1fe6dd8-ba31-4d61-89e7-88639da4683d", Type: "Scope"}, // User.Read
		}}}})
	must(t, err)
	_, err = dir.CreateServicePrincipal(ctx, w.tenant, app.AppID)
	must(t, err)
	w.appID, w.appObjectID = app.AppID, app.ID

	// The broker's managed identity, through a workload's endpoint.
	mi, err := dir.CreateUserAssignedIdentity(ctx, w.tenant, "broker", "broker-identity")
	must(t, err)
	_, header, err := dir.CreateWorkload(ctx, w.tenant, "broker", "broker", false, []string{mi.ID})
	must(t, err)
	endpoint, err := cred.IdentityEndpoint(w.tenant)
	must(t, err)
	t.Setenv("IDENTITY_ENDPOINT", endpoint)
	t.Setenv("IDENTITY_HEADER", header)
	w.mi, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: w.hc}, ID: azidentity.ClientID(mi.AppID)})
	must(t, err)
	// The application trusts the managed identity: no application secret.
	tok, err := w.mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{partner.TokenExchangeAudience + "/.default"}})
	must(t, err)
	claims, err := azclient.UnverifiedClaims(tok.Token)
	must(t, err)
	_, err = dir.AddFederatedCredential(ctx, w.tenant, app.ID, directory.FederatedIdentityCredential{Name: "broker-identity",
		Issuer: claims["iss"].(string), Subject: mi.ID, Audiences: []string{directory.TokenExchangeAudience}})
	must(t, err)

	// The vault: the managed identity is its Secrets Officer.
	v, err := srv.Vaults().CreateVault(ctx, vault.VaultSpec{TenantID: w.tenant, Name: "partner-kv", ResourceGroup: "broker"})
	must(t, err)
	grant := func(principal, role string) string {
		id := uuid.NewString()
		must(t, srv.Store().CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: w.tenant, ID: id, Scope: v.ResourceID,
			RoleDefinitionID: role, PrincipalID: principal, PrincipalType: store.PrincipalServicePrincipal, CreatedOn: time.Now()}))
		return id
	}
	officer := grant(mi.ID, rbac.RoleKeyVaultSecretsOfficer)
	grant(mi.ID, rbac.RoleKeyVaultSecretsUser)
	w.revokeWrite = func() { must(t, srv.Store().DeleteRoleAssignment(ctx, w.tenant, officer)) }
	w.grantWrite = func() { officer = grant(mi.ID, rbac.RoleKeyVaultSecretsOfficer) }
	grant(ten.Admin.ServicePrincipalID, rbac.RoleKeyVaultSecretsUser)
	adminCred, err := azidentity.NewClientSecretCredential(w.tenant, ten.Admin.ClientID, ten.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.hc}})
	must(t, err)
	w.adminVault = w.secrets(t, adminCred)
	return w
}

func (w *world) secrets(t *testing.T, cred azcore.TokenCredential) *azsecrets.Client {
	t.Helper()
	c, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: w.hc}})
	must(t, err)
	return c
}

// custodian is the broker as it runs: the vault reached with the managed
// identity, the application authenticated with the managed identity's
// federated assertion.
func (w *world) custodian(t *testing.T, logs io.Writer, now func() time.Time) *partner.Custodian {
	t.Helper()
	return w.custodianFor(t, w.tenant, logs, now)
}

func (w *world) custodianFor(t *testing.T, tenant string, logs io.Writer, now func() time.Time) *partner.Custodian {
	t.Helper()
	c, err := partner.New(partner.Config{Tenant: tenant, ClientID: w.appID, Credential: partner.ManagedIdentityAssertion(w.mi),
		RedirectURL: w.redirect, Scopes: []string{graphRead}, Secrets: w.secrets(t, w.mi), HTTPClient: w.hc,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Now: now})
	must(t, err)
	return c
}

// browser drives pages over HTTP with a cookie jar, following redirects
// between the broker and the cloud itself.
type browser struct {
	t *testing.T
	c *http.Client
}

type page struct {
	url    *url.URL
	status int
	body   string
}

func (w *world) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	must(t, err)
	return &browser{t: t, c: &http.Client{Transport: w.transport, Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	for range 10 {
		resp, err := b.c.Do(req)
		must(b.t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			return page{url: req.URL, status: resp.StatusCode, body: string(body)}
		}
		next, err := req.URL.Parse(resp.Header.Get("Location"))
		must(b.t, err)
		req, err = http.NewRequest(http.MethodGet, next.String(), nil)
		must(b.t, err)
	}
	b.t.Fatal("too many redirects")
	return page{}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	must(b.t, err)
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
		b.t.Fatalf("no form on page %s (%d): %s", p.url, p.status, p.body)
	}
	form := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	action, err := p.url.Parse(html.UnescapeString(m[1]))
	must(b.t, err)
	req, err := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	must(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func expect(t *testing.T, p page, want string) {
	t.Helper()
	if !strings.Contains(p.body, want) {
		t.Fatalf("want a page with %q, got %d at %s:\n%s", want, p.status, p.url, p.body)
	}
}

// connect walks the partner admin through the broker's page: Connect
// partner, sign-in name, password, TOTP (when enrolled), consent; it
// returns the broker's page at the end.
func (w *world) connect(t *testing.T, upn, totpSecret string, at time.Time) page {
	t.Helper()
	b := w.browser(t)
	expect(t, b.get(w.broker.URL+"/"), "Connect partner")
	p := b.get(w.broker.URL + "/connect")
	if p.url.Host != "login.microsoftonline.com" || p.url.Query().Get("code_challenge_method") != "S256" || p.url.Query().Get("nonce") == "" ||
		p.url.Query().Get("state") == "" || !strings.Contains(p.url.Query().Get("scope"), "offline_access") {
		t.Fatalf("Connect partner went to %s", p.url)
	}
	if strings.Contains(p.body, `name="username"`) {
		p = b.submit(p, url.Values{"username": {upn}})
	}
	expect(t, p, "Enter password")
	p = b.submit(p, url.Values{"password": {password}})
	if totpSecret != "" {
		expect(t, p, "Enter code")
		code, err := directory.TOTPCode(totpSecret, at)
		must(t, err)
		p = b.submit(p, url.Values{"otc": {code}})
	}
	if strings.Contains(p.body, "Permissions requested") {
		p = b.submit(p, url.Values{"decision": {"accept"}})
	}
	if p.url.Host != strings.TrimPrefix(w.broker.URL, "http://") {
		t.Fatalf("the sign-in did not return to the broker: %d at %s:\n%s", p.status, p.url, p.body)
	}
	return p
}

type secretView struct {
	value, version string
	tags           map[string]string
	contentType    string
}

func (w *world) stored(t *testing.T) secretView {
	t.Helper()
	s, err := w.adminVault.GetSecret(context.Background(), partner.DefaultSecretName, "", nil)
	must(t, err)
	v := secretView{value: *s.Value, version: s.ID.Version(), tags: map[string]string{}}
	if s.ContentType != nil {
		v.contentType = *s.ContentType
	}
	for k, x := range s.Tags {
		v.tags[k] = *x
	}
	return v
}

func (w *world) versions(t *testing.T) int {
	t.Helper()
	n := 0
	pager := w.adminVault.NewListSecretPropertiesVersionsPager(partner.DefaultSecretName, nil)
	for pager.More() {
		pg, err := pager.NextPage(context.Background())
		must(t, err)
		n += len(pg.Value)
	}
	return n
}

// present redeems rt at the token endpoint as the broker's application would.
func (w *world) present(t *testing.T, rt string) (int, map[string]any) {
	t.Helper()
	tok, err := w.mi.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{partner.TokenExchangeAudience + "/.default"}})
	must(t, err)
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {w.appID}, "refresh_token": {rt}, "scope": {graphRead},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {tok.Token}}
	resp, err := w.hc.PostForm("https://login.microsoftonline.com/"+w.tenant+"/oauth2/v2.0/token", form)
	must(t, err)
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

// TestRefreshTokenCustody is the broker's refresh-token custody end to end
// (issue 6, seed 003).
func TestRefreshTokenCustody(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var logs bytes.Buffer
	var logMu sync.Mutex
	logw := writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) })
	c := w.custodian(t, logw, nil)
	w.brokerH = c.Handler()
	var secrets []string // every token seen: none may reach the logs

	// Not connected yet.
	if _, err := c.Token(ctx, partner.AudienceScopes("https://graph.microsoft.com")); !errors.Is(err, partner.ErrNotConnected) {
		t.Fatalf("token before consent: %v", err)
	}

	// The partner admin connects: sign-in with MFA, consent, callback.
	p := w.connect(t, w.admin, w.adminTOTP, time.Now())
	if p.status != http.StatusOK {
		t.Fatalf("callback: %d %s", p.status, p.body)
	}
	expect(t, p, "Partner connected")
	expect(t, p, w.admin)
	s0 := w.stored(t)
	secrets = append(secrets, s0.value)
	if !strings.HasPrefix(s0.value, "1.") || s0.contentType != partner.ContentType || s0.tags[partner.TagUser] != w.admin ||
		s0.tags[partner.TagTenantID] != w.tenant || s0.tags[partner.TagClientID] != w.appID || s0.tags[partner.TagLastUsed] == "" ||
		!strings.Contains(s0.tags[partner.TagScopes], "User.Read") {
		t.Fatalf("stored secret: %+v (value elided)", s0.tags)
	}
	if strings.Contains(p.body, s0.value) {
		t.Fatal("the consent page shows the refresh token")
	}
	if n := w.versions(t); n != 1 {
		t.Fatalf("versions after consent = %d", n)
	}

	// Tokens per audience, twice: a new version each time, the old token spent.
	prev := s0
	for i := range 2 {
		at, err := c.Token(ctx, partner.AudienceScopes("https://graph.microsoft.com"))
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		secrets = append(secrets, at.Token)
		claims, err := azclient.UnverifiedClaims(at.Token)
		must(t, err)
		if claims["aud"] != "https://graph.microsoft.com" || claims["tid"] != w.tenant || claims["upn"] != w.admin || !strings.Contains(claims["scp"].(string), "User.Read") {
			t.Fatalf("access token %d claims: %v", i, claims)
		}
		s := w.stored(t)
		secrets = append(secrets, s.value)
		if s.version == prev.version || s.value == prev.value || s.tags[partner.TagConsentedAt] != s0.tags[partner.TagConsentedAt] {
			t.Fatalf("token %d: the rotated refresh token was not written back (version %s → %s)", i, prev.version, s.version)
		}
		prev = s
	}
	if n := w.versions(t); n != 3 {
		t.Fatalf("versions after two tokens = %d; want 3", n)
	}

	// Two requests at once: serialized, so both succeed and both rotations land.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			at, err := c.Token(ctx, partner.AudienceScopes("https://graph.microsoft.com/"))
			errs[i] = err
			if err == nil {
				logMu.Lock()
				secrets = append(secrets, at.Token)
				logMu.Unlock()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent token %d: %v", i, err)
		}
	}
	if n := w.versions(t); n != 5 {
		t.Fatalf("versions after two concurrent tokens = %d; want 5", n)
	}
	current := w.stored(t)
	secrets = append(secrets, current.value)

	// The spent token fails at the token endpoint: invalid_grant. (Presenting
	// it revokes the family, as a stolen copy would.)
	if status, doc := w.present(t, s0.value); status != http.StatusBadRequest || doc["error"] != "invalid_grant" {
		t.Fatalf("spent refresh token: %d %v", status, doc)
	}
	// The broker says so clearly, and keeps the stored version.
	if _, err := c.Token(ctx, partner.AudienceScopes("https://graph.microsoft.com")); !errors.Is(err, partner.ErrRefreshTokenRevoked) {
		t.Fatalf("token after the family was revoked: %v", err)
	}
	if s := w.stored(t); s.version != current.version {
		t.Fatal("a refused redemption changed the stored secret")
	}

	// Reconsent replaces the stored token with a new version that works.
	expect(t, w.connect(t, w.admin, w.adminTOTP, time.Now().Add(30*time.Second)), "Partner connected")
	re := w.stored(t)
	secrets = append(secrets, re.value)
	if re.version == current.version || re.value == current.value || w.versions(t) != 6 {
		t.Fatalf("reconsent did not replace the token")
	}
	if _, err := c.Token(ctx, partner.AudienceScopes("https://graph.microsoft.com")); err != nil {
		t.Fatalf("token after reconsent: %v", err)
	}
	after := w.stored(t)
	secrets = append(secrets, after.value)

	// The vault refuses the write-back: no access token is handed out, the
	// rotated token is kept in memory, and written first once the vault
	// takes writes again.
	w.revokeWrite()
	if _, err := c.Token(ctx, partner.AudienceScopes("https://graph.microsoft.com")); err == nil || !strings.Contains(err.Error(), "held in memory") {
		t.Fatalf("token with the vault refusing writes: %v", err)
	}
	if s := w.stored(t); s.version != after.version {
		t.Fatal("the stored version changed while the vault refused writes")
	}
	w.grantWrite()
	n := w.versions(t)
	if _, err := c.Token(ctx, partner.AudienceScopes("https://graph.microsoft.com")); err != nil {
		t.Fatalf("token once the vault takes writes again: %v", err)
	}
	if got := w.versions(t); got != n+2 {
		t.Fatalf("versions after the pending write and a rotation: %d, want %d", got, n+2)
	}
	after = w.stored(t)
	secrets = append(secrets, after.value)

	// A sign-in without MFA is refused, and the vault is untouched.
	p = w.connect(t, w.nomfa, "", time.Now())
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "multi-factor authentication") {
		t.Fatalf("consent without MFA: %d %s", p.status, p.body)
	}
	if s := w.stored(t); s.version != after.version {
		t.Fatal("a consent without MFA replaced the stored token")
	}

	// With the organizations authority, the first consent pins the partner
	// tenant: another tenant's administrator cannot replace the token.
	w.brokerH = w.custodianFor(t, "organizations", logw, nil).Handler()
	p = w.connect(t, w.outsider, w.outsiderTOTP, time.Now())
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "belongs to tenant "+w.tenant) {
		t.Fatalf("another tenant's consent: %d %s", p.status, p.body)
	}
	if s := w.stored(t); s.version != after.version {
		t.Fatal("another tenant's consent replaced the stored token")
	}
	expect(t, w.connect(t, w.admin, w.adminTOTP, time.Now().Add(-30*time.Second)), "Partner connected")
	after = w.stored(t)
	secrets = append(secrets, after.value)
	w.brokerH = c.Handler()

	// A callback that this browser did not start is refused.
	b := w.browser(t)
	if p := b.get(w.broker.URL + "/callback?code=x&state=forged"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "state mismatch") {
		t.Fatalf("forged callback: %d %s", p.status, p.body)
	}

	// The warning: the token has gone unused for 61 days (an injected clock).
	var warnLogs bytes.Buffer
	later := time.Now().Add(61 * 24 * time.Hour)
	old := w.custodian(t, &warnLogs, func() time.Time { return later })
	st, err := old.Status(ctx)
	must(t, err)
	if st.Warning == "" || st.Expired || !strings.Contains(warnLogs.String(), `"level":"WARN"`) {
		t.Fatalf("no warning for a token unused for 61 days: %+v\n%s", st, warnLogs.String())
	}
	if fresh, err := c.Status(ctx); err != nil || fresh.Warning != "" {
		t.Fatalf("a fresh token warns: %+v %v", fresh, err)
	}
	expired, err := w.custodian(t, io.Discard, func() time.Time { return time.Now().Add(91 * 24 * time.Hour) }).Status(ctx)
	if err != nil || !expired.Expired || expired.Warning == "" {
		t.Fatalf("a token unused for 91 days is not reported expired: %+v %v", expired, err)
	}
	// Refresh keeps it alive: redeemed, written back, no longer warning.
	st, err = old.Refresh(ctx)
	if err != nil || st.Warning != "" || !st.LastUsed.Equal(later.UTC().Truncate(time.Second)) {
		t.Fatalf("refresh: %+v %v", st, err)
	}
	secrets = append(secrets, w.stored(t).value)

	// Nothing secret reached the logs.
	all := logs.String() + warnLogs.String()
	if !strings.Contains(all, "partner refresh token rotated") || !strings.Contains(all, "partner connected") {
		t.Fatalf("the custody logged nothing useful:\n%s", all)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			t.Fatalf("a token reached the logs:\n%s", all)
		}
	}
	if strings.Contains(all, `"1.`) {
		t.Fatalf("something like a refresh token reached the logs:\n%s", all)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestApplicationCredentials: besides the managed identity's federated
// assertion, the broker's application may authenticate with a certificate
// (a signed assertion) or a secret; the vault is still reached with the
// managed identity only.
func TestApplicationCredentials(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	c := w.custodian(t, io.Discard, nil)
	w.brokerH = c.Handler()
	expect(t, w.connect(t, w.admin, w.adminTOTP, time.Now()), "Partner connected")

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "partner broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	_, err = w.srv.Directory().AddApplicationKey(ctx, w.tenant, w.appObjectID, directory.KeyCredential{Type: "AsymmetricX509Cert", Usage: "Verify",
		Key: der, StartDateTime: tmpl.NotBefore, EndDateTime: tmpl.NotAfter})
	must(t, err)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	file := filepath.Join(t.TempDir(), "broker.pem")
	must(t, os.WriteFile(file, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...), 0o600))
	certCred, err := partner.LoadClientCertificate(w.appID, file)
	must(t, err)
	pw, err := w.srv.Directory().AddApplicationPassword(ctx, w.tenant, w.appObjectID, "broker", time.Now(), time.Now().Add(time.Hour))
	must(t, err)
	if pw.SecretText == "" {
		t.Fatal("no secret text")
	}

	for name, cred := range map[string]partner.ClientCredential{"certificate": certCred, "secret": partner.ClientSecret(pw.SecretText)} {
		cc, err := partner.New(partner.Config{Tenant: w.tenant, ClientID: w.appID, Credential: cred, RedirectURL: w.redirect,
			Scopes: []string{graphRead}, Secrets: w.secrets(t, w.mi), HTTPClient: w.hc, Logger: slog.New(slog.DiscardHandler)})
		must(t, err)
		before := w.stored(t).version
		if _, err := cc.Token(ctx, partner.AudienceScopes("https://graph.microsoft.com")); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w.stored(t).version == before {
			t.Fatalf("%s: no write-back", name)
		}
	}
	// A wrong secret: refused by the token service, the stored token intact.
	bad, err := partner.New(partner.Config{Tenant: w.tenant, ClientID: w.appID, Credential: partner.ClientSecret("wrong"), RedirectURL: w.redirect,
		Secrets: w.secrets(t, w.mi), HTTPClient: w.hc, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	before := w.stored(t).version
	var te *partner.TokenError
	if _, err := bad.Token(ctx, partner.AudienceScopes("https://graph.microsoft.com")); !errors.As(err, &te) || te.Code != "invalid_client" {
		t.Fatalf("wrong secret: %v", err)
	}
	if w.stored(t).version != before {
		t.Fatal("a refused client changed the stored token")
	}
	if _, err := c.Token(ctx, partner.AudienceScopes("https://graph.microsoft.com")); err != nil {
		t.Fatalf("the stored token after a refused client: %v", err)
	}
}
