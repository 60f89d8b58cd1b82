package console_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/console"
	"github.com/tenantbridge/tenantbridge/internal/console/consoletest"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/servicebus"
	"github.com/tenantbridge/tenantbridge/internal/signin"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

const operatorKey = "operator-key-for-the-console-tests-0123456789"

type env struct {
	e     *testenv.Env
	w     *consoletest.World
	h     *console.Handler
	rbac  *rbac.Engine
	st    store.Store
	graph *console.Graph
}

func newEnv(t testing.TB, st store.Store) *env {
	t.Helper()
	e := testenv.New(t, st)
	w, err := consoletest.Build(context.Background(), e.Dir, st, "")
	testenv.Must(t, err)
	engine := rbac.New(st, e.Dir)
	resources := arm.New(arm.Config{Directory: e.Dir, Store: st, RBAC: engine, Verifier: e.Verifier, Audit: e.Audit, Logger: e.Logger})
	h := console.New(console.Config{Directory: e.Dir, Store: st, RBAC: engine, Roles: resources, Audit: e.Audit,
		KEK: e.KEK, OperatorKey: operatorKey, PollInterval: 20 * time.Millisecond, Heartbeat: 50 * time.Millisecond})
	e.Route(func(r *http.Request) http.Handler {
		if strings.HasPrefix(r.URL.Path, console.Prefix) {
			return h
		}
		return nil
	})
	return &env{e: e, w: w, h: h, rbac: engine, st: st, graph: &console.Graph{Dir: e.Dir, St: st, RBAC: engine}}
}

// browser is one signed-in (or not) browser: its cookies and its CSRF token.
type browser struct {
	t    testing.TB
	env  *env
	jar  http.CookieJar
	csrf string
}

const base = "https://127.0.0.1"

func (v *env) anonymous(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, env: v, jar: jar}
}

// signedIn is a browser holding the sign-in pages' session of the user.
func (v *env) signedIn(t testing.TB, u *directory.User) *browser {
	t.Helper()
	b := v.anonymous(t)
	s := userauth.Session{TenantID: u.TenantID, UserID: u.ID, UPN: u.UserPrincipalName, AuthTime: time.Now(),
		AMR: []string{"pwd", "mfa"}, Expires: time.Now().Add(time.Hour), CSRF: userauth.NewID()}
	val, err := userauth.SealSession(v.e.KEK, s)
	testenv.Must(t, err)
	base, _ := url.Parse(base + "/")
	b.jar.SetCookies(base, []*http.Cookie{{Name: signin.SessionCookie, Value: val, Path: "/", Secure: true}})
	b.csrf = s.CSRF
	return b
}

// operator signs in with the operator key, as the sign-in page's form does.
func (v *env) operator(t *testing.T) *browser {
	t.Helper()
	b := v.anonymous(t)
	status, body := b.get("/console/")
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if status != 200 || csrf == nil {
		t.Fatalf("sign-in page: %d %s", status, body)
	}
	if status, body := b.post("/console/operator", url.Values{"csrf": {csrf[1]}, "key": {operatorKey}}, ""); status != http.StatusSeeOther {
		t.Fatalf("operator sign-in: %d %s", status, body)
	}
	status, body = b.get("/console/")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("operator's console: %d %s", status, body)
	}
	b.csrf = m[1]
	return b
}

func (b *browser) client() *http.Client {
	c := *b.env.e.Client()
	c.Jar = b.jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.client().Get(base + path)
	testenv.Must(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browser) post(path string, form url.Values, origin string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := b.client().Do(req)
	testenv.Must(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// revoke posts the revocation of an edge to a tenant's console page.
func (b *browser) revoke(tenantID string, e console.Edge) (int, string) {
	b.t.Helper()
	return b.post("/console/tenants/"+tenantID+"/revoke", url.Values{"csrf": {b.csrf}, "edge": {e.Ref()}}, "")
}

func findEdge(t *testing.T, edges []console.Edge, kind console.EdgeKind, objectID string) console.Edge {
	t.Helper()
	for _, e := range edges {
		if e.Kind == kind && strings.EqualFold(e.ObjectID, objectID) {
			return e
		}
	}
	t.Fatalf("no %s edge for %s among %d edges: %+v", kind, objectID, len(edges), edges)
	return console.Edge{}
}

// TestTrustGraph: the inbound graph of a customer shows every kind of
// trust its provider holds, each from the provider's tenant and
// explained; the provider's outbound graph shows them in both customers;
// nothing flows the other way.
func TestTrustGraph(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		v := newEnv(t, st)
		w := v.w
		// A role through a group of the customer the provider's service
		// principal belongs to, and a stray assignment naming the
		// provider's principal in the other customer (no delegation).
		g, err := v.e.Dir.CreateGroup(ctx, w.Customer.ID, directory.Group{DisplayName: "Fleet readers", MailNickname: "fleet", SecurityEnabled: true})
		testenv.Must(t, err)
		testenv.Must(t, v.e.Dir.AddMember(ctx, w.Customer.ID, g.ID, w.CustomerSP.ID))
		reader, _ := rbac.BuiltInRole("Key Vault Secrets User")
		viaGroup := store.RoleAssignment{TenantID: w.Customer.ID, ID: "7d0c3c4e-58a4-4a43-a1f3-3f0d9f1c1a01", Scope: "/subscriptions/" + w.Customer.SubscriptionID,
			RoleDefinitionID: reader.ID, PrincipalID: g.ID, PrincipalType: store.PrincipalGroup, CreatedOn: time.Now(), CreatedBy: "test"}
		testenv.Must(t, st.CreateRoleAssignment(ctx, viaGroup))
		stray := store.RoleAssignment{TenantID: w.Other.ID, ID: "7d0c3c4e-58a4-4a43-a1f3-3f0d9f1c1a02", Scope: "/subscriptions/" + w.Other.SubscriptionID,
			RoleDefinitionID: reader.ID, PrincipalID: w.ProviderSP.ID, PrincipalType: store.PrincipalServicePrincipal,
			PrincipalTenantID: w.Provider.ID, CreatedOn: time.Now(), CreatedBy: "imported"}
		testenv.Must(t, st.CreateRoleAssignment(ctx, stray))

		// A Service Bus namespace with a shared access rule: its holder is
		// unknown.
		rule := sasRule(t, st, w.Customer)

		in, err := v.graph.Inbound(ctx, w.Customer.ID)
		testenv.Must(t, err)
		sas := findEdge(t, in, console.EdgeSAS, rule.ID)
		if sas.From.TenantID != "" || sas.From.Cluster != "unknown holders" || sas.What != "Send, Listen" || sas.Revocable() ||
			!strings.HasSuffix(sas.Where, "/namespaces/fleet-bus") {
			t.Errorf("SAS rule edge: %+v", sas)
		}
		for _, e := range in {
			if e.Kind == console.EdgeSAS {
				continue
			}
			if e.From.TenantID != w.Provider.ID || e.TenantID != w.Customer.ID {
				t.Errorf("edge from %q into %q; want from the provider into the customer: %+v", e.From.TenantID, e.TenantID, e)
			}
		}
		sp := findEdge(t, in, console.EdgeServicePrincipal, w.CustomerSP.ID)
		if sp.From.ID != w.App.AppID || sp.Blocked != "" {
			t.Errorf("service principal edge: %+v", sp)
		}
		if e := findEdge(t, in, console.EdgeAppRole, w.AppRole.ID); !strings.Contains(e.What, "User.Read.All") {
			t.Errorf("app role edge: %+v", e)
		}
		if e := findEdge(t, in, console.EdgeGrant, w.Grant.ID); !strings.Contains(e.What, "User.Read") || !strings.Contains(e.What, "every user") {
			t.Errorf("grant edge: %+v", e)
		}
		role := findEdge(t, in, console.EdgeRole, w.Role.ID)
		if !strings.Contains(role.Why, "role assignment "+w.Role.ID+` grants "Reader"`) || role.Where != w.Role.Scope {
			t.Errorf("role edge: %+v", role)
		}
		group := findEdge(t, in, console.EdgeRole, viaGroup.ID)
		if !strings.Contains(group.Why, "→ group Fleet readers") || group.Blocked != "" {
			t.Errorf("role through a group: %+v", group)
		}
		del := findEdge(t, in, console.EdgeDelegation, w.Delegation.ID)
		if del.From.ID != w.ProviderSP.ID || del.Blocked != "" || !strings.Contains(del.Via, "fleet-app") {
			t.Errorf("delegation edge: %+v", del)
		}
		fed := findEdge(t, in, console.EdgeFederated, w.FedAppID)
		if fed.CredentialID != w.Federated.ID || fed.From.ID != w.ProviderSP.ID {
			t.Errorf("federated edge: %+v", fed)
		}

		// The stray assignment shows, blocked: it lets no one in.
		otherIn, err := v.graph.Inbound(ctx, w.Other.ID)
		testenv.Must(t, err)
		if e := findEdge(t, otherIn, console.EdgeDelegation, stray.ID); e.Blocked == "" {
			t.Errorf("a stray foreign assignment is not shown as blocked: %+v", e)
		}

		// An issuer on a host that is not a login host is external, even
		// when its path names a tenant of this server; one on a login host
		// the server was told of is that tenant's.
		spoof, err := v.e.Dir.AddFederatedCredential(ctx, w.Customer.ID, w.FedAppID, directory.FederatedIdentityCredential{
			Name: "spoof", Issuer: "https://issuer.example/" + w.Other.ID + "/v2.0", Subject: "s", Audiences: []string{"api://AzureADTokenExchange"}})
		testenv.Must(t, err)
		own, err := v.e.Dir.AddFederatedCredential(ctx, w.Customer.ID, w.FedAppID, directory.FederatedIdentityCredential{
			Name: "listen-address", Issuer: "https://127.0.0.1:8443/" + w.Other.ID + "/v2.0", Subject: w.OtherSP.ID, Audiences: []string{"api://AzureADTokenExchange"}})
		testenv.Must(t, err)
		withHosts := &console.Graph{Dir: v.e.Dir, St: st, RBAC: v.rbac, IsLoginHost: func(h string) bool { return h == "127.0.0.1" }}
		in2, err := withHosts.Inbound(ctx, w.Customer.ID)
		testenv.Must(t, err)
		seen := 0
		for _, e := range in2 {
			switch e.CredentialID {
			case spoof.ID:
				seen++
				if e.From.TenantID != "" || e.From.Cluster != spoof.Issuer {
					t.Errorf("an external issuer taken for a tenant's: %+v", e)
				}
			case own.ID:
				seen++
				if e.From.TenantID != w.Other.ID || e.From.Name != w.OtherSP.DisplayName {
					t.Errorf("the listen address's issuer: %+v", e)
				}
			}
		}
		if seen != 2 {
			t.Errorf("%d of the 2 new federated credentials in the graph", seen)
		}

		// Nothing of the customers' reaches the provider.
		if in, err := v.graph.Inbound(ctx, w.Provider.ID); err != nil || len(in) != 0 {
			t.Errorf("provider inbound = %+v, %v; want none", in, err)
		}
		if out, err := v.graph.Outbound(ctx, w.Customer.ID); err != nil || len(out) != 0 {
			t.Errorf("customer outbound = %+v, %v; want none", out, err)
		}
		out, err := v.graph.Outbound(ctx, w.Provider.ID)
		testenv.Must(t, err)
		findEdge(t, out, console.EdgeRole, w.OtherRole.ID)
		findEdge(t, out, console.EdgeDelegation, w.Delegation.ID)
		if len(out) != len(in)-1+len(otherIn) { // all but the SAS rule
			t.Errorf("provider outbound has %d edges; the customers' inbound %d + %d", len(out), len(in), len(otherIn))
		}
	})
}

// TestIsolation: an administrator sees and revokes only in their own
// tenant; every other tenant's page does not exist for them, and a
// revocation names only an edge of the page's tenant.
func TestIsolation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		v := newEnv(t, st)
		w := v.w
		anon := v.anonymous(t)
		if status, body := anon.get("/console/"); status != 200 || !strings.Contains(body, "Sign in") {
			t.Errorf("anonymous console: %d %s", status, body)
		}
		if status, _ := anon.get("/console/tenants/" + w.Customer.ID + "/graph"); status != http.StatusUnauthorized {
			t.Errorf("anonymous graph: %d, want 401", status)
		}

		admin := v.signedIn(t, w.Admin)
		status, body := admin.get("/console/")
		if status != 200 || !strings.Contains(body, w.Customer.Name) || strings.Contains(body, w.Provider.ID) || strings.Contains(body, w.Other.ID) {
			t.Errorf("the administrator's home lists other tenants or not theirs: %d %s", status, body)
		}
		for _, path := range []string{"/tenants/" + w.Other.ID + "/graph", "/tenants/" + w.Provider.ID + "/graph?view=out",
			"/tenants/" + w.Other.ID + "/audit", "/tenants/" + w.Other.ID + "/audit/stream", "/tenants/" + strings.ToUpper(w.Other.ID) + "/graph"} {
			if status, body := admin.get("/console" + path); status != http.StatusNotFound || strings.Contains(body, w.Other.Name) {
				t.Errorf("GET %s as the customer's administrator: %d, want 404 without the tenant's name", path, status)
			}
		}
		if status, body := admin.get("/console/tenants/" + w.Customer.ID + "/graph"); status != 200 || !strings.Contains(body, w.App.DisplayName) ||
			!strings.Contains(body, `id="graph"`) {
			t.Errorf("own graph: %d %s", status, body)
		}

		// The other customer's edge, through either tenant's form.
		otherIn, err := v.graph.Inbound(ctx, w.Other.ID)
		testenv.Must(t, err)
		otherRole := findEdge(t, otherIn, console.EdgeRole, w.OtherRole.ID)
		if status, _ := admin.revoke(w.Customer.ID, otherRole); status != http.StatusNotFound {
			t.Errorf("revoking another tenant's edge through one's own page: %d, want 404", status)
		}
		if status, _ := admin.revoke(w.Other.ID, otherRole); status != http.StatusNotFound {
			t.Errorf("revoking through another tenant's page: %d, want 404", status)
		}
		if _, err := st.GetRoleAssignment(ctx, w.Other.ID, w.OtherRole.ID); err != nil {
			t.Fatalf("the other tenant's assignment went: %v", err)
		}

		in, err := v.graph.Inbound(ctx, w.Customer.ID)
		testenv.Must(t, err)
		del := findEdge(t, in, console.EdgeDelegation, w.Delegation.ID)
		// Forged forms: no token, another session's token, another origin.
		if status, _ := admin.post("/console/tenants/"+w.Customer.ID+"/revoke", url.Values{"edge": {del.Ref()}}, ""); status != http.StatusForbidden {
			t.Errorf("revoke without CSRF: %d", status)
		}
		if status, _ := admin.post("/console/tenants/"+w.Customer.ID+"/revoke", url.Values{"edge": {del.Ref()}, "csrf": {userauth.NewID()}}, ""); status != http.StatusForbidden {
			t.Errorf("revoke with a wrong CSRF token: %d", status)
		}
		if status, _ := admin.post("/console/tenants/"+w.Customer.ID+"/revoke", url.Values{"edge": {del.Ref()}, "csrf": {admin.csrf}}, "https://evil.example"); status != http.StatusForbidden {
			t.Errorf("revoke from another origin: %d", status)
		}
		if _, err := st.GetRoleAssignment(ctx, w.Customer.ID, w.Delegation.ID); err != nil {
			t.Fatalf("a forged form revoked the delegation: %v", err)
		}

		// A shared access rule is shown but not revoked here.
		rule := sasRule(t, st, w.Customer)
		in, err = v.graph.Inbound(ctx, w.Customer.ID)
		testenv.Must(t, err)
		if status, _ := admin.revoke(w.Customer.ID, findEdge(t, in, console.EdgeSAS, rule.ID)); status != http.StatusNotFound {
			t.Errorf("revoking a SAS rule: %d, want 404", status)
		}

		// A user who is not a Global Administrator is not let in.
		if status, _ := v.signedIn(t, w.Plain).get("/console/tenants/" + w.Customer.ID + "/graph"); status != http.StatusForbidden {
			t.Errorf("a user without a role: %d, want 403", status)
		}
		// An administrator without an Azure role may not delete role
		// assignments (as ARM refuses them).
		ana := v.signedIn(t, w.OtherAdmin)
		if status, body := ana.revoke(w.Other.ID, otherRole); status != http.StatusForbidden || !strings.Contains(body, "may not delete role assignments") {
			t.Errorf("revoke without roleAssignments/delete: %d %s", status, body)
		}

		// The customer's administrator revokes the delegation: gone at
		// once, for the RBAC engine too, and in both tenants' audit.
		contributorAct := "Microsoft.Resources/subscriptions/resourceGroups/read"
		decide := func() bool {
			d, err := v.rbac.Decide(ctx, rbac.Request{PrincipalID: w.ProviderSP.ID, PrincipalTenantID: w.Provider.ID, TenantID: w.Customer.ID,
				Action: contributorAct, Scope: w.Delegation.Scope})
			testenv.Must(t, err)
			return d.Allowed
		}
		if !decide() {
			t.Fatal("the delegation does not allow its principal before the revocation")
		}
		if status, body := admin.revoke(w.Customer.ID, del); status != http.StatusSeeOther {
			t.Fatalf("revoke the delegation: %d %s", status, body)
		}
		if _, err := st.GetRoleAssignment(ctx, w.Customer.ID, w.Delegation.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the delegation is still there: %v", err)
		}
		if decide() {
			t.Error("the RBAC engine still allows the revoked delegation")
		}
		for _, tenant := range []string{w.Customer.ID, w.Provider.ID} {
			recs, err := st.ListAudit(ctx, store.AuditQuery{TenantID: tenant})
			testenv.Must(t, err)
			if !slices.ContainsFunc(recs, func(r store.AuditRecord) bool {
				return r.Action == "Microsoft.Authorization/roleAssignments/delete" && strings.Contains(r.Target, w.Delegation.ID) &&
					r.Actor == w.Admin.ID && r.ActorTenant == w.Customer.ID && r.TargetTenant == tenant
			}) {
				t.Errorf("no audit record of the revocation in tenant %s: %+v", tenant, recs)
			}
		}
		// And the service principal, through the directory: the provider's
		// next token request in the customer's tenant is refused.
		secret, err := v.e.Dir.AddApplicationPassword(ctx, w.Provider.ID, w.App.ID, "broker", time.Time{}, time.Time{})
		testenv.Must(t, err)
		tokenStatus := func() int {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {w.App.AppID}, "client_secret": {secret.SecretText},
				"scope": {"https://graph.microsoft.com/.default"}}
			resp, err := v.e.Client().PostForm(v.e.LoginURL+"/"+w.Customer.ID+"/oauth2/v2.0/token", form)
			testenv.Must(t, err)
			resp.Body.Close()
			return resp.StatusCode
		}
		if status := tokenStatus(); status != http.StatusOK {
			t.Fatalf("the provider's token in the customer's tenant before the revocation: %d", status)
		}
		if status, body := admin.revoke(w.Customer.ID, findEdge(t, in, console.EdgeServicePrincipal, w.CustomerSP.ID)); status != http.StatusSeeOther {
			t.Fatalf("revoke the service principal: %d %s", status, body)
		}
		if _, err := v.e.Dir.GetServicePrincipal(ctx, w.Customer.ID, w.CustomerSP.ID); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("the service principal is still there: %v", err)
		}
		if status := tokenStatus(); status == http.StatusOK {
			t.Error("the provider still gets tokens in the customer's tenant after its service principal was revoked")
		}
		recs, err := st.ListAudit(ctx, store.AuditQuery{TenantID: w.Provider.ID, ByTenantID: w.Customer.ID})
		testenv.Must(t, err)
		if !slices.ContainsFunc(recs, func(r store.AuditRecord) bool {
			return r.Action == "servicePrincipal.delete" && r.Target == w.CustomerSP.ID
		}) {
			t.Errorf("the provider's audit lacks the deletion of its service principal: %+v", recs)
		}

		// The operator sees every tenant and may revoke in any.
		op := v.operator(t)
		if _, body := op.get("/console/"); !strings.Contains(body, w.Provider.ID) || !strings.Contains(body, w.Other.ID) {
			t.Errorf("the operator's home lacks tenants: %s", body)
		}
		if status, body := op.revoke(w.Other.ID, otherRole); status != http.StatusSeeOther {
			t.Errorf("the operator's revocation: %d %s", status, body)
		}
		// A server with another operator key does not take the session.
		rekeyed := console.New(console.Config{Directory: v.e.Dir, Store: st, Audit: v.e.Audit, KEK: v.e.KEK, OperatorKey: operatorKey + "-new"})
		req := httptest.NewRequest(http.MethodGet, base+"/console/", nil)
		for _, c := range op.jar.Cookies(mustURL(base + "/console/")) {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		rekeyed.ServeHTTP(rec, req)
		if strings.Contains(rec.Body.String(), w.Provider.ID) {
			t.Errorf("an operator session outlived its key: %d", rec.Code)
		}

		wrong := v.anonymous(t)
		_, page := wrong.get("/console/")
		csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
		if status, _ := wrong.post("/console/operator", url.Values{"csrf": {csrf[1]}, "key": {operatorKey + "x"}}, ""); status != http.StatusUnauthorized {
			t.Errorf("a wrong operator key: %d, want 401", status)
		}
		if status, _ := wrong.get("/console/tenants/" + w.Other.ID + "/graph"); status != http.StatusUnauthorized {
			t.Errorf("after a wrong key: %d, want 401", status)
		}

		// Signing out ends the session, even if the cookie is replayed.
		replay := v.signedIn(t, w.Admin)
		cookies := replay.jar.Cookies(mustURL(base + "/console/"))
		if status, _ := replay.post("/console/signout", url.Values{"csrf": {replay.csrf}}, ""); status != 200 {
			t.Fatalf("sign out: %d", status)
		}
		again := v.anonymous(t)
		again.jar.SetCookies(mustURL(base+"/"), cookies)
		if status, _ := again.get("/console/tenants/" + w.Customer.ID + "/graph"); status != http.StatusUnauthorized {
			t.Errorf("a signed-out session replayed: %d, want 401", status)
		}
	})
}

// sasRule stores a Service Bus namespace of the tenant with a shared
// access rule allowing Send and Listen, as ARM stores them.
func sasRule(t *testing.T, st store.Store, tenant store.Tenant) store.Resource {
	t.Helper()
	ctx, now := context.Background(), time.Now().UTC()
	testenv.Must(t, st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tenant.ID, SubscriptionID: tenant.SubscriptionID,
		Name: "rg-bus", Location: "westeurope", Created: now, Updated: now}))
	nsID := "/subscriptions/" + tenant.SubscriptionID + "/resourceGroups/rg-bus/providers/Microsoft.ServiceBus/namespaces/fleet-bus"
	ns := store.Resource{TenantID: tenant.ID, SubscriptionID: tenant.SubscriptionID, ResourceGroup: "rg-bus", ID: nsID,
		Type: servicebus.NamespaceType, Name: "fleet-bus", Location: "westeurope", Created: now, Updated: now}
	testenv.Must(t, st.CreateResource(ctx, ns))
	rule := store.Resource{TenantID: tenant.ID, SubscriptionID: tenant.SubscriptionID, ResourceGroup: "rg-bus", ID: nsID + "/authorizationRules/sender",
		Type: servicebus.NamespaceRuleType, Name: "sender", Location: "westeurope", Properties: []byte(`{"rights":["Send","Listen"]}`), Created: now, Updated: now}
	testenv.Must(t, st.CreateResource(ctx, rule))
	return rule
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestAuditStream: the live audit sends new cross-tenant records of the
// tenant and nothing of others, at most four streams per principal, and
// ends at sign-out.
func TestAuditStream(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t, storetest.SQLite(t))
	w := v.w
	admin := v.signedIn(t, w.Admin)
	open := func() (*http.Response, *bufio.Reader) {
		resp, err := admin.client().Get(base + "/console/tenants/" + w.Customer.ID + "/audit/stream")
		testenv.Must(t, err)
		return resp, bufio.NewReader(resp.Body)
	}
	// A record from before the stream opened is not sent.
	testenv.Must(t, v.e.Audit.Record(ctx, store.AuditRecord{Actor: "z", ActorTenant: w.Provider.ID, TargetTenant: w.Customer.ID, Action: "test.before"}))
	resp, events := open()
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// A record of another tenant pair, then one across the customer's
	// boundary: only the second arrives.
	testenv.Must(t, v.e.Audit.Record(ctx, store.AuditRecord{Actor: "x", ActorTenant: w.Provider.ID, TargetTenant: w.Other.ID, Action: "test.elsewhere"}))
	testenv.Must(t, v.e.Audit.Record(ctx, store.AuditRecord{Actor: "y", ActorTenant: w.Provider.ID, TargetTenant: w.Customer.ID, Action: "test.here"}))
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		line, err := events.ReadString('\n')
		if err != nil {
			t.Fatalf("stream read: %v (got %q)", err, got)
		}
		got = append(got, line)
		if strings.Contains(line, "test.here") {
			break
		}
	}
	if all := strings.Join(got, ""); !strings.Contains(all, "test.here") || strings.Contains(all, "test.elsewhere") || strings.Contains(all, "test.before") {
		t.Errorf("stream: %q", all)
	}
	// An idle stream sends heartbeats.
	for beat := false; !beat; {
		line, err := events.ReadString('\n')
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("no heartbeat: %v", err)
		}
		beat = strings.HasPrefix(line, ": heartbeat")
	}

	// Three more are allowed, the fifth is refused.
	var more []*http.Response
	for range 3 {
		r, _ := open()
		more = append(more, r)
		if r.StatusCode != 200 {
			t.Errorf("stream %d: %d", len(more)+1, r.StatusCode)
		}
	}
	if r, _ := open(); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("fifth stream: %d, want 429", r.StatusCode)
		r.Body.Close()
	}
	// Sign-out ends them.
	if status, _ := admin.post("/console/signout", url.Values{"csrf": {admin.csrf}}, ""); status != 200 {
		t.Fatalf("sign out: %d", status)
	}
	ended := false
	for time.Now().Before(deadline) {
		line, err := events.ReadString('\n')
		if strings.HasPrefix(line, "event: end") {
			ended = true
		}
		if err != nil {
			break
		}
	}
	if !ended {
		t.Error("the stream did not end at sign-out")
	}
	for _, r := range more {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
}

// TestHostileNamesAndEndedSessions: names another tenant chose are shown
// as text, never markup; an expired session or one whose user lost the
// Global Administrator role gets nothing.
func TestHostileNamesAndEndedSessions(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t, storetest.SQLite(t))
	w := v.w
	const hostile = `<img src=x onerror=alert(1)><script>alert(2)</script>`
	app, err := v.e.Dir.CreateApplication(ctx, w.Provider.ID, directory.Application{DisplayName: hostile,
		SignInAudience: directory.AudienceMultipleOrgs})
	testenv.Must(t, err)
	_, err = v.e.Dir.CreateServicePrincipal(ctx, w.Customer.ID, app.AppID)
	testenv.Must(t, err)
	admin := v.signedIn(t, w.Admin)
	status, body := admin.get("/console/tenants/" + w.Customer.ID + "/graph")
	if status != 200 || strings.Contains(body, "<img src=x") || strings.Contains(body, "<script>alert") ||
		!strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("a hostile name on the graph page: %d\n%s", status, body)
	}

	// An expired session.
	old := v.anonymous(t)
	s := userauth.Session{TenantID: w.Customer.ID, UserID: w.Admin.ID, UPN: w.Admin.UserPrincipalName, AuthTime: time.Now().Add(-2 * time.Hour),
		Expires: time.Now().Add(-time.Minute), CSRF: userauth.NewID()}
	val, err := userauth.SealSession(v.e.KEK, s)
	testenv.Must(t, err)
	old.jar.SetCookies(mustURL(base+"/"), []*http.Cookie{{Name: signin.SessionCookie, Value: val, Path: "/", Secure: true}})
	if status, _ := old.get("/console/tenants/" + w.Customer.ID + "/graph"); status != http.StatusUnauthorized {
		t.Errorf("an expired session: %d, want 401", status)
	}
	// A session sealed under another key.
	forged := v.anonymous(t)
	val, err = userauth.SealSession(testenv.RandomKey(t), userauth.Session{TenantID: w.Other.ID, UserID: w.OtherAdmin.ID,
		Expires: time.Now().Add(time.Hour), CSRF: userauth.NewID()})
	testenv.Must(t, err)
	forged.jar.SetCookies(mustURL(base+"/"), []*http.Cookie{{Name: signin.SessionCookie, Value: val, Path: "/", Secure: true}})
	if status, _ := forged.get("/console/tenants/" + w.Other.ID + "/graph"); status != http.StatusUnauthorized {
		t.Errorf("a forged session: %d, want 401", status)
	}
	// The role goes: the very next request is refused.
	if status, _ := admin.get("/console/"); status != 200 {
		t.Fatalf("before: %d", status)
	}
	testenv.Must(t, v.e.Dir.RemoveDirectoryRole(ctx, w.Customer.ID, w.Admin.ID, directory.RoleGlobalAdministrator))
	if status, _ := admin.get("/console/tenants/" + w.Customer.ID + "/graph"); status != http.StatusForbidden {
		t.Errorf("after the role was removed: %d, want 403", status)
	}
}

// TestAuditPageShowsTheNewest: over a log longer than a page, the audit
// page shows the newest records first, not the log's beginning, and its
// stream goes on from the newest record (none is replayed).
func TestAuditPageShowsTheNewest(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t, storetest.SQLite(t))
	w := v.w
	const n = 260 // more than a page (200)
	recs := make([]store.AuditRecord, n)
	for i := range recs {
		recs[i] = store.AuditRecord{Actor: "z", ActorTenant: w.Provider.ID, TargetTenant: w.Customer.ID, Action: fmt.Sprintf("test.n%04d", i)}
	}
	testenv.Must(t, v.st.AppendAudits(ctx, recs))
	newest, err := v.st.ListAudit(ctx, store.AuditQuery{TenantID: w.Customer.ID, Newest: true, Limit: 1})
	testenv.Must(t, err)
	status, body := v.signedIn(t, w.Admin).get("/console/tenants/" + w.Customer.ID + "/audit")
	if status != 200 {
		t.Fatalf("audit page: %d", status)
	}
	last, first := strings.Index(body, fmt.Sprintf("test.n%04d", n-1)), strings.Index(body, fmt.Sprintf("test.n%04d", n-2))
	if last < 0 || first < 0 || last > first {
		t.Errorf("the newest records are not first on the page (at %d and %d)", last, first)
	}
	if strings.Contains(body, "test.n0000") {
		t.Error("the page shows the log's oldest record past a page")
	}
	if want := fmt.Sprintf("after=%d", newest[0].Seq); !strings.Contains(body, want) {
		t.Errorf("the stream does not go on from the newest record (%s)", want)
	}
}
