//lint:file-ignore SA1019 UsernamePasswordCredential (ROPC) is deprecated by Azure, and it is what is under test here.

package sts_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/sts"
)

// ropcClock is the directory's clock in these tests: smart lockout's
// minutes pass without sleeping.
type ropcClock struct {
	mu sync.Mutex
	d  time.Duration
}

func (c *ropcClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.d) }
func (c *ropcClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d += d
}

// ropcEnv is a token service over a real store, whose directory runs on
// ropcClock, with one tenant holding:
//   - "cli", a public client that allows public client flows, "strict", a
//     public client that does not, and "web", a confidential client;
//   - ada, who consented to User.Read on Graph for all three; bob, the
//     same with an authenticator; carol, the same but disabled.
type ropcEnv struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	dir    *directory.Service
	clock  *ropcClock
	srv    *httptest.Server
	tenant store.Tenant

	cli, strict, web *directory.Application
	webSecret        string
	ada, bob, carol  *directory.User
}

const ropcPassword = "Correct-Horse-9"

func newROPCEnv(t *testing.T, st store.Store) *ropcEnv {
	t.Helper()
	e := &ropcEnv{t: t, ctx: context.Background(), st: st, clock: &ropcClock{}}
	key := func() []byte {
		k := make([]byte, 32)
		_, err := rand.Read(k)
		must(t, err)
		return k
	}
	var err error
	e.dir, err = directory.New(st, key(), key(), directory.WithClock(e.clock.now))
	must(t, err)
	must(t, e.dir.EnsureFirstParty(e.ctx))
	keys, err := pki.LoadOrCreateKeySet(t.TempDir())
	must(t, err)
	logger := slog.New(slog.DiscardHandler)
	svc := sts.New(sts.Config{Directory: e.dir, Keys: keys, Audit: audit.New(st, logger), Logger: logger, KEK: key()})
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(httpx.WithInfo(r.Context(), httpx.Info{RequestID: uuid.NewString(), ClientAddr: r.RemoteAddr, BaseURL: "https://" + r.Host}))
		svc.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)

	b, err := e.dir.CreateTenant(e.ctx, "fabrikam")
	must(t, err)
	e.tenant = b.Tenant
	graph, err := e.dir.ServicePrincipalByAppID(e.ctx, e.tenant.ID, directory.GraphAppID)
	must(t, err)
	app := func(name string, public bool) *directory.Application {
		a, err := e.dir.CreateApplication(e.ctx, e.tenant.ID, directory.Application{DisplayName: name, IsFallbackPublicClient: public})
		must(t, err)
		sp, err := e.dir.CreateServicePrincipal(e.ctx, e.tenant.ID, a.AppID)
		must(t, err)
		_, err = e.dir.CreateDelegatedGrant(e.ctx, e.tenant.ID, directory.OAuth2PermissionGrant{ClientID: sp.ID,
			ConsentType: directory.ConsentAllPrincipals, ResourceID: graph.ID, Scope: "User.Read"})
		must(t, err)
		return a
	}
	e.cli, e.strict, e.web = app("cli", true), app("strict", false), app("web", false)
	cred, err := e.dir.AddApplicationPassword(e.ctx, e.tenant.ID, e.web.ID, "test", time.Time{}, time.Time{})
	must(t, err)
	e.webSecret = cred.SecretText
	user := func(name string, enabled bool) *directory.User {
		u, err := e.dir.CreateUser(e.ctx, e.tenant.ID, directory.NewUser{UserPrincipalName: name + "@" + e.tenant.Domain,
			DisplayName: name, Password: ropcPassword, AccountEnabled: enabled})
		must(t, err)
		return u
	}
	e.ada, e.bob, e.carol = user("ada", true), user("bob", true), user("carol", false)
	_, _, err = e.dir.EnrollTOTP(e.ctx, e.tenant.ID, e.bob.ID)
	must(t, err)
	return e
}

// token sends a password grant to tenant's v2 endpoint and returns the
// status and the AADSTS code (0 on success).
func (e *ropcEnv) token(tenant string, form url.Values) (int, int) {
	e.t.Helper()
	form.Set("grant_type", "password")
	resp, err := e.srv.Client().PostForm(e.srv.URL+"/"+tenant+"/oauth2/v2.0/token", form)
	must(e.t, err)
	defer resp.Body.Close()
	var doc struct {
		ErrorCodes  []int  `json:"error_codes"`
		AccessToken string `json:"access_token"`
	}
	must(e.t, json.NewDecoder(resp.Body).Decode(&doc))
	if resp.StatusCode == http.StatusOK {
		if doc.AccessToken == "" {
			e.t.Fatalf("200 without an access token")
		}
		return resp.StatusCode, 0
	}
	if len(doc.ErrorCodes) != 1 {
		e.t.Fatalf("%d without one error code: %+v", resp.StatusCode, doc)
	}
	return resp.StatusCode, doc.ErrorCodes[0]
}

func (e *ropcEnv) userForm(client *directory.Application, username, password string) url.Values {
	return url.Values{"client_id": {client.AppID}, "username": {username}, "password": {password},
		"scope": {"https://graph.microsoft.com/User.Read openid profile offline_access"}}
}

// The real azidentity credential (MSAL underneath: user realm discovery,
// then the password grant) gets a user token whose scp is the consent in
// force.
func TestPasswordGrantAzidentity(t *testing.T) {
	e := newROPCEnv(t, storetest.SQLite(t))
	cred, err := azidentity.NewUsernamePasswordCredential(e.tenant.ID, e.cli.AppID, e.ada.UserPrincipalName, ropcPassword,
		&azidentity.UsernamePasswordCredentialOptions{
			ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: e.srv.URL}, Transport: e.srv.Client()},
			DisableInstanceDiscovery: true,
		})
	must(t, err)
	tok, err := cred.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/User.Read"}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	c := claimsOf(t, tok.Token)
	if c.Scope != "User.Read" || c.ObjectID != e.ada.ID || c.TenantID != e.tenant.ID || c.Audience != directory.GraphResource ||
		c.AppID != e.cli.AppID || c.AppIDACR != "0" || len(c.AMR) != 1 || c.AMR[0] != "pwd" {
		t.Fatalf("access token claims: %+v", c)
	}

	// A wrong password reaches azidentity as Entra's error.
	bad, err := azidentity.NewUsernamePasswordCredential(e.tenant.ID, e.cli.AppID, e.ada.UserPrincipalName, "not-it",
		&azidentity.UsernamePasswordCredentialOptions{
			ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: e.srv.URL}, Transport: e.srv.Client()},
			DisableInstanceDiscovery: true,
		})
	must(t, err)
	_, err = bad.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/User.Read"}})
	var authErr *azidentity.AuthenticationFailedError
	if !errors.As(err, &authErr) || !strings.Contains(err.Error(), "AADSTS50126") {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestPasswordGrantRefusals(t *testing.T) {
	e := newROPCEnv(t, storetest.SQLite(t))
	ada := e.ada.UserPrincipalName
	withSecret := func(f url.Values) url.Values { f.Set("client_secret", e.webSecret); return f }
	without := func(f url.Values, name string) url.Values { f.Del(name); return f }
	tests := []struct {
		name   string
		tenant string
		form   url.Values
		status int
		code   int
	}{
		{"public client", e.tenant.ID, e.userForm(e.cli, ada, ropcPassword), 200, 0},
		{"confidential client", e.tenant.ID, withSecret(e.userForm(e.web, ada, ropcPassword)), 200, 0},
		{"organizations finds the tenant by the name's domain", "organizations", e.userForm(e.cli, ada, ropcPassword), 200, 0},
		{"confidential client without its secret", e.tenant.ID, e.userForm(e.web, ada, ropcPassword), 401, 7000218},
		{"public client flows not allowed", e.tenant.ID, e.userForm(e.strict, ada, ropcPassword), 401, 7000218},
		{"wrong password", e.tenant.ID, e.userForm(e.cli, ada, "Wrong-Horse-9"), 400, 50126},
		{"unknown user", e.tenant.ID, e.userForm(e.cli, "nobody@"+e.tenant.Domain, ropcPassword), 400, 50034},
		{"disabled user", e.tenant.ID, e.userForm(e.cli, e.carol.UserPrincipalName, ropcPassword), 400, 50057},
		{"disabled user, wrong password", e.tenant.ID, e.userForm(e.cli, e.carol.UserPrincipalName, "Wrong-Horse-9"), 400, 50126},
		{"user with an authenticator", e.tenant.ID, e.userForm(e.cli, e.bob.UserPrincipalName, ropcPassword), 400, 50076},
		{"scope not consented", e.tenant.ID, func() url.Values {
			f := e.userForm(e.cli, ada, ropcPassword)
			f.Set("scope", "https://graph.microsoft.com/Mail.Read")
			return f
		}(), 400, 65001},
		{"no username", e.tenant.ID, without(e.userForm(e.cli, ada, ropcPassword), "username"), 400, 900144},
		{"no password", e.tenant.ID, without(e.userForm(e.cli, ada, ropcPassword), "password"), 400, 900144},
		{"no scope", e.tenant.ID, without(e.userForm(e.cli, ada, ropcPassword), "scope"), 400, 900144},
		{"organizations without a domain in the name", "organizations", e.userForm(e.cli, "ada", ropcPassword), 400, 50059},
		{"unknown tenant", "nowhere.example", e.userForm(e.cli, ada, ropcPassword), 400, 90002},
	}
	for _, tc := range tests {
		status, code := e.token(tc.tenant, tc.form)
		if status != tc.status || code != tc.code {
			t.Errorf("%s: got %d AADSTS%d, want %d AADSTS%d", tc.name, status, code, tc.status, tc.code)
		}
	}

	// A tenant that requires MFA refuses a user without an authenticator too.
	must(t, e.dir.SetSignInPolicy(e.ctx, e.tenant.ID, directory.SignInPolicy{UserConsentAllowed: true, RequireMFA: true}))
	if status, code := e.token(e.tenant.ID, e.userForm(e.cli, ada, ropcPassword)); status != 400 || code != 50079 {
		t.Fatalf("tenant requiring MFA: %d AADSTS%d", status, code)
	}
}

// Guessing stops: after ten wrong passwords the right one is refused with
// AADSTS50053 until the lockout's minute has passed, and the next lockout
// is longer.
func TestPasswordGrantLockout(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newROPCEnv(t, st)
		ada := e.ada.UserPrincipalName
		for i := range directory.LockoutThreshold {
			if status, code := e.token(e.tenant.ID, e.userForm(e.cli, ada, fmt.Sprintf("guess-%d", i))); status != 400 || code != 50126 {
				t.Fatalf("guess %d: %d AADSTS%d", i, status, code)
			}
		}
		for _, what := range []string{"right password", "wrong password"} {
			password := ropcPassword
			if what == "wrong password" {
				password = "guess-after"
			}
			if status, code := e.token(e.tenant.ID, e.userForm(e.cli, ada, password)); status != 400 || code != 50053 {
				t.Fatalf("%s while locked: %d AADSTS%d", what, status, code)
			}
		}
		// Another client does not get around it.
		if status, code := e.token(e.tenant.ID, url.Values{"client_id": {e.web.AppID}, "client_secret": {e.webSecret},
			"username": {ada}, "password": {ropcPassword}, "scope": {"https://graph.microsoft.com/.default"}}); status != 400 || code != 50053 {
			t.Fatalf("another client while locked: %d AADSTS%d", status, code)
		}
		e.clock.add(directory.LockoutDuration + time.Second)
		if status, code := e.token(e.tenant.ID, e.userForm(e.cli, ada, ropcPassword)); status != 200 {
			t.Fatalf("right password after the lock: %d AADSTS%d", status, code)
		}
		// Bob's lockout is his own.
		if status, code := e.token(e.tenant.ID, e.userForm(e.cli, e.bob.UserPrincipalName, ropcPassword)); code != 50076 {
			t.Fatalf("another user: %d AADSTS%d", status, code)
		}
	})
}

// MSAL's user realm discovery answers by domain only.
func TestUserRealm(t *testing.T) {
	e := newROPCEnv(t, storetest.SQLite(t))
	for name, want := range map[string]string{
		e.ada.UserPrincipalName:           `"account_type":"Managed","domain_name":"` + e.tenant.Domain + `"`,
		"nobody@" + e.tenant.Domain:       `"account_type":"Managed"`,
		"ada@nowhere.example":             `"account_type":"Unknown"`,
		"no-domain":                       `"account_type":"Unknown"`,
		"ada@" + strings.Repeat("x", 300): `"account_type":"Unknown"`,
	} {
		resp, err := e.srv.Client().Get(e.srv.URL + "/common/UserRealm/" + url.PathEscape(name) + "?api-version=1.0")
		must(t, err)
		var body strings.Builder
		_, err = io.Copy(&body, resp.Body)
		resp.Body.Close()
		must(t, err)
		if resp.StatusCode != 200 || !strings.Contains(body.String(), want) {
			t.Errorf("%s: %d %s, want %s", name, resp.StatusCode, body.String(), want)
		}
	}
}
