package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/chromedp/chromedp"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The real browser test of seeds 002 and 004: a customer's administrator,
// in headless Chromium, opens the provider's admin-consent link on
// https://login.microsoftonline.com, signs in with password and TOTP, sees
// who asks for what, and accepts; the provider's service principal then
// exists in the customer's tenant with the application permissions, and
// the provider gets the customer's tokens. And a user who cancels a
// consent page sends the client access_denied.

const browserPassword = "Correct-Horse-Battery-9"

// Microsoft Graph application permissions the provider's app declares.
var providerRoles = []struct{ id, value, name string }{
	{"df021288-bdef-4463-88db-98f22de89214", "User.Read.All", "Read all users' full profiles"},
	{"5b567255-7703-4780-807c-7be8301ae99b", "Group.Read.All", "Read all groups"},
}

// browserWorld is the provider (contoso) with its multi-tenant app and the
// customer (fabrikam) with an administrator and a user.
type browserWorld struct {
	r                  *running
	provider, customer tenantCreated
	app                *directory.Application
	appSecret          string
	admin, user        *directory.User
	adminTOTP          string
	cb                 *clientCallback
}

func newBrowserWorld(t *testing.T) *browserWorld {
	t.Helper()
	ctx := context.Background()
	w := &browserWorld{r: start(t, server.Config{ProxyListen: "127.0.0.1:0"}), cb: newCallback(t)}
	w.provider, w.customer = w.r.createTenant(t, "contoso"), w.r.createTenant(t, "fabrikam")
	dir := w.r.srv.Directory()
	var rra []directory.ResourceAccess
	for _, p := range providerRoles {
		rra = append(rra, directory.ResourceAccess{ID: p.id, Type: "Role"})
	}
	app, err := dir.CreateApplication(ctx, w.provider.TenantID, directory.Application{DisplayName: "Contoso Fleet Manager",
		SignInAudience: directory.AudienceMultipleOrgs, WebRedirectURIs: []string{w.cb.uri},
		RequiredResourceAccess: []directory.RequiredResourceAccess{{ResourceAppID: directory.GraphAppID, ResourceAccess: rra}}})
	browserMust(t, err)
	w.app = app
	if _, err := dir.CreateServicePrincipal(ctx, w.provider.TenantID, app.AppID); err != nil {
		t.Fatal(err)
	}
	secret, err := dir.AddApplicationPassword(ctx, w.provider.TenantID, app.ID, "broker", time.Time{}, time.Time{})
	browserMust(t, err)
	w.appSecret = secret.SecretText
	mk := func(name string) *directory.User {
		u, err := dir.CreateUser(ctx, w.customer.TenantID, directory.NewUser{UserPrincipalName: name + "@" + w.customer.Domain,
			DisplayName: name, Password: browserPassword, AccountEnabled: true})
		browserMust(t, err)
		return u
	}
	w.admin, w.user = mk("megan"), mk("lee")
	browserMust(t, dir.AssignDirectoryRole(ctx, w.customer.TenantID, w.admin.ID, directory.RoleGlobalAdministrator))
	_, w.adminTOTP, err = dir.EnrollTOTP(ctx, w.customer.TenantID, w.admin.ID)
	browserMust(t, err)
	return w
}

func browserMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// providerToken asks for a Microsoft Graph token in the customer's tenant
// as the provider's app, with its own secret, as the provider's broker does.
func (w *browserWorld) providerToken(ctx context.Context) (string, error) {
	cred, err := azidentity.NewClientSecretCredential(w.customer.TenantID, w.app.AppID, w.appSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.r.client()}})
	if err != nil {
		return "", err
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	return tok.Token, err
}

// customerGraph calls Microsoft Graph as the customer's own bootstrap admin app.
func (w *browserWorld) customerGraph(t *testing.T, path string, out any) {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(w.customer.TenantID, w.customer.Admin.ClientID, w.customer.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.r.client()}})
	browserMust(t, err)
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	browserMust(t, err)
	req, _ := http.NewRequest("GET", "https://graph.microsoft.com/v1.0/"+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := w.r.client().Do(req)
	browserMust(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

func TestBrowser(t *testing.T) {
	chromiumPath(t) // skip (or, in CI, fail) before starting anything
	begun := time.Now()
	w := newBrowserWorld(t)
	art := newArtifacts(t)
	c := startChromium(t, w.r, art, spkiHash(w.r.serverCertificate(t)))
	t.Run("AdminConsent", func(t *testing.T) { testBrowserAdminConsent(t, w, c) })
	t.Run("UserConsentCancel", func(t *testing.T) { testBrowserUserCancel(t, w, c) })
	t.Logf("browser test took %v", time.Since(begun).Round(time.Millisecond))
}

func testBrowserAdminConsent(t *testing.T, w *browserWorld, c *chromium) {
	ctx := context.Background()
	dir := w.r.srv.Directory()
	fab := w.customer.TenantID

	// Before consent the provider is a stranger to the customer's tenant.
	if _, err := w.providerToken(ctx); err == nil || !(strings.Contains(err.Error(), "AADSTS700016") || strings.Contains(err.Error(), "AADSTS65001")) {
		t.Fatalf("provider token before consent: %v; want AADSTS700016 or AADSTS65001", err)
	}

	b := c.newTab(t)
	q := url.Values{"client_id": {w.app.AppID}, "redirect_uri": {w.cb.uri}, "state": {"onboard-7f3a"}}
	consentURL := "https://login.microsoftonline.com/" + fab + "/adminconsent?" + q.Encode()
	b.do("open the admin-consent link", chromedp.Navigate(consentURL))
	if loc := b.location(); !strings.HasPrefix(loc, "https://login.microsoftonline.com/") {
		t.Fatalf("the sign-in page is at %s, not on login.microsoftonline.com", loc)
	}

	b.expectHeading("Sign in", "#username")
	if got := b.text("main"); !strings.Contains(got, w.app.DisplayName) {
		t.Errorf("the sign-in page does not name the app: %q", got)
	}
	b.screenshot("01-signin-name")
	b.do("enter the sign-in name",
		chromedp.SendKeys(chromedp.CSS("#username"), w.admin.UserPrincipalName),
		chromedp.Click(chromedp.CSS("button.primary")))

	b.expectHeading("Enter password", "#password")
	if got := b.text("main"); !strings.Contains(got, w.admin.UserPrincipalName) {
		t.Errorf("the password page does not show who signs in: %q", got)
	}
	b.screenshot("02-signin-password")
	b.do("enter the password",
		chromedp.SendKeys(chromedp.CSS("#password"), browserPassword),
		chromedp.Click(chromedp.CSS("button.primary")))

	b.expectHeading("Enter code", "#otc")
	b.screenshot("03-mfa")
	code, err := directory.TOTPCode(w.adminTOTP, time.Now())
	browserMust(t, err)
	b.do("enter the TOTP code",
		chromedp.SendKeys(chromedp.CSS("#otc"), code),
		chromedp.Click(chromedp.CSS("button.primary")))

	b.expectHeading("Permissions requested", "ul.permissions")
	page := b.text("main")
	want := []string{w.app.DisplayName, "Publisher: contoso (" + w.provider.Domain + ")", "every user of fabrikam"}
	for _, p := range providerRoles {
		want = append(want, p.name, p.value)
	}
	for _, s := range want {
		if !strings.Contains(page, s) {
			t.Errorf("the consent page lacks %q:\n%s", s, page)
		}
	}
	if n := strings.Count(b.text("ul.permissions"), "(application permission)"); n != len(providerRoles) {
		t.Errorf("the consent page lists %d application permissions, want %d:\n%s", n, len(providerRoles), page)
	}
	b.screenshot("04-consent")
	b.do("accept", chromedp.Click(chromedp.CSS(`button[name="decision"][value="accept"]`)))

	got := w.cb.wait(b)
	if got.Get("admin_consent") != "True" || got.Get("tenant") != fab || got.Get("state") != "onboard-7f3a" || got.Get("error") != "" {
		t.Fatalf("the client got %v; want admin_consent=True&tenant=%s&state=onboard-7f3a", got, fab)
	}
	b.do("wait for the client's page", chromedp.WaitVisible(chromedp.CSS("h1")))
	if loc := b.location(); !strings.HasPrefix(loc, w.cb.uri+"?") {
		t.Errorf("the browser is at %s, want the redirect URI", loc)
	}
	b.screenshot("05-redirected")

	// The directory: the provider's service principal is in the customer's
	// tenant, holding Graph's application permissions.
	sp, err := dir.ServicePrincipalByAppID(ctx, fab, w.app.AppID)
	if err != nil {
		t.Fatalf("the provider's service principal in fabrikam: %v", err)
	}
	if sp.TenantID != fab || !sp.AccountEnabled {
		t.Errorf("service principal = %+v", sp)
	}
	graph, err := dir.ServicePrincipalByAppID(ctx, fab, directory.GraphAppID)
	browserMust(t, err)
	roles, err := dir.GrantedRoles(ctx, fab, sp.ID, store.KindServicePrincipal, graph)
	browserMust(t, err)
	slices.Sort(roles)
	if !slices.Equal(roles, []string{"Group.Read.All", "User.Read.All"}) {
		t.Errorf("granted roles = %v", roles)
	}

	// Graph, as the customer sees it.
	var sps struct {
		Value []struct{ ID, AppID, AppOwnerOrganizationID string }
	}
	w.customerGraph(t, "servicePrincipals?$filter="+url.QueryEscape("appId eq '"+w.app.AppID+"'"), &sps)
	if len(sps.Value) != 1 || sps.Value[0].ID != sp.ID {
		t.Fatalf("Graph servicePrincipals with appId %s = %+v", w.app.AppID, sps.Value)
	}
	var ras struct {
		Value []struct{ AppRoleID, PrincipalID, ResourceID string }
	}
	w.customerGraph(t, "servicePrincipals/"+sp.ID+"/appRoleAssignments", &ras)
	var ids []string
	for _, a := range ras.Value {
		if a.PrincipalID != sp.ID || a.ResourceID != graph.ID {
			t.Errorf("Graph appRoleAssignment %+v", a)
		}
		ids = append(ids, a.AppRoleID)
	}
	slices.Sort(ids)
	if want := []string{providerRoles[1].id, providerRoles[0].id}; !slices.Equal(ids, want) {
		t.Errorf("Graph appRoleAssignments of the provider's SP: %v, want %v", ids, want)
	}

	// And the provider now gets the customer's tokens, with those roles.
	tok, err := w.providerToken(ctx)
	if err != nil {
		t.Fatalf("provider token after consent: %v", err)
	}
	claims, err := azclient.UnverifiedClaims(tok)
	browserMust(t, err)
	var tokRoles []string
	if rs, ok := claims["roles"].([]any); ok {
		for _, r := range rs {
			s, _ := r.(string)
			tokRoles = append(tokRoles, s)
		}
	}
	slices.Sort(tokRoles)
	if claims["tid"] != fab || !slices.Equal(tokRoles, []string{"Group.Read.All", "User.Read.All"}) {
		t.Errorf("provider token in fabrikam: tid %v, roles %v", claims["tid"], claims["roles"])
	}
}

func testBrowserUserCancel(t *testing.T, w *browserWorld, c *chromium) {
	ctx := context.Background()
	fab := w.customer.TenantID
	b := c.newTab(t)
	verifier := strings.Repeat("v", 43) + "-browser"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {w.app.AppID}, "redirect_uri": {w.cb.uri}, "response_type": {"code"},
		"scope": {"openid profile https://graph.microsoft.com/User.Read"}, "state": {"st-cancel"}, "nonce": {"n-1"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	b.do("open the authorize URL", chromedp.Navigate("https://login.microsoftonline.com/"+fab+"/oauth2/v2.0/authorize?"+q.Encode()))
	b.expectHeading("Sign in", "#username")
	b.do("enter the sign-in name",
		chromedp.SendKeys(chromedp.CSS("#username"), w.user.UserPrincipalName),
		chromedp.Click(chromedp.CSS("button.primary")))
	b.expectHeading("Enter password", "#password")
	b.do("enter the password",
		chromedp.SendKeys(chromedp.CSS("#password"), browserPassword),
		chromedp.Click(chromedp.CSS("button.primary")))

	b.expectHeading("Permissions requested", "ul.permissions")
	page := b.text("main")
	for _, s := range []string{w.app.DisplayName, w.provider.Domain, "Sign in and read user profile"} {
		if !strings.Contains(page, s) {
			t.Errorf("the user consent page lacks %q:\n%s", s, page)
		}
	}
	if strings.Contains(page, "on behalf of your organization") || strings.Contains(page, "every user of") {
		t.Errorf("a user is offered consent for the organization:\n%s", page)
	}
	b.screenshot("06-user-consent")
	b.do("cancel", chromedp.Click(chromedp.CSS(`button[name="decision"][value="cancel"]`)))

	got := w.cb.wait(b)
	if got.Get("error") != "access_denied" || got.Get("state") != "st-cancel" || got.Get("code") != "" ||
		!strings.HasPrefix(got.Get("error_description"), "AADSTS65004") {
		t.Fatalf("the client got %v; want error=access_denied (AADSTS65004) with the state", got)
	}
	// Nothing was granted to the user.
	grants, err := w.r.srv.Directory().ListDelegatedGrants(ctx, fab, directory.GrantFilter{PrincipalID: w.user.ID})
	browserMust(t, err)
	if len(grants) != 0 {
		t.Errorf("grants after cancel: %+v", grants)
	}
}
