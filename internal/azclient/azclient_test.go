package azclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// env is a real tenantbridge on a loopback port and clients of it.
type env struct {
	dir       string
	cred      azclient.OperatorCredential
	op        *azclient.Operator
	opts      policy.ClientOptions
	authority string
}

func start(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	e := &env{dir: dir}
	if e.cred, err = azclient.ReadOperatorCredential(filepath.Join(dir, "operator.json")); err != nil {
		t.Fatal(err)
	}
	if e.op, err = azclient.NewOperatorFromCredential(e.cred); err != nil {
		t.Fatal(err)
	}
	local, err := e.cred.Local()
	if err != nil {
		t.Fatal(err)
	}
	if e.opts, err = local.ClientOptions(); err != nil {
		t.Fatal(err)
	}
	if e.authority, err = e.cred.AuthorityURL(); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) graphAs(t *testing.T, tenantID, clientID, secret string) *azclient.Graph {
	t.Helper()
	cred, err := azclient.NewClientSecretCredential(e.authority, tenantID, clientID, secret, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	g, err := azclient.NewGraph(azclient.GraphEndpoint, cred, &e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (e *env) tenant(t *testing.T, name string) (*azclient.Tenant, *azclient.Graph) {
	t.Helper()
	ten, err := e.op.CreateTenant(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if ten.Admin == nil || ten.Admin.ClientSecret == "" {
		t.Fatalf("tenant without admin credential: %+v", ten)
	}
	return ten, e.graphAs(t, ten.TenantID, ten.Admin.ClientID, ten.Admin.ClientSecret)
}

func TestOperator(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	ten, _ := e.tenant(t, "acme")
	if ten.Domain != "acme.onmicrosoft.com" || ten.SubscriptionID == "" {
		t.Errorf("created: %+v", ten)
	}
	for _, ref := range []string{"acme", ten.TenantID, ten.Domain} {
		got, err := e.op.GetTenant(ctx, ref)
		if err != nil || got.TenantID != ten.TenantID || got.Admin != nil {
			t.Errorf("GetTenant(%s) = %+v, %v", ref, got, err)
		}
	}
	ts, err := e.op.ListTenants(ctx)
	if err != nil || len(ts) != 1 || ts[0].Name != "acme" {
		t.Errorf("ListTenants = %+v, %v", ts, err)
	}
	recs, err := e.op.Audit(ctx, azclient.AuditQuery{Tenant: "acme"})
	if err != nil || len(recs) == 0 || recs[0].Action != "tenant.create" || recs[0].Seq == 0 || recs[0].TargetTenant != ten.TenantID {
		t.Errorf("Audit = %+v, %v", recs, err)
	}
	if more, err := e.op.Audit(ctx, azclient.AuditQuery{Tenant: "acme", After: recs[len(recs)-1].Seq}); err != nil || len(more) != 0 {
		t.Errorf("Audit after the last = %+v, %v", more, err)
	}

	_, err = e.op.GetTenant(ctx, "nosuch")
	var re *azclient.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 404 || re.Code != "TenantNotFound" || strings.Contains(err.Error(), "\n") {
		t.Errorf("GetTenant(nosuch) = %v", err)
	}
	_, err = e.op.CreateTenant(ctx, "acme")
	if !errors.As(err, &re) || re.StatusCode != 409 {
		t.Errorf("duplicate CreateTenant = %v", err)
	}

	if err := e.op.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.op.GetTenant(ctx, "acme"); !azclient.IsNotFound(err) {
		t.Errorf("after delete: %v", err)
	}

	wrong := e.cred
	wrong.Key = "tbop_not-the-key-not-the-key-not-the-key"
	op, err := azclient.NewOperatorFromCredential(wrong)
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.ListTenants(ctx)
	if !errors.As(err, &re) || re.StatusCode != 401 || re.Code != "Unauthorized" {
		t.Errorf("wrong key: %v", err)
	}
}

func TestGraph(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	ten, g := e.tenant(t, "contoso")

	app, err := g.CreateApplication(ctx, azclient.Application{DisplayName: "Contoso API", SignInAudience: "AzureADMultipleOrgs",
		IdentifierURIs: []string{"api://contoso.onmicrosoft.com/contoso-api"}})
	if err != nil {
		t.Fatal(err)
	}
	if app.ID == "" || app.AppID == "" || app.SignInAudience != "AzureADMultipleOrgs" || len(app.IdentifierURIs) != 1 || app.CreatedDateTime.IsZero() {
		t.Fatalf("CreateApplication = %+v", app)
	}
	for _, id := range []string{app.ID, app.AppID} {
		got, err := g.GetApplication(ctx, id)
		if err != nil || got.ID != app.ID {
			t.Errorf("GetApplication(%s) = %+v, %v", id, got, err)
		}
	}
	apps, err := g.ListApplications(ctx, "appId eq "+azclient.ODataString(app.AppID))
	if err != nil || len(apps) != 1 || apps[0].ID != app.ID {
		t.Errorf("ListApplications(appId eq) = %+v, %v", apps, err)
	}
	apps, err = g.ListApplications(ctx, "startswith(displayName,'Contoso')")
	if err != nil || len(apps) != 1 {
		t.Errorf("ListApplications(startswith) = %+v, %v", apps, err)
	}

	// Secrets.
	end := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	pw, err := g.AddPassword(ctx, app.ID, azclient.PasswordCredential{DisplayName: "ci", EndDateTime: end})
	if err != nil {
		t.Fatal(err)
	}
	if pw.SecretText == "" || pw.KeyID == "" || pw.Hint == "" || !strings.HasPrefix(pw.SecretText, pw.Hint) || !pw.EndDateTime.Equal(end) {
		t.Errorf("AddPassword = %+v", pw)
	}
	got, err := g.GetApplication(ctx, app.ID)
	if err != nil || len(got.PasswordCredentials) != 1 || got.PasswordCredentials[0].SecretText != "" {
		t.Errorf("after AddPassword: %+v, %v", got, err)
	}

	// The app's own token works once its service principal exists.
	sp, err := g.CreateServicePrincipal(ctx, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	if sp.ID == "" || sp.AppID != app.AppID || sp.AppOwnerOrganizationID != ten.TenantID {
		t.Errorf("CreateServicePrincipal = %+v", sp)
	}
	cred, err := azclient.NewClientSecretCredential(e.authority, ten.TenantID, app.AppID, pw.SecretText, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azclient.GraphScope}})
	if err != nil {
		t.Fatalf("token with the new secret: %s", azclient.Describe(err))
	}
	claims, err := azclient.UnverifiedClaims(tok.Token)
	if err != nil || claims["oid"] != sp.ID || claims["tid"] != ten.TenantID {
		t.Errorf("claims = %v, %v", claims, err)
	}
	for _, id := range []string{sp.ID, app.AppID} {
		got, err := g.GetServicePrincipal(ctx, id)
		if err != nil || got.ID != sp.ID {
			t.Errorf("GetServicePrincipal(%s) = %+v, %v", id, got, err)
		}
	}
	sps, err := g.ListServicePrincipals(ctx, "")
	if err != nil || len(sps) < 2 {
		t.Errorf("ListServicePrincipals = %d, %v", len(sps), err)
	}

	if err := g.RemovePassword(ctx, app.ID, pw.KeyID); err != nil {
		t.Fatal(err)
	}
	fresh, err := azclient.NewClientSecretCredential(e.authority, ten.TenantID, app.AppID, pw.SecretText, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fresh.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azclient.GraphScope}})
	te, ok := azclient.AsTokenError(err)
	if !ok || te.Code == "" || !strings.HasPrefix(te.Code, "AADSTS") || te.StatusCode != 401 && te.StatusCode != 400 {
		t.Errorf("token with a removed secret: %v (%+v)", err, te)
	}
	if d := azclient.Describe(err); strings.Contains(d, "\n") || !strings.Contains(d, te.Code) {
		t.Errorf("Describe = %q", d)
	}

	// Groups and users.
	grp, err := g.CreateGroup(ctx, azclient.Group{DisplayName: "Ops", MailNickname: "ops", SecurityEnabled: true})
	if err != nil || grp.ID == "" || !grp.SecurityEnabled || grp.MailEnabled {
		t.Fatalf("CreateGroup = %+v, %v", grp, err)
	}
	on := true
	u, err := g.CreateUser(ctx, azclient.User{DisplayName: "Alice", UserPrincipalName: "alice@contoso.onmicrosoft.com", MailNickname: "alice",
		AccountEnabled: &on, PasswordProfile: &azclient.PasswordProfile{Password: "Correct-Horse-Battery-9"}})
	if err != nil || u.ID == "" {
		t.Fatalf("CreateUser = %+v, %v", u, err)
	}
	for _, m := range []string{u.ID, sp.ID} {
		if err := g.AddGroupMember(ctx, grp.ID, m); err != nil {
			t.Errorf("AddGroupMember(%s): %v", m, err)
		}
	}
	if got, err := g.GetUser(ctx, u.UserPrincipalName); err != nil || got.ID != u.ID {
		t.Errorf("GetUser(upn) = %+v, %v", got, err)
	}

	// Errors are typed, one line, and unwrap to azcore's.
	err = g.AddGroupMember(ctx, grp.ID, "00000000-0000-0000-0000-00000000dead")
	var re *azclient.ResponseError
	if !errors.As(err, &re) || re.StatusCode/100 != 4 || re.Code == "" || strings.Contains(err.Error(), "\n") {
		t.Errorf("AddGroupMember(unknown) = %v", err)
	}
	var azErr *azcore.ResponseError
	if !errors.As(err, &azErr) || azErr.StatusCode != re.StatusCode {
		t.Errorf("the error does not unwrap to *azcore.ResponseError: %v", err)
	}

	// Deleting.
	if err := g.DeleteServicePrincipal(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := g.GetServicePrincipal(ctx, sp.ID); !azclient.IsNotFound(err) {
		t.Errorf("after DeleteServicePrincipal: %v", err)
	}
	if err := g.DeleteApplication(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	_, err = g.GetApplication(ctx, app.AppID)
	if !azclient.IsNotFound(err) {
		t.Errorf("after DeleteApplication: %v", err)
	}
}

// TestGraphPaging lists more objects than one page holds: the client must
// follow @odata.nextLink.
func TestGraphPaging(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	_, g := e.tenant(t, "paging")
	const n = 105
	for i := range n {
		if _, err := g.CreateGroup(ctx, azclient.Group{DisplayName: fmt.Sprintf("group %03d", i), MailNickname: fmt.Sprintf("g%d", i), SecurityEnabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	groups, err := g.ListGroups(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, grp := range groups {
		seen[grp.ID] = true
	}
	if len(groups) != n || len(seen) != n {
		t.Errorf("ListGroups returned %d groups (%d distinct); want %d", len(groups), len(seen), n)
	}
}

// TestCrossTenant: a multi-tenant app gets tokens in a tenant that
// provisioned it and nowhere else.
func TestCrossTenant(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	_, provider := e.tenant(t, "fabrikam")
	customer, customerGraph := e.tenant(t, "contoso")
	outsider, _ := e.tenant(t, "northwind")
	app, err := provider.CreateApplication(ctx, azclient.Application{DisplayName: "Monitor", SignInAudience: "AzureADMultipleOrgs"})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := provider.AddPassword(ctx, app.ID, azclient.PasswordCredential{})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := customerGraph.CreateServicePrincipal(ctx, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	token := func(tenantID string) (string, error) {
		cred, err := azclient.NewClientSecretCredential(e.authority, tenantID, app.AppID, pw.SecretText, e.opts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azclient.GraphScope}})
		return tok.Token, err
	}
	tok, err := token(customer.TenantID)
	if err != nil {
		t.Fatalf("customer-tenant token: %s", azclient.Describe(err))
	}
	claims, _ := azclient.UnverifiedClaims(tok)
	if claims["tid"] != customer.TenantID || claims["oid"] != sp.ID || claims["appid"] != app.AppID {
		t.Errorf("claims = %v", claims)
	}
	_, err = token(outsider.TenantID)
	if te, ok := azclient.AsTokenError(err); !ok || te.Code != "AADSTS700016" {
		t.Errorf("outsider token: %v", err)
	}
	if err := customerGraph.DeleteServicePrincipal(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := token(customer.TenantID); err == nil {
		t.Error("a token was issued after the customer deleted the service principal")
	}
}

func TestLocalTransport(t *testing.T) {
	e := start(t)
	local, err := e.cred.Local()
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"login.microsoftonline.com": true, "GRAPH.microsoft.com.": true, "management.azure.com": true,
		"myvault.vault.azure.net": true, "ns.servicebus.windows.net": true, "vault.azure.net": false,
		"evil.graph.microsoft.com.attacker.example": false, "example.com": false, "login.contoso.test": false,
	} {
		if got := local.Serves(host); got != want {
			t.Errorf("Serves(%q) = %v", host, got)
		}
	}
	if !(azclient.Local{CustomDomain: "contoso.test"}).Serves("kv.vault.contoso.test") {
		t.Error("custom domain vault host not served")
	}

	hc, err := local.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	// Azure's real URL reaches the local server, with TLS verified for that name.
	resp, err := hc.Get("https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/common/oauth2/v2.0/authorize")
	if err != nil {
		t.Fatalf("GET login.microsoftonline.com through the local transport: %v", err)
	}
	resp.Body.Close()

	// A name the server has no certificate for is dialled but refused by TLS.
	custom := local
	custom.CustomDomain = "notcertified.test"
	hc2, err := custom.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc2.Get("https://graph.notcertified.test/v1.0/applications"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("uncertified name: %v; want a certificate error", err)
	}

	// Another tenantbridge's CA is not trusted.
	other := start(t)
	foreign := local
	foreign.CAFile = other.cred.CAFile
	hc3, err := foreign.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc3.Get("https://graph.microsoft.com/v1.0/applications"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("foreign CA: %v; want a certificate error", err)
	}

	if _, err := (azclient.Local{Address: "127.0.0.1:1", CAFile: filepath.Join(t.TempDir(), "none.pem")}).Transport(); err == nil {
		t.Error("a missing CA file was accepted")
	}
}

// staticToken is a credential for a test Graph server that checks nothing.
type staticToken struct{}

func (staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "test", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// TestNextLinkStaysOnHost: a Graph server that sends the client elsewhere
// (where the bearer token would follow) is refused.
func TestNextLinkStaysOnHost(t *testing.T) {
	var srvURL string
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("page") {
		case "":
			_ = json.NewEncoder(w).Encode(map[string]any{"value": []any{map[string]string{"id": "1"}}, "@odata.nextLink": srvURL + "/v1.0/groups?page=2"})
		case "2":
			_ = json.NewEncoder(w).Encode(map[string]any{"value": []any{map[string]string{"id": "2"}}, "@odata.nextLink": "https://attacker.example/v1.0/groups?page=3"})
		}
	}))
	defer ts.Close()
	srvURL = ts.URL
	g, err := azclient.NewGraph(ts.URL+"/v1.0", staticToken{}, &policy.ClientOptions{Transport: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.ListGroups(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "another host") {
		t.Errorf("ListGroups followed a foreign nextLink: %v", err)
	}
	if _, err := azclient.NewGraph("http://graph.microsoft.com/v1.0", staticToken{}, nil); err == nil {
		t.Error("an http endpoint was accepted")
	}
}

func TestUnverifiedClaims(t *testing.T) {
	for _, bad := range []string{"", "a.b", "a.!!!.c", "a.bm90IGpzb24.c"} {
		if _, err := azclient.UnverifiedClaims(bad); err == nil {
			t.Errorf("UnverifiedClaims(%q) succeeded", bad)
		}
	}
	c, err := azclient.UnverifiedClaims("x.eyJ0aWQiOiJ0In0.y")
	if err != nil || c["tid"] != "t" {
		t.Errorf("UnverifiedClaims = %v, %v", c, err)
	}
}

func TestIdentityEndpoint(t *testing.T) {
	for url, want := range map[string]string{
		"https://127.0.0.1:8443":  "https://127.0.0.1:8443/t1/msi/token",
		"https://0.0.0.0:8443":    "https://127.0.0.1:8443/t1/msi/token",
		"https://10.1.2.3:9000/":  "https://10.1.2.3:9000/t1/msi/token",
		"https://tb.example.test": "https://tb.example.test:443/t1/msi/token",
	} {
		got, err := azclient.OperatorCredential{URL: url, CAFile: "ca.pem"}.IdentityEndpoint("t1")
		if err != nil || got != want {
			t.Errorf("IdentityEndpoint for %s = %q, %v; want %q", url, got, err, want)
		}
	}
	if _, err := (azclient.OperatorCredential{URL: "http://127.0.0.1:8443"}).IdentityEndpoint("t1"); err == nil {
		t.Error("an http server URL was accepted")
	}
}
