package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// Named profiles, account list|show|set, and env --reuse, through the CLI
// against a real server.

// signInClient registers an application with a service principal and a
// secret in the CLI's current tenant, for a login to use.
func signInClient(t *testing.T, dir, name string) (app azclient.Application, secret string) {
	t.Helper()
	okJSON(t, dir, &app, "ad", "app", "create", "--display-name", name)
	ok(t, dir, "ad", "sp", "create", "--id", app.AppID)
	var cred credentialResetView
	okJSON(t, dir, &cred, "ad", "app", "credential", "reset", "--id", app.AppID)
	return app, cred.Password
}

// appIDOfToken is the client a token of get-access-token was issued to.
func appIDOfToken(t *testing.T, dir string, args ...string) string {
	t.Helper()
	var tok tokenJSON
	okJSON(t, dir, &tok, append([]string{"account", "get-access-token", "--resource", "https://graph.microsoft.com"}, args...)...)
	id, _ := claimsOf(t, tok.AccessToken)["appid"].(string)
	return id
}

func TestNamedProfiles(t *testing.T) {
	dir := startServer(t)
	var contoso, fabrikam tenantJSON
	okJSON(t, dir, &contoso, "tenant", "create", "contoso")
	admin := contoso.Admin.ClientID

	// tenant create saved the bootstrap administrator, named after the tenant.
	var acct accountView
	okJSON(t, dir, &acct, "account", "show")
	if acct.Profile != "contoso" || !acct.Bootstrap || !acct.IsDefault || acct.User.Name != admin {
		t.Fatalf("account show after tenant create = %+v", acct)
	}

	// A second service principal of the tenant signs in: a new profile, the
	// tenant's default from now on, as az login makes it; the administrator is kept.
	app, secret := signInClient(t, dir, "ci")
	r := tb(t, dir, "login", "--service-principal", "-u", app.AppID, "-p", secret, "--tenant", "contoso", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stderr, "the previous default, contoso (the bootstrap administrator of contoso), is kept") {
		t.Fatalf("login of a second client: exit %d\n%s", r.code, r.stderr)
	}
	var logged []accountView
	if err := json.Unmarshal([]byte(r.stdout), &logged); err != nil || len(logged) != 1 {
		t.Fatalf("login output: %v %s", err, r.stdout)
	}
	ci := logged[0].Profile
	if ci != "contoso-"+strings.ToLower(app.AppID[:8]) || !logged[0].IsDefault || logged[0].Bootstrap {
		t.Errorf("the new profile = %+v", logged[0])
	}
	var accounts []accountView
	okJSON(t, dir, &accounts, "account", "list")
	if len(accounts) != 2 {
		t.Fatalf("account list = %+v", accounts)
	}
	for _, a := range accounts {
		if a.Profile == "contoso" && (a.IsDefault || !a.Bootstrap || a.User.Name != admin) || a.Profile == ci && !a.IsDefault {
			t.Errorf("account list entry %+v", a)
		}
	}
	if got := appIDOfToken(t, dir, "--tenant", "contoso"); got != app.AppID {
		t.Errorf("--tenant contoso signs in as %s; want the new default %s", got, app.AppID)
	}
	// --profile picks another profile for one command.
	if got := appIDOfToken(t, dir, "--profile", "contoso"); got != admin {
		t.Errorf("--profile contoso signs in as %s; want the administrator %s", got, admin)
	}
	fails(t, dir, "no profile named", "account", "get-access-token", "--profile", "nosuch")

	// The administrator cannot be replaced by a login, or forgotten without --yes.
	fails(t, dir, "already signs in", "login", "--service-principal", "-u", app.AppID, "-p", secret, "--tenant", "contoso", "--name", "contoso")
	fails(t, dir, "bootstrap administrator", "logout", "--name", "contoso")
	fails(t, dir, "not valid", "login", "--service-principal", "-u", app.AppID, "-p", secret, "--tenant", "contoso", "--name", "bad name")
	// A login of the same client again updates its profile, adding none.
	ok(t, dir, "login", "--service-principal", "-u", app.AppID, "-p", secret, "--tenant", "contoso")
	okJSON(t, dir, &accounts, "account", "list")
	if len(accounts) != 2 {
		t.Errorf("a second login of the same client: %d profiles", len(accounts))
	}

	// account set makes the administrator the default again, and active.
	ok(t, dir, "account", "set", "--name", "contoso")
	okJSON(t, dir, &acct, "account", "show", "--tenant", "contoso")
	if acct.Profile != "contoso" || !acct.IsDefault || !acct.Active {
		t.Errorf("after account set --name contoso: %+v", acct)
	}
	if got := appIDOfToken(t, dir); got != admin {
		t.Errorf("after account set, commands sign in as %s; want %s", got, admin)
	}
	// With two tenants, the active profile is what commands use without --tenant.
	okJSON(t, dir, &fabrikam, "tenant", "create", "fabrikam")
	if got := appIDOfToken(t, dir); got != admin {
		t.Errorf("with two tenants and contoso active, commands sign in as %s; want %s", got, admin)
	}
	ok(t, dir, "account", "set", "--tenant", "fabrikam")
	if got := appIDOfToken(t, dir); got != fabrikam.Admin.ClientID {
		t.Errorf("after account set --tenant fabrikam, commands sign in as %s", got)
	}
	fails(t, dir, "not both", "account", "set", "--name", "contoso", "--tenant", "contoso")
	fails(t, dir, "no profile named", "account", "set", "--name", "nosuch")
	fails(t, dir, "signs in to tenant fabrikam, not contoso", "ad", "app", "list", "--profile", "fabrikam", "--tenant", "contoso")

	// logout --name forgets one profile; the tenant falls back to its administrator.
	ok(t, dir, "account", "set", "--name", ci)
	ok(t, dir, "logout", "--name", ci)
	okJSON(t, dir, &acct, "account", "show", "--tenant", "contoso")
	if acct.Profile != "contoso" || !acct.IsDefault {
		t.Errorf("after logout of the default, contoso's default is %+v", acct)
	}
}

func TestProfilesMigration(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "acme")
	// The first version of profiles.json: one profile per tenant, keyed by
	// tenant id, without names.
	old := map[string]map[string]any{"profiles": {tenant.TenantID: map[string]any{
		"tenantId": tenant.TenantID, "tenantName": "acme", "domain": "acme.onmicrosoft.com", "subscriptionId": tenant.SubscriptionID,
		"clientId": tenant.Admin.ClientID, "clientSecret": tenant.Admin.ClientSecret, "saved": "2026-01-01T00:00:00Z"}}}
	data, _ := json.Marshal(old)
	if err := os.WriteFile(filepath.Join(dir, profilesFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	var accounts []accountView
	okJSON(t, dir, &accounts, "account", "list")
	if len(accounts) != 1 || accounts[0].Profile != "acme" || !accounts[0].IsDefault || accounts[0].User.Name != tenant.Admin.ClientID {
		t.Fatalf("account list of a first-version file = %+v", accounts)
	}
	if got := appIDOfToken(t, dir, "--tenant", "acme"); got != tenant.Admin.ClientID {
		t.Errorf("the migrated profile signs in as %s", got)
	}
	// The next write stores the new version, with the profile's name.
	app, secret := signInClient(t, dir, "ops")
	ok(t, dir, "login", "--service-principal", "-u", app.AppID, "-p", secret, "--tenant", "acme", "--name", "ops")
	raw, err := os.ReadFile(filepath.Join(dir, profilesFile))
	if err != nil {
		t.Fatal(err)
	}
	var stored profileStore
	if err := json.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.Profiles) != 2 || stored.Profiles["acme"].ClientID != tenant.Admin.ClientID || stored.Profiles["ops"].ClientID != app.AppID ||
		stored.Defaults[tenant.TenantID] != "ops" {
		t.Errorf("profiles.json after a login = %s", raw)
	}
	// A malformed file is an error that names it, not a guess.
	if err := os.WriteFile(filepath.Join(dir, profilesFile), []byte(`{"profiles": {"x": {"name": "y"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, dir, "malformed", "account", "list")
}

// identityHeaderWorks reports whether the managed-identity endpoint gives
// the environment e a token, as it would a workload.
func identityHeaderWorks(t *testing.T, c *cli, e envOutput) bool {
	t.Helper()
	opts, _, err := c.clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {"https://management.azure.com/"}, "client_id": {e.set["AZURE_CLIENT_ID"]}}
	req, _ := http.NewRequest(http.MethodGet, e.set["IDENTITY_ENDPOINT"]+"?"+q.Encode(), nil)
	req.Header.Set("X-IDENTITY-HEADER", e.set["IDENTITY_HEADER"])
	resp, err := opts.Transport.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func TestEnvReuse(t *testing.T) {
	dir := startServerWith(t, server.Config{ProxyListen: "127.0.0.1:0"})
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "contoso")
	var id azclient.Identity
	okJSON(t, dir, &id, "identity", "create", "worker")
	c := &cli{dataDir: dir, stdout: os.Stdout, stderr: os.Stderr, getenv: func(string) string { return "" }}
	workloads := func() []azclient.Workload {
		var ws []azclient.Workload
		okJSON(t, dir, &ws, "workload", "list")
		return ws
	}

	// Without --reuse each call makes a workload; with it, the last one is
	// taken again with a new header, and the old header stops working.
	first := parseEnv(t, ok(t, dir, "env", "--identity", "worker"))
	second := parseEnv(t, ok(t, dir, "env", "--identity", "worker"))
	if n := len(workloads()); n != 2 {
		t.Fatalf("two env calls made %d workloads", n)
	}
	r := tb(t, dir, "env", "--identity", "worker", "--reuse")
	if r.code != 0 || !strings.Contains(r.stderr, "Reusing workload worker-env-") {
		t.Fatalf("env --reuse: exit %d %s", r.code, r.stderr)
	}
	reused := parseEnv(t, r.stdout)
	if n := len(workloads()); n != 2 {
		t.Errorf("env --reuse made a workload: %d", n)
	}
	if reused.set["AZURE_CLIENT_ID"] != id.ClientID || !identityHeaderWorks(t, c, reused) {
		t.Errorf("the reused workload's environment gets no token: %+v", reused.set)
	}
	works := 0
	for _, e := range []envOutput{first, second} {
		if identityHeaderWorks(t, c, e) {
			works++
		}
	}
	if works != 1 {
		t.Errorf("%d of the two earlier headers still work; want 1 (the reused workload's header was renewed)", works)
	}

	// A workload a person made for the identity is never taken.
	for _, w := range workloads() {
		ok(t, dir, "workload", "delete", w.Name)
	}
	var api azclient.Workload
	okJSON(t, dir, &api, "workload", "create", "api", "--identity", "worker")
	r = tb(t, dir, "env", "--identity", "worker", "--reuse")
	if r.code != 0 || !strings.Contains(r.stderr, "Created workload worker-env-") {
		t.Fatalf("env --reuse with only a person's workload: exit %d %s", r.code, r.stderr)
	}
	apiEnv := envOutput{set: map[string]string{"AZURE_CLIENT_ID": id.ClientID, "IDENTITY_HEADER": api.IdentityHeader,
		"IDENTITY_ENDPOINT": reused.set["IDENTITY_ENDPOINT"]}}
	if !identityHeaderWorks(t, c, apiEnv) {
		t.Error("env --reuse renewed the header of a workload it did not make")
	}

	// --secret --reuse replaces the secrets env added, not the others.
	admin := tenant.Admin.ClientID
	ok(t, dir, "env", "--app", admin, "--secret")
	ok(t, dir, "env", "--app", admin, "--secret")
	e := parseEnv(t, ok(t, dir, "env", "--app", admin, "--secret", "--reuse"))
	var app azclient.Application
	okJSON(t, dir, &app, "ad", "app", "show", "--id", admin)
	envSecrets := 0
	for _, p := range app.PasswordCredentials {
		if strings.HasPrefix(p.DisplayName, envSecretName) {
			envSecrets++
		}
	}
	if envSecrets != 1 || len(app.PasswordCredentials) != 2 {
		t.Errorf("after env --secret --reuse the application has %d secrets, %d of env's; want the administrator's and one of env's: %+v",
			len(app.PasswordCredentials), envSecrets, app.PasswordCredentials)
	}
	opts, authority, err := c.clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	secretCred, err := azclient.NewClientSecretCredential(authority, tenant.TenantID, admin, e.set["AZURE_CLIENT_SECRET"], opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secretCred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{azclient.GraphScope}}); err != nil {
		t.Errorf("the secret env --secret --reuse exported gets no token: %v", err)
	}
	// The CLI's own profile still signs in.
	ok(t, dir, "ad", "app", "show", "--id", admin)

	fails(t, dir, "--reuse", "env", "--federated-token", "/nonexistent", "--reuse")
}
