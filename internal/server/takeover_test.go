package server_test

// Issue 11: an application registered in tenant A took over tenant B by
// registering Microsoft Graph's identifier URI with a trailing slash,
// getting an ordinary user of B to consent to its own scope named
// Directory.ReadWrite.All, and presenting the token (aud
// https://graph.microsoft.com/) to B's Graph. These tests replay the chain
// through the wire (Graph, the sign-in pages, the token endpoint) and show
// where each mechanism now refuses it: the registration (Entra's identifier
// URI rules), the resolution of a name to a resource (first-party names
// only for Microsoft's applications), the audience check of each surface,
// and Graph's cap of a delegated token by its user's own rights.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

const takeoverPassword = "Takeover-Test-Pass-42"

// takeoverWorld is the attacker's tenant A (contoso) and the victim tenant
// B (fabrikam) with one ordinary user.
type takeoverWorld struct {
	r       *running
	a, b    tenantCreated
	aGraph  string // A's bootstrap admin's Graph token
	bUser   *directory.User
	bUPN    string
	redirct string
}

func newTakeoverWorld(t *testing.T) *takeoverWorld {
	t.Helper()
	w := &takeoverWorld{r: start(t, server.Config{}), redirct: "https://app.contoso-attacker.example/cb"}
	w.a, w.b = w.r.createTenant(t, "contoso"), w.r.createTenant(t, "fabrikam")
	w.aGraph = w.clientToken(t, w.a.TenantID, w.a.Admin.ClientID, w.a.Admin.ClientSecret, "https://graph.microsoft.com/.default")
	w.bUPN = "mallory-victim@fabrikam.onmicrosoft.com"
	u, err := w.r.srv.Directory().CreateUser(context.Background(), w.b.TenantID, directory.NewUser{
		UserPrincipalName: w.bUPN, DisplayName: "Ordinary user", Password: takeoverPassword, AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	w.bUser = u
	return w
}

// call sends one request to a surface and returns status and parsed body.
func (w *takeoverWorld) call(t *testing.T, bearer, method, rawURL string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := w.r.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	if doc == nil {
		doc = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, doc
}

// token posts a form to a tenant's v2 token endpoint.
func (w *takeoverWorld) token(t *testing.T, tenant string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", "https://login.microsoftonline.com/"+tenant+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := w.r.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("token endpoint answered %d %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, doc
}

func (w *takeoverWorld) clientToken(t *testing.T, tenant, clientID, secret, scope string) string {
	t.Helper()
	status, doc := w.token(t, tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {secret}, "scope": {scope}})
	if status != 200 {
		t.Fatalf("client credentials for %s: %d %v", scope, status, doc)
	}
	return doc["access_token"].(string)
}

// impostorApp is the attacker's multi-tenant application with its own
// delegated scope named like Graph's most powerful one.
func impostorApp(redirect string, uris []string) map[string]any {
	return map[string]any{
		"displayName":    "Totally Microsoft Graph",
		"signInAudience": "AzureADMultipleOrgs",
		"identifierUris": uris,
		"web":            map[string]any{"redirectUris": []string{redirect}},
		"api": map[string]any{"oauth2PermissionScopes": []map[string]any{{
			"id": "3b3a8f5e-54c2-4d8b-9a57-0c3f9b3f7a11", "value": "Directory.ReadWrite.All", "type": "User", "isEnabled": true,
			"adminConsentDisplayName": "Read and write directory data", "adminConsentDescription": "Read and write directory data.",
			"userConsentDisplayName": "Read and write directory data", "userConsentDescription": "Read and write directory data.",
		}}},
	}
}

// wantRefused checks Graph's answer to an identifier URI outside Entra's
// formats: 400 HostNameNotOnVerifiedDomain.
func wantRefused(t *testing.T, what string, status int, doc map[string]any) {
	t.Helper()
	code, _ := doc["error"].(map[string]any)["code"].(string)
	if status != http.StatusBadRequest || code != directory.CodeHostNameNotOnVerifiedDomain {
		t.Fatalf("%s: %d %v, want 400 %s", what, status, doc, directory.CodeHostNameNotOnVerifiedDomain)
	}
}

// signIn drives B's user through the authorize pages for scope and returns
// where the browser ended: the client's redirect URI with a code or an
// error, or a page of the sign-in service.
func (w *takeoverWorld) signIn(t *testing.T, clientID, scope string) (final *url.URL, body string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := w.r.client()
	c.Jar = jar
	q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "redirect_uri": {w.redirct},
		"scope": {scope}, "state": {"s1"}, "login_hint": {w.bUPN}}
	get, _ := http.NewRequest("GET", "https://login.microsoftonline.com/"+w.b.TenantID+"/oauth2/v2.0/authorize?"+q.Encode(), nil)
	body, at := takeoverFetch(t, c, get)
	for step := 0; step < 6; step++ {
		if at.Host != "login.microsoftonline.com" {
			return at, body
		}
		var fields url.Values
		switch {
		case strings.Contains(body, `name="password"`):
			fields = url.Values{"password": {takeoverPassword}}
		case strings.Contains(body, `name="username"`) || strings.Contains(body, `name="loginfmt"`):
			fields = url.Values{"username": {w.bUPN}, "loginfmt": {w.bUPN}}
		case strings.Contains(body, "Permissions requested"):
			fields = url.Values{"decision": {"accept"}}
		default:
			return at, body
		}
		body, at = takeoverSubmit(t, c, body, at, fields)
	}
	t.Fatalf("sign-in did not end: %s", body)
	return nil, ""
}

// takeoverFetch sends req, following redirects within the sign-in
// service only: a redirect to the client's redirect URI ends the flow, and
// its URL (with the code or the error) is returned as where it ended.
func takeoverFetch(t *testing.T, c *http.Client, req *http.Request) (string, *url.URL) {
	t.Helper()
	c.CheckRedirect = func(next *http.Request, _ []*http.Request) error {
		if next.URL.Host != "login.microsoftonline.com" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if loc, err := resp.Location(); err == nil && loc.Host != "login.microsoftonline.com" {
		return string(b), loc
	}
	return string(b), resp.Request.URL
}

func takeoverSubmit(t *testing.T, c *http.Client, body string, base *url.URL, fields url.Values) (string, *url.URL) {
	t.Helper()
	action, form, ok := pageForm(body, base, fields)
	if !ok {
		t.Fatalf("no form on the page: %s", body)
	}
	return takeoverFetch(t, c, formPost(action, form))
}

// forceIdentifierURIs writes identifier URIs into an application's stored
// record directly, around Graph's rules: what a data directory from before
// the rules may hold. Resolution must not trust them either.
func forceIdentifierURIs(t *testing.T, st store.Store, tenantID, objectID string, uris []string) {
	t.Helper()
	ctx := context.Background()
	o, err := st.GetObject(ctx, tenantID, store.KindApplication, objectID)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(o.Data, &doc); err != nil {
		t.Fatal(err)
	}
	doc["identifierUris"] = uris
	o.Data, _ = json.Marshal(doc)
	o.Names = uris
	if _, err := st.UpdateObject(ctx, o); err != nil {
		t.Fatal(err)
	}
}

// TestTakeoverChainRefused replays the chain and shows the first
// step Entra would refuse is refused, and that each later step is refused
// on its own even when the first is got around (legacy data).
func TestTakeoverChainRefused(t *testing.T) {
	w := newTakeoverWorld(t)

	// Step 1: the registration itself is refused, as Entra refuses it.
	status, doc := w.call(t, w.aGraph, "POST", "https://graph.microsoft.com/v1.0/applications",
		impostorApp(w.redirct, []string{"https://graph.microsoft.com/"}))
	wantRefused(t, "register Graph's identifier URI", status, doc)

	// Register the app legitimately, then give it the impostor URI around
	// the rules, as an old data directory could hold it.
	status, doc = w.call(t, w.aGraph, "POST", "https://graph.microsoft.com/v1.0/applications",
		impostorApp(w.redirct, []string{"api://contoso.onmicrosoft.com/impostor"}))
	if status != http.StatusCreated {
		t.Fatalf("register the attacker's app: %d %v", status, doc)
	}
	appObjectID, appID := doc["id"].(string), doc["appId"].(string)
	forceIdentifierURIs(t, w.r.srv.Directory().Store(), w.a.TenantID, appObjectID, []string{"api://" + appID, "https://graph.microsoft.com/"})
	if status, doc = w.call(t, w.aGraph, "POST", "https://graph.microsoft.com/v1.0/servicePrincipals", map[string]any{"appId": appID}); status != http.StatusCreated {
		t.Fatalf("service principal: %d %v", status, doc)
	}
	status, doc = w.call(t, w.aGraph, "POST", "https://graph.microsoft.com/v1.0/applications/"+appObjectID+"/addPassword", map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("addPassword: %d %v", status, doc)
	}
	secret := doc["secretText"].(string)

	// Step 2a: B's user may consent to the attacker's own API scope, named
	// by appId: that is a legitimate consent to A's API, and its token is
	// for A's API only.
	final, body := w.signIn(t, appID, "openid api://"+appID+"/Directory.ReadWrite.All")
	code := final.Query().Get("code")
	if code == "" {
		t.Fatalf("consent to the app's own scope: ended at %s: %s", final, body)
	}
	status, doc = w.token(t, w.b.TenantID, url.Values{"grant_type": {"authorization_code"}, "client_id": {appID},
		"client_secret": {secret}, "code": {code}, "redirect_uri": {w.redirct}, "scope": {"api://" + appID + "/Directory.ReadWrite.All"}})
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %v", status, doc)
	}
	ownAPIToken := doc["access_token"].(string)
	if aud := decodeClaims(t, ownAPIToken)["aud"]; aud != appID && aud != "api://"+appID {
		t.Fatalf("token for the app's own scope has aud %v, want its appId or api://{appId}", aud)
	}
	// That token is no Graph token.
	if status, doc = w.call(t, ownAPIToken, "GET", "https://graph.microsoft.com/v1.0/users", nil); status != http.StatusUnauthorized {
		t.Fatalf("Graph accepted a token for the attacker's API: %d %v", status, doc)
	}

	// Step 2b: the scope spelled with Graph's name and a double slash must
	// not resolve to the impostor: Graph's name belongs to Graph, which has
	// no user-consentable Directory.ReadWrite.All. The consent page never
	// shows the impostor's scope as Graph's.
	final, body = w.signIn(t, appID, "openid https://graph.microsoft.com//Directory.ReadWrite.All")
	if code := final.Query().Get("code"); code != "" {
		t.Fatalf("consent to %q produced a code (page: %s)", "https://graph.microsoft.com//Directory.ReadWrite.All", body)
	}
	if strings.Contains(body, "Read and write directory data") && strings.Contains(body, "Permissions requested") {
		t.Fatalf("the consent page offered the impostor's scope under Graph's name: %s", body)
	}

	// Step 3: no token of B for Graph's name comes out of the impostor,
	// whatever the spelling.
	for _, scope := range []string{"https://graph.microsoft.com//Directory.ReadWrite.All", "https://graph.microsoft.com//.default",
		"https://graph.microsoft.com/Directory.ReadWrite.All"} {
		status, doc = w.token(t, w.b.TenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {appID},
			"client_secret": {secret}, "scope": {scope}})
		if status == http.StatusOK {
			// What comes out is Graph's own token (Graph's name resolves to
			// Graph only), holding none of the impostor's scopes.
			claims := decodeClaims(t, doc["access_token"].(string))
			switch claims["aud"] {
			case directory.GraphAppID, "https://graph.microsoft.com", "https://graph.microsoft.com/":
			default:
				t.Fatalf("scope %s gave a token with aud %v", scope, claims["aud"])
			}
			if claims["scp"] != nil || claims["roles"] != nil {
				t.Fatalf("scope %s gave a token with permissions: %v", scope, claims)
			}
		}
	}
	// Nor in A, where the impostor's own service principal lives.
	status, doc = w.token(t, w.a.TenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {appID},
		"client_secret": {secret}, "scope": {"https://graph.microsoft.com//.default"}})
	if status == http.StatusOK {
		if claims := decodeClaims(t, doc["access_token"].(string)); claims["roles"] != nil {
			t.Fatalf("A issued a token with the impostor's permissions for Graph's name: %v", claims)
		}
	}
}

// TestDelegatedGraphCappedByUser: a delegated token acts with no more than
// its user's rights. B's administrator consents, for everyone, to
// Application.ReadWrite.All and User.Read.All for a client; an ordinary
// user's token carries those scopes, reads what members read, and cannot
// add a password to an application the user does not own.
func TestDelegatedGraphCappedByUser(t *testing.T) {
	w := newTakeoverWorld(t)
	ctx := context.Background()
	dir := w.r.srv.Directory()
	bGraph := w.clientToken(t, w.b.TenantID, w.b.Admin.ClientID, w.b.Admin.ClientSecret, "https://graph.microsoft.com/.default")

	// B's own line-of-business client and its tenant-wide delegated grant.
	status, doc := w.call(t, bGraph, "POST", "https://graph.microsoft.com/v1.0/applications", map[string]any{
		"displayName": "B's portal", "web": map[string]any{"redirectUris": []string{w.redirct}}})
	if status != http.StatusCreated {
		t.Fatalf("client app: %d %v", status, doc)
	}
	clientObjectID, clientAppID := doc["id"].(string), doc["appId"].(string)
	status, doc = w.call(t, bGraph, "POST", "https://graph.microsoft.com/v1.0/servicePrincipals", map[string]any{"appId": clientAppID})
	if status != http.StatusCreated {
		t.Fatalf("client sp: %d %v", status, doc)
	}
	// B's Global Administrator consents for everyone (the admin consent
	// page does the same).
	admin, err := dir.CreateUser(ctx, w.b.TenantID, directory.NewUser{UserPrincipalName: "admin@fabrikam.onmicrosoft.com",
		DisplayName: "Admin", Password: takeoverPassword, AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.AssignDirectoryRole(ctx, w.b.TenantID, admin.ID, directory.RoleGlobalAdministrator); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.GrantConsent(ctx, directory.ConsentRequest{TenantID: w.b.TenantID, ClientAppID: clientAppID, AllPrincipals: true,
		ConsentedBy: admin.ID, Delegated: map[string][]string{directory.GraphAppID: {"Application.ReadWrite.All", "User.Read.All"}}}); err != nil {
		t.Fatal(err)
	}
	status, doc = w.call(t, bGraph, "POST", "https://graph.microsoft.com/v1.0/applications/"+clientObjectID+"/addPassword", map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("addPassword: %d %v", status, doc)
	}
	secret := doc["secretText"].(string)

	final, body := w.signIn(t, clientAppID, "openid https://graph.microsoft.com/Application.ReadWrite.All https://graph.microsoft.com/User.Read.All")
	code := final.Query().Get("code")
	if code == "" {
		t.Fatalf("sign-in ended at %s: %s", final, body)
	}
	status, doc = w.token(t, w.b.TenantID, url.Values{"grant_type": {"authorization_code"}, "client_id": {clientAppID},
		"client_secret": {secret}, "code": {code}, "redirect_uri": {w.redirct},
		"scope": {"https://graph.microsoft.com/Application.ReadWrite.All https://graph.microsoft.com/User.Read.All"}})
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %v", status, doc)
	}
	userToken := doc["access_token"].(string)
	if scp := decodeClaims(t, userToken)["scp"]; !strings.Contains(fmt.Sprint(scp), "Application.ReadWrite.All") {
		t.Fatalf("scp = %v", scp)
	}

	// Members read the directory.
	if status, doc = w.call(t, userToken, "GET", "https://graph.microsoft.com/v1.0/users", nil); status != http.StatusOK {
		t.Fatalf("member reads users: %d %v", status, doc)
	}
	// But cannot act on an application they do not own: B's bootstrap admin app.
	adminApp, err := dir.ApplicationByAppID(ctx, w.b.Admin.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if status, doc = w.call(t, userToken, "POST", "https://graph.microsoft.com/v1.0/applications/"+adminApp.ID+"/addPassword", map[string]any{}); status != http.StatusForbidden {
		t.Fatalf("an ordinary user's delegated token added a password to the admin app: %d %v", status, doc)
	}
	if status, doc = w.call(t, userToken, "PATCH", "https://graph.microsoft.com/v1.0/applications/"+adminApp.ID, map[string]any{"displayName": "pwned"}); status != http.StatusForbidden {
		t.Fatalf("an ordinary user's delegated token renamed the admin app: %d %v", status, doc)
	}
	// Users can register applications and manage their own.
	status, doc = w.call(t, userToken, "POST", "https://graph.microsoft.com/v1.0/applications", map[string]any{"displayName": "mine"})
	if status != http.StatusCreated {
		t.Fatalf("member registers an app: %d %v", status, doc)
	}
	if status, doc = w.call(t, userToken, "POST", "https://graph.microsoft.com/v1.0/applications/"+doc["id"].(string)+"/addPassword", map[string]any{}); status != http.StatusOK {
		t.Fatalf("owner adds a password to own app: %d %v", status, doc)
	}

	// The same user made Application Administrator may.
	if err := dir.AssignDirectoryRole(ctx, w.b.TenantID, w.bUser.ID, directory.RoleApplicationAdministrator); err != nil {
		t.Fatal(err)
	}
	if status, doc = w.call(t, userToken, "POST", "https://graph.microsoft.com/v1.0/applications/"+adminApp.ID+"/addPassword", map[string]any{}); status != http.StatusOK {
		t.Fatalf("an Application Administrator's delegated token: %d %v", status, doc)
	}
}

// TestImpostorIdentifierURIVariants tries the ways to spell a name that is
// not the caller's: every one is refused at registration (POST and PATCH),
// and none resolves to the attacker's application even when written into
// the store around the rules.
func TestImpostorIdentifierURIVariants(t *testing.T) {
	w := newTakeoverWorld(t)
	bGraph := w.clientToken(t, w.b.TenantID, w.b.Admin.ClientID, w.b.Admin.ClientSecret, "https://graph.microsoft.com/.default")
	status, doc := w.call(t, bGraph, "POST", "https://graph.microsoft.com/v1.0/applications", map[string]any{"displayName": "B's API", "signInAudience": "AzureADMultipleOrgs"})
	if status != http.StatusCreated {
		t.Fatalf("B's app: %d %v", status, doc)
	}
	bAppID := doc["appId"].(string)

	variants := []string{
		"https://graph.microsoft.com/", "https://graph.microsoft.com", "HTTPS://GRAPH.MICROSOFT.COM/", "https://Graph.Microsoft.Com//",
		"https://graph.microsoft.com/x", "https://sub.graph.microsoft.com/x", "https://graph.microsoft.com./x",
		"https://management.azure.com/", "https://management.azure.com", "https://management.core.windows.net/",
		"https://vault.azure.net", "https://vault.azure.net/", "https://myvault.vault.azure.net/x",
		"https://servicebus.azure.net", "https://ns.servicebus.windows.net/x",
		"api://AzureADTokenExchange", "API://azureadtokenexchange/", "api://AzureADTokenExchange/x",
		"https://login.microsoftonline.com/x", "https://sts.windows.net/x",
		"https://fabrikam.onmicrosoft.com/api", "https://FABRIKAM.onmicrosoft.com/api", "api://fabrikam.onmicrosoft.com/api",
		"api://x.fabrikam.onmicrosoft.com/api", "https://x.fabrikam.onmicrosoft.com/api",
		"api://" + w.b.TenantID + "/api", "api://" + strings.ToUpper(w.b.TenantID) + "/x", "api://" + bAppID, "api://" + w.b.TenantID + "/" + bAppID,
		"https://contoso.onmicrosoft.com", "https://contoso.onmicrosoft.com/", "https://x.contoso.onmicrosoft.com/api",
		"api://orders", "https://example.com/api", "urn:graph", "http://contoso.onmicrosoft.com/api",
		"https://contoso.onmicrosoft.com:443/api", "https://user@contoso.onmicrosoft.com/api", "https://contoso.onmicrosoft.com/api?x=1",
		"https://contoso.onmicrosoft.com/api#f", "https://contoso.onmicrosoft.com/*", "api://contoso.onmicrosoft.com//api",
	}
	status, doc = w.call(t, w.aGraph, "POST", "https://graph.microsoft.com/v1.0/applications", map[string]any{"displayName": "A's API", "signInAudience": "AzureADMultipleOrgs"})
	if status != http.StatusCreated {
		t.Fatalf("A's app: %d %v", status, doc)
	}
	aObjectID, aAppID := doc["id"].(string), doc["appId"].(string)
	for _, v := range variants {
		status, doc = w.call(t, w.aGraph, "POST", "https://graph.microsoft.com/v1.0/applications", map[string]any{"displayName": "impostor", "identifierUris": []string{v}})
		if status != http.StatusBadRequest {
			t.Errorf("POST identifierUris %q: %d %v, want 400", v, status, doc)
		}
		status, doc = w.call(t, w.aGraph, "PATCH", "https://graph.microsoft.com/v1.0/applications/"+aObjectID, map[string]any{"identifierUris": []string{v}})
		if status != http.StatusBadRequest {
			t.Errorf("PATCH identifierUris %q: %d %v, want 400", v, status, doc)
		}
	}
	// A's own names in Entra's formats are accepted.
	own := []string{"api://" + aAppID, "api://" + w.a.TenantID + "/" + aAppID, "api://" + w.a.TenantID + "/orders",
		"api://orders/" + aAppID, "https://contoso.onmicrosoft.com/orders", "api://contoso.onmicrosoft.com/orders2",
		"api://orders.contoso.onmicrosoft.com/v1"}
	status, doc = w.call(t, w.aGraph, "PATCH", "https://graph.microsoft.com/v1.0/applications/"+aObjectID, map[string]any{"identifierUris": own})
	if status != http.StatusNoContent {
		t.Fatalf("PATCH with A's own identifier URIs: %d %v", status, doc)
	}

	// Written around the rules (as an old data directory may hold them),
	// no variant resolves to A's application: not in A, where its service
	// principal carries the names, and not when A asks for a token.
	// Names exactly equal to a first-party service principal's cannot be
	// stored twice in one tenant at all; the rest can.
	var forced []string
	for _, v := range variants {
		switch strings.ToLower(v) {
		case "https://graph.microsoft.com", "https://management.azure.com/", "https://management.core.windows.net/",
			"https://vault.azure.net", "https://servicebus.azure.net", "api://azureadtokenexchange":
			continue
		}
		forced = append(forced, v)
	}
	forceIdentifierURIs(t, w.r.srv.Directory().Store(), w.a.TenantID, aObjectID, forced)
	status, doc = w.call(t, w.aGraph, "POST", "https://graph.microsoft.com/v1.0/servicePrincipals", map[string]any{"appId": aAppID})
	if status != http.StatusCreated {
		t.Fatalf("A's sp: %d %v", status, doc)
	}
	aSP := doc["id"].(string)
	if names := fmt.Sprint(doc["servicePrincipalNames"]); !strings.Contains(names, "https://graph.microsoft.com/") {
		t.Fatalf("the service principal does not carry the forced names: %s", names)
	}
	status, doc = w.call(t, w.aGraph, "POST", "https://graph.microsoft.com/v1.0/applications/"+aObjectID+"/addPassword", map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("addPassword: %d %v", status, doc)
	}
	secret := doc["secretText"].(string)
	dir := w.r.srv.Directory()
	for _, v := range forced {
		sp, err := dir.ServicePrincipalByName(context.Background(), w.a.TenantID, v)
		if err == nil && sp.ID == aSP {
			t.Errorf("%q resolves to A's application", v)
		}
		status, doc = w.token(t, w.a.TenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {aAppID},
			"client_secret": {secret}, "scope": {strings.TrimSuffix(v, "/") + "/.default"}})
		if status == http.StatusOK && strings.EqualFold(fmt.Sprint(decodeClaims(t, doc["access_token"].(string))["aud"]), aAppID) {
			t.Errorf("scope %s/.default gave a token for A's own application", v)
		}
	}
}
