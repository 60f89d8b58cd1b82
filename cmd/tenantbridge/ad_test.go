package main

import (
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// graphOf is the CLI's own Graph session of a tenant's profile, for
// checking through Graph what a command did.
func graphOf(t *testing.T, dir, tenant string) *azclient.Graph {
	t.Helper()
	c := &cli{dataDir: dir, stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	s, err := c.session(tenant)
	if err != nil {
		t.Fatal(err)
	}
	return s.graph
}

// People without the demo: a Global Administrator made through Graph, an
// authenticator enrolled through the operator API (URI and QR code), and
// the user deleted again.
func TestUserCommands(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "people")
	upn := "ada@" + tenant.Domain

	// A role that does not exist creates nothing.
	fails(t, dir, "Global Administrator", "ad", "user", "create", "--display-name", "Ada", "--user-principal-name", upn,
		"--password", "Pw-9-correct-horse", "--role", "Galactic Administrator")
	if out := ok(t, dir, "ad", "user", "list", "-o", "json"); strings.Contains(out, upn) {
		t.Fatalf("a user was left behind by a refused --role:\n%s", out)
	}

	var created struct {
		ID                string   `json:"id"`
		UserPrincipalName string   `json:"userPrincipalName"`
		DirectoryRoles    []string `json:"directoryRoles"`
	}
	okJSON(t, dir, &created, "ad", "user", "create", "--display-name", "Ada", "--user-principal-name", upn,
		"--password", "Pw-9-correct-horse", "--role", "global administrator")
	if created.ID == "" || !strings.EqualFold(created.UserPrincipalName, upn) || !slices.Equal(created.DirectoryRoles, []string{"Global Administrator"}) {
		t.Fatalf("user create --role: %+v", created)
	}
	// Graph holds the assignment: the Global Administrator role's template id.
	g := graphOf(t, dir, "people")
	held, err := g.ListDirectoryRoleAssignments(t.Context(), "principalId eq "+azclient.ODataString(created.ID))
	if err != nil || len(held) != 1 || held[0].RoleDefinitionID != "62e90394-69f5-4237-9190-012177145e10" || held[0].DirectoryScopeID != "/" {
		t.Fatalf("role assignments of the new user: %+v %v", held, err)
	}

	// MFA: the URI, the secret, and on stderr the QR code of that URI.
	r := tb(t, dir, "ad", "user", "mfa", "enable", "--id", upn, "-o", "json")
	if r.code != 0 {
		t.Fatalf("mfa enable: %d %s", r.code, r.stderr)
	}
	var auth azclient.Authenticator
	if err := json.Unmarshal([]byte(r.stdout), &auth); err != nil {
		t.Fatalf("mfa enable -o json: %v\n%s", err, r.stdout)
	}
	u, err := url.Parse(auth.OtpauthURI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != auth.Secret || auth.UserID != created.ID {
		t.Fatalf("mfa enable: %+v (%v)", auth, err)
	}
	block, err := qrBlock(auth.OtpauthURI)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stderr, block) || !strings.Contains(block, "█") {
		t.Fatalf("mfa enable: stderr lacks the QR code of %s:\n%s", auth.OtpauthURI, r.stderr)
	}
	// Enrolled once; again only with --replace, which makes a new secret.
	fails(t, dir, "--replace", "ad", "user", "mfa", "enable", "--id", created.ID)
	var again azclient.Authenticator
	okJSON(t, dir, &again, "ad", "user", "mfa", "enable", "--id", created.ID, "--replace", "--qr=false")
	if again.Secret == "" || again.Secret == auth.Secret {
		t.Fatalf("mfa enable --replace: %+v", again)
	}
	fails(t, dir, "UserNotFound", "ad", "user", "mfa", "enable", "--id", "nobody@"+tenant.Domain)

	// Delete: gone from Graph.
	ok(t, dir, "ad", "user", "delete", "--id", upn)
	fails(t, dir, "Request_ResourceNotFound", "ad", "user", "show", "--id", created.ID)
	fails(t, dir, "Request_ResourceNotFound", "ad", "user", "delete", "--id", created.ID)
}

// Groups by name or id, their members listed and removed.
func TestGroupMemberCommands(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "groups")
	var grp azclient.Group
	okJSON(t, dir, &grp, "ad", "group", "create", "--display-name", "Operators", "--mail-nickname", "operators")
	var user azclient.User
	okJSON(t, dir, &user, "ad", "user", "create", "--display-name", "Bo", "--user-principal-name", "bo@"+tenant.Domain, "--password", "Pw-9-correct-horse")
	var app azclient.Application
	okJSON(t, dir, &app, "ad", "app", "create", "--display-name", "robot")
	var sp azclient.ServicePrincipal
	okJSON(t, dir, &sp, "ad", "sp", "create", "--id", app.AppID)

	ok(t, dir, "ad", "group", "member", "add", "--group", "Operators", "--member-id", user.ID)
	ok(t, dir, "ad", "group", "member", "add", "--group", grp.ID, "--member-id", sp.ID)
	var members []azclient.DirectoryObject
	okJSON(t, dir, &members, "ad", "group", "member", "list", "--group", "Operators")
	var got []string
	for _, m := range members {
		got = append(got, m.ODataType+" "+m.ID)
	}
	slices.Sort(got)
	want := []string{"#microsoft.graph.servicePrincipal " + sp.ID, "#microsoft.graph.user " + user.ID}
	if !slices.Equal(got, want) {
		t.Fatalf("members = %v, want %v", got, want)
	}
	table := ok(t, dir, "ad", "group", "member", "list", "--group", grp.ID, "-o", "table")
	if !strings.Contains(table, "bo@"+tenant.Domain) || !strings.Contains(table, app.AppID) {
		t.Fatalf("member table lacks the UPN or appId:\n%s", table)
	}

	ok(t, dir, "ad", "group", "member", "remove", "--group", "Operators", "--member-id", user.ID)
	okJSON(t, dir, &members, "ad", "group", "member", "list", "--group", grp.ID)
	if len(members) != 1 || members[0].ID != sp.ID {
		t.Fatalf("after remove: %+v", members)
	}
	fails(t, dir, "Request_ResourceNotFound", "ad", "group", "member", "remove", "--group", grp.ID, "--member-id", user.ID)
	fails(t, dir, "no group is named", "ad", "group", "member", "list", "--group", "Nobody")
}

const (
	graphAppID   = "00000003-0000-0000-c000-000000000000"
	userReadID   = "e1fe6dd8-ba31-4d61-89e7-88639da4683d" // Graph's delegated User.Read
	mailReadID   = "570282fd-fa5c-430d-a7fd-fc8dc98a9dca" // Graph's delegated Mail.Read
	userReadAll  = "df021288-bdef-4463-88db-98f22de89214" // Graph's application User.Read.All
	groupReadAll = "5b567255-7703-4780-807c-7be8301ae99b" // Graph's application Group.Read.All
)

// An application registered with az's flags, its permissions added,
// granted and admin-consented, and the token it then gets.
func TestAppPermissionCommands(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "perms")

	accessFile := filepath.Join(t.TempDir(), "access.json")
	access := `[{"resourceAppId":"` + graphAppID + `","resourceAccess":[{"id":"` + userReadID + `","type":"Scope"},{"id":"` + userReadAll + `","type":"Role"}]}]`
	if err := os.WriteFile(accessFile, []byte(access), 0o600); err != nil {
		t.Fatal(err)
	}
	var app azclient.Application
	okJSON(t, dir, &app, "ad", "app", "create", "--display-name", "reports",
		"--web-redirect-uris", "https://reports.example.com/signin,https://reports.example.com/alt",
		"--public-client-redirect-uris", "http://localhost",
		"--sign-in-audience", "AzureADMultipleOrgs",
		"--identifier-uris", "api://perms.onmicrosoft.com/reports",
		"--required-resource-accesses", "@"+accessFile)
	if app.Web == nil || !slices.Equal(app.Web.RedirectURIs, []string{"https://reports.example.com/signin", "https://reports.example.com/alt"}) ||
		app.PublicClient == nil || !slices.Equal(app.PublicClient.RedirectURIs, []string{"http://localhost"}) ||
		app.SignInAudience != "AzureADMultipleOrgs" || !slices.Equal(app.IdentifierURIs, []string{"api://perms.onmicrosoft.com/reports"}) ||
		len(app.RequiredResourceAccess) != 1 || len(app.RequiredResourceAccess[0].ResourceAccess) != 2 {
		t.Fatalf("app create: %+v", app)
	}
	// The same JSON inline, as a manifest object; and bad JSON.
	var inline azclient.Application
	okJSON(t, dir, &inline, "ad", "app", "create", "--display-name", "inline", "--required-resource-accesses", `{"requiredResourceAccess":`+access+`}`)
	if len(inline.RequiredResourceAccess) != 1 {
		t.Fatalf("manifest form: %+v", inline)
	}
	fails(t, dir, "--required-resource-accesses", "ad", "app", "create", "--display-name", "bad", "--required-resource-accesses", `[{"resourceAppId":`)
	fails(t, dir, "no such file", "ad", "app", "create", "--display-name", "bad", "--required-resource-accesses", "@/nonexistent/access.json")
	// Graph's own rules still apply: a javascript: redirect URI is refused.
	fails(t, dir, "redirect", "ad", "app", "create", "--display-name", "bad", "--web-redirect-uris", "javascript:alert(1)")

	// add: appended once, however often it is run.
	for range 2 {
		okJSON(t, dir, &app, "ad", "app", "permission", "add", "--id", app.AppID, "--api", graphAppID,
			"--api-permissions", groupReadAll+"=Role "+mailReadID+"=Scope")
	}
	var perms []azclient.RequiredResourceAccess
	okJSON(t, dir, &perms, "ad", "app", "permission", "list", "--id", app.AppID)
	if len(perms) != 1 || len(perms[0].ResourceAccess) != 4 {
		t.Fatalf("permission list: %+v", perms)
	}
	fails(t, dir, "=Scope", "ad", "app", "permission", "add", "--id", app.AppID, "--api", graphAppID, "--api-permissions", "User.Read")
	fails(t, dir, "Scope (delegated) or Role", "ad", "app", "permission", "add", "--id", app.AppID, "--api", graphAppID, "--api-permissions", userReadID+"=Delegated")

	// admin-consent: every scope in one AllPrincipals grant, every role
	// an app role assignment; a second run finds them granted.
	var rows []consented
	okJSON(t, dir, &rows, "ad", "app", "permission", "admin-consent", "--id", app.AppID)
	if len(rows) != 4 {
		t.Fatalf("admin-consent: %+v", rows)
	}
	for _, r := range rows {
		if r.Result != "granted" {
			t.Errorf("admin-consent: %+v", r)
		}
	}
	okJSON(t, dir, &rows, "ad", "app", "permission", "admin-consent", "--id", app.AppID)
	for _, r := range rows {
		if r.Result != "alreadyGranted" {
			t.Errorf("admin-consent again: %+v", r)
		}
	}
	var grants []azclient.OAuth2PermissionGrant
	okJSON(t, dir, &grants, "ad", "app", "permission", "list-grants", "--id", app.AppID)
	if len(grants) != 1 || grants[0].ConsentType != "AllPrincipals" || strings.Join(strings.Fields(grants[0].Scope), " ") != "Mail.Read User.Read" {
		t.Fatalf("grants after admin-consent: %+v", grants)
	}
	// The application's own token now carries the application permissions.
	var cred credentialResetView
	okJSON(t, dir, &cred, "ad", "app", "credential", "reset", "--id", app.AppID)
	if roles := appRoles(t, dir, tenant.TenantID, app.AppID, cred.Password); !slices.Contains(roles, "User.Read.All") || !slices.Contains(roles, "Group.Read.All") {
		t.Fatalf("token roles after admin-consent: %v", roles)
	}

	// grant replaces the AllPrincipals grant it makes.
	var grant azclient.OAuth2PermissionGrant
	okJSON(t, dir, &grant, "ad", "app", "permission", "grant", "--id", app.AppID, "--api", graphAppID, "--scope", "User.Read")
	okJSON(t, dir, &grants, "ad", "app", "permission", "list-grants", "--id", app.AppID)
	if len(grants) != 1 || grants[0].ID != grant.ID || grants[0].Scope != "User.Read" {
		t.Fatalf("grants after grant: %+v (made %+v)", grants, grant)
	}
	fails(t, dir, "--principal-id", "ad", "app", "permission", "grant", "--id", app.AppID, "--api", graphAppID, "--scope", "User.Read", "--consent-type", "Principal")

	// A permission Graph does not offer stops admin-consent.
	var other azclient.Application
	okJSON(t, dir, &other, "ad", "app", "create", "--display-name", "other")
	ok(t, dir, "ad", "app", "permission", "add", "--id", other.AppID, "--api", graphAppID, "--api-permissions", "00000000-0000-0000-0000-000000000001=Role")
	fails(t, dir, "offers no application permission", "ad", "app", "permission", "admin-consent", "--id", other.AppID)
	var none azclient.Application
	okJSON(t, dir, &none, "ad", "app", "create", "--display-name", "none")
	fails(t, dir, "asks for no API permissions", "ad", "app", "permission", "admin-consent", "--id", none.AppID)
}

// appRoles signs in as an application with its secret and returns the
// roles of its Graph token.
func appRoles(t *testing.T, dir, tenantID, appID, secret string) []string {
	t.Helper()
	c := &cli{dataDir: dir, stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	opts, authority, err := c.clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := azclient.NewClientSecretCredential(authority, tenantID, appID, secret, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{azclient.GraphScope}})
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	raw, _ := claimsOf(t, tok.Token)["roles"].([]any)
	for _, r := range raw {
		s, _ := r.(string)
		roles = append(roles, s)
	}
	return roles
}

// Federated credentials with az's flags: --parameters as @FILE or JSON,
// shown and deleted by name.
func TestFederatedCredentialCommands(t *testing.T) {
	dir := startServer(t)
	okJSON(t, dir, &tenantJSON{}, "tenant", "create", "fed")
	var app azclient.Application
	okJSON(t, dir, &app, "ad", "app", "create", "--display-name", "deployer")

	params := filepath.Join(t.TempDir(), "cred.json")
	body := `{"name":"github-main","issuer":"https://token.actions.githubusercontent.com","subject":"repo:contoso/app:ref:refs/heads/main","description":"main branch"}`
	if err := os.WriteFile(params, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var fc azclient.FederatedCredential
	okJSON(t, dir, &fc, "ad", "app", "federated-credential", "create", "--id", app.AppID, "--parameters", "@"+params)
	if fc.ID == "" || fc.Name != "github-main" || !slices.Equal(fc.Audiences, []string{"api://AzureADTokenExchange"}) {
		t.Fatalf("create: %+v", fc)
	}
	okJSON(t, dir, &fc, "ad", "app", "federated-credential", "create", "--id", app.ID, "-p",
		`{"name":"gitlab","issuer":"https://gitlab.example.com","subject":"project_path:g/p:ref_type:branch:ref:main","audiences":["api://AzureADTokenExchange"]}`)
	var list []azclient.FederatedCredential
	okJSON(t, dir, &list, "ad", "app", "federated-credential", "list", "--id", app.AppID)
	if len(list) != 2 {
		t.Fatalf("list: %+v", list)
	}
	var shown azclient.FederatedCredential
	okJSON(t, dir, &shown, "ad", "app", "federated-credential", "show", "--id", app.AppID, "--federated-credential-id", "gitlab")
	if shown.ID != fc.ID || shown.Issuer != "https://gitlab.example.com" {
		t.Fatalf("show by name: %+v", shown)
	}
	ok(t, dir, "ad", "app", "federated-credential", "delete", "--id", app.AppID, "--federated-credential-id", "github-main")
	okJSON(t, dir, &list, "ad", "app", "federated-credential", "list", "--id", app.AppID)
	if len(list) != 1 || list[0].Name != "gitlab" {
		t.Fatalf("after delete: %+v", list)
	}
	fails(t, dir, "Request_ResourceNotFound", "ad", "app", "federated-credential", "delete", "--id", app.AppID, "--federated-credential-id", "github-main")
	fails(t, dir, "unknown field", "ad", "app", "federated-credential", "create", "--id", app.AppID, "--parameters",
		`{"name":"x","issuer":"https://i.example.com","subjects":"s"}`)
	fails(t, dir, "name, issuer and subject", "ad", "app", "federated-credential", "create", "--id", app.AppID, "--parameters", `{"name":"x"}`)
	// Graph's rules: the issuer of another tenant of Entra is refused
	// (AADSTS700236 at sign-in; Graph refuses it at creation here).
}

// A tenant whose administrator application lacks
// RoleManagement.ReadWrite.Directory (one created before the bootstrap
// administrator held it): ad user create --role is refused, keeps no user,
// and says how to grant the permission with the CLI, which then works.
func TestUserRoleWithoutRoleManagement(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "older")
	g := graphOf(t, dir, "older")
	admin, err := g.GetServicePrincipal(t.Context(), tenant.Admin.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	held, err := g.ListAppRoleAssignments(t.Context(), admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(held, func(a azclient.AppRoleAssignment) bool { return a.AppRoleID == roleManagementPermission })
	if i < 0 {
		t.Fatalf("the bootstrap administrator lacks RoleManagement.ReadWrite.Directory: %+v", held)
	}
	if err := g.RemoveAppRoleAssignment(t.Context(), admin.ID, held[i].ID); err != nil {
		t.Fatal(err)
	}

	upn := "root@" + tenant.Domain
	create := []string{"ad", "user", "create", "--display-name", "Root", "--user-principal-name", upn,
		"--password", "Pw-9-correct-horse", "--role", "Global Administrator"}
	msg := fails(t, dir, "Authorization_RequestDenied", create...)
	if !strings.Contains(msg, "--id "+tenant.Admin.ClientID+" --api "+graphAppID+" --api-permissions "+roleManagementPermission+"=Role") {
		t.Fatalf("no way out in %q", msg)
	}
	if out := ok(t, dir, "ad", "user", "list", "-o", "json"); strings.Contains(out, upn) {
		t.Fatalf("the refused user was kept:\n%s", out)
	}
	ok(t, dir, "ad", "app", "permission", "add", "--id", tenant.Admin.ClientID, "--api", graphAppID, "--api-permissions", roleManagementPermission+"=Role")
	ok(t, dir, "ad", "app", "permission", "admin-consent", "--id", tenant.Admin.ClientID)
	ok(t, dir, append(create, "-o", "json")...)
}
