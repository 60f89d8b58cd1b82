package graph_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	tid := e.contoso.Tenant.ID
	now := time.Now()
	mint := func(keys *pki.KeySet, mutate func(*token.Claims)) string {
		c := token.Claims{Audience: directory.GraphResource, Issuer: e.srv.URL + "/" + tid + "/", TenantID: tid,
			ObjectID: e.contoso.AdminSP.ID, IdentType: "app", Roles: []string{directory.PermApplicationReadWriteAll},
			IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: now.Add(time.Hour).Unix(), Version: "1.0"}
		mutate(&c)
		raw, err := token.Mint(keys.Current(), c)
		must(t, err)
		return raw
	}
	otherKeys, err := pki.LoadOrCreateKeySet(t.TempDir())
	must(t, err)

	cases := []struct {
		name    string
		header  string
		message string
	}{
		{"no header", "", "Access token is empty."},
		{"empty bearer", "Bearer ", "Access token is empty."},
		{"basic", "Basic dXNlcjpwYXNz", "Access token is empty."},
		{"garbage", "Bearer not-a-jwt", "IDX14100: JWT is not well formed."},
		{"token for another resource", "Bearer " + e.tokenFor(tid, e.contoso.Admin.AppID, e.contoso.AdminSecret.SecretText, "https://vault.azure.net/.default"),
			"Access token validation failure. Invalid audience."},
		{"expired", "Bearer " + mint(e.keys, func(c *token.Claims) {
			c.IssuedAt, c.NotBefore, c.Expires = now.Add(-3*time.Hour).Unix(), now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
		}),
			"Lifetime validation failed, the token is expired."},
		{"signed by a stranger", "Bearer " + mint(otherKeys, func(*token.Claims) {}), "Access token validation failure."},
		{"issuer of another host", "Bearer " + mint(e.keys, func(c *token.Claims) { c.Issuer = "https://evil.example/" + tid + "/" }), "Access token validation failure."},
		{"no oid", "Bearer " + mint(e.keys, func(c *token.Claims) { c.ObjectID = "" }), "Access token validation failure."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Authorization", tc.header)
			}
			r := e.callWith("", "GET", "/v1.0/applications", nil, h).expect(t, 401, "InvalidAuthenticationToken")
			if r.errorMessage() != tc.message {
				t.Errorf("message = %q, want %q", r.errorMessage(), tc.message)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}

	// A well-formed token of ours is accepted, v1 or v2, with any of Graph's audiences.
	e.call(mint(e.keys, func(*token.Claims) {}), "GET", "/v1.0/applications", nil).expect(t, 200)
	e.call(mint(e.keys, func(c *token.Claims) { c.Audience = directory.GraphAppID }), "GET", "/v1.0/applications", nil).expect(t, 200)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.contoso.Admin.AppID},
		"client_secret": {e.contoso.AdminSecret.SecretText}, "resource": {"https://graph.microsoft.com/"}}
	resp, err := e.srv.Client().PostForm(e.srv.URL+"/"+tid+"/oauth2/token", form)
	must(t, err)
	var doc map[string]any
	must(t, json.NewDecoder(resp.Body).Decode(&doc))
	resp.Body.Close()
	v1, _ := doc["access_token"].(string)
	e.call(v1, "GET", "/v1.0/applications", nil).expect(t, 200)
}

// TestPermissions checks the permission table, one endpoint and
// permission at a time, with real tokens carrying exactly those roles.
func TestPermissions(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tid := e.contoso.Tenant.ID
		admin := e.adminToken(e.contoso)
		roleID := uuid.NewString()
		resourceApp := e.call(admin, "POST", "/v1.0/applications", map[string]any{"displayName": "resource",
			"appRoles": []map[string]any{{"id": roleID, "value": "R", "allowedMemberTypes": []string{"Application"}}}}).expect(t, 201)
		resource := e.call(admin, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": resourceApp.str("appId")}).expect(t, 201).str("id")
		group := e.call(admin, "POST", "/v1.0/groups", map[string]any{"displayName": "g", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true}).expect(t, 201).str("id")
		user := e.call(admin, "POST", "/v1.0/users", newUserBody("u", e.contoso)).expect(t, 201).str("id")

		type check struct {
			method, path string
			body         func() any
			want         int
		}
		app := func() any { return map[string]any{"displayName": "x-" + uuid.NewString()[:8]} }
		member := func() any {
			return map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + user}
		}
		newUser := func() any { return newUserBody("n"+uuid.NewString()[:8], e.contoso) }
		newGroup := func() any {
			return map[string]any{"displayName": "n", "mailEnabled": false, "mailNickname": "n", "securityEnabled": true}
		}
		cases := []struct {
			perms  []string
			checks []check
		}{
			{nil, []check{
				{"GET", "/v1.0/applications", nil, 403}, {"GET", "/v1.0/servicePrincipals", nil, 403},
				{"GET", "/v1.0/users", nil, 403}, {"GET", "/v1.0/groups", nil, 403},
				{"GET", "/v1.0/servicePrincipals/" + resource + "/appRoleAssignedTo", nil, 403},
			}},
			{[]string{directory.PermApplicationReadAll}, []check{
				{"GET", "/v1.0/applications", nil, 200}, {"GET", "/v1.0/servicePrincipals/" + resource, nil, 200},
				{"POST", "/v1.0/applications", app, 403}, {"PATCH", "/v1.0/servicePrincipals/" + resource, func() any { return map[string]any{"tags": []string{}} }, 403},
				{"GET", "/v1.0/servicePrincipals/" + resource + "/appRoleAssignedTo", nil, 200},
				{"GET", "/v1.0/users", nil, 403}, {"GET", "/v1.0/groups", nil, 403},
			}},
			{[]string{directory.PermDirectoryReadAll}, []check{
				{"GET", "/v1.0/applications", nil, 200}, {"GET", "/v1.0/users", nil, 200}, {"GET", "/v1.0/groups/" + group + "/members", nil, 200},
				{"POST", "/v1.0/users", newUser, 403}, {"POST", "/v1.0/groups", newGroup, 403},
			}},
			{[]string{directory.PermDirectoryReadWriteAll}, []check{
				{"POST", "/v1.0/applications", app, 201}, {"POST", "/v1.0/users", newUser, 201}, {"POST", "/v1.0/groups", newGroup, 201},
				// Directory.ReadWrite.All does not grant app roles, as in Entra.
				{"POST", "/v1.0/servicePrincipals/" + resource + "/appRoleAssignedTo", func() any {
					return map[string]any{"principalId": e.contoso.AdminSP.ID, "resourceId": resource, "appRoleId": roleID}
				}, 403},
			}},
			{[]string{directory.PermUserReadAll}, []check{
				{"GET", "/v1.0/users", nil, 200}, {"GET", "/v1.0/users/" + user + "/memberOf", nil, 200},
				{"POST", "/v1.0/users", newUser, 403}, {"DELETE", "/v1.0/users/" + user, nil, 403},
				{"GET", "/v1.0/applications", nil, 403}, {"GET", "/v1.0/groups", nil, 403},
			}},
			{[]string{directory.PermUserReadWriteAll}, []check{
				{"POST", "/v1.0/users", newUser, 201}, {"PATCH", "/v1.0/users/" + user, func() any { return map[string]any{"surname": "s"} }, 204},
			}},
			{[]string{directory.PermGroupReadAll}, []check{
				{"GET", "/v1.0/groups", nil, 200}, {"GET", "/v1.0/groups/" + group + "/members", nil, 200},
				{"POST", "/v1.0/groups", newGroup, 403}, {"POST", "/v1.0/groups/" + group + "/members/$ref", member, 403},
			}},
			{[]string{directory.PermGroupMemberReadWriteAll}, []check{
				{"POST", "/v1.0/groups/" + group + "/members/$ref", member, 204},
				{"DELETE", "/v1.0/groups/" + group + "/members/" + user + "/$ref", nil, 204},
				{"POST", "/v1.0/groups", newGroup, 403}, {"PATCH", "/v1.0/groups/" + group, func() any { return map[string]any{"description": "d"} }, 403},
			}},
			{[]string{directory.PermAppRoleAssignmentReadWrite}, []check{
				{"POST", "/v1.0/servicePrincipals/" + resource + "/appRoleAssignedTo", func() any {
					return map[string]any{"principalId": e.contoso.AdminSP.ID, "resourceId": resource, "appRoleId": roleID}
				}, 201},
				{"GET", "/v1.0/servicePrincipals/" + resource + "/appRoleAssignedTo", nil, 200},
				{"GET", "/v1.0/applications", nil, 403}, {"PATCH", "/v1.0/servicePrincipals/" + resource, func() any { return map[string]any{"tags": []string{}} }, 403},
			}},
		}
		for i, tc := range cases {
			c := e.newClient(tid, "caller-"+string(rune('a'+i)), tc.perms...)
			for _, ch := range tc.checks {
				var body any
				if ch.body != nil {
					body = ch.body()
				}
				r := e.call(c.token, ch.method, ch.path, body)
				if r.status != ch.want {
					t.Errorf("%v: %s %s = %d, want %d: %s", tc.perms, ch.method, ch.path, r.status, ch.want, r.raw)
					continue
				}
				if ch.want == 403 {
					if r.errorCode() != "Authorization_RequestDenied" || r.errorMessage() != "Insufficient privileges to complete the operation." {
						t.Errorf("403 body: %s", r.raw)
					}
					rec := e.audits(tid)[len(e.audits(tid))-1]
					if rec.Result != "Authorization_RequestDenied" || rec.Actor != c.sp.ID || rec.TargetTenant != tid || rec.ActorTenant != tid {
						t.Errorf("%s %s: denial audit record %+v", ch.method, ch.path, rec)
					}
				}
			}
		}
	})
}

// TestOwnedBy checks Application.ReadWrite.OwnedBy: the caller sees and
// changes only what it owns, and owns what it creates.
func TestOwnedBy(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tid := e.contoso.Tenant.ID
		admin := e.adminToken(e.contoso)
		other := e.call(admin, "POST", "/v1.0/applications", map[string]any{"displayName": "not-yours"}).expect(t, 201)
		otherSP := e.call(admin, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": other.str("appId")}).expect(t, 201).str("id")
		c := e.newClient(tid, "automation", directory.PermApplicationReadWriteOwned)

		if v := e.call(c.token, "GET", "/v1.0/applications", nil).expect(t, 200).values(); len(v) != 0 {
			t.Fatalf("owns nothing yet, sees %v", v)
		}
		for _, call := range []struct{ method, path string }{
			{"GET", "/v1.0/applications/" + other.str("id")},
			{"GET", "/v1.0/applications(appId='" + other.str("appId") + "')"},
			{"PATCH", "/v1.0/applications/" + other.str("id")},
			{"DELETE", "/v1.0/applications/" + other.str("id")},
			{"POST", "/v1.0/applications/" + other.str("id") + "/addPassword"},
			{"GET", "/v1.0/applications/" + other.str("id") + "/owners"},
			{"GET", "/v1.0/servicePrincipals/" + otherSP},
			{"DELETE", "/v1.0/servicePrincipals/" + otherSP},
		} {
			var body any
			if call.method == "PATCH" {
				body = map[string]any{"displayName": "taken"}
			}
			e.call(c.token, call.method, call.path, body).expect(t, 403, "Authorization_RequestDenied")
		}
		if rec := e.lastAudit(tid, "application.delete"); rec.Result != "Authorization_RequestDenied" || rec.Actor != c.sp.ID || rec.Target != other.str("id") {
			t.Errorf("denied delete audit record %+v", rec)
		}
		if got := e.call(admin, "GET", "/v1.0/applications/"+other.str("id"), nil).expect(t, 200); got.str("displayName") != "not-yours" {
			t.Fatal("an owned-only caller changed an application it does not own")
		}
		// Not even for an application it does not own may it create a service principal.
		e.call(admin, "DELETE", "/v1.0/servicePrincipals/"+otherSP, nil).expect(t, 204)
		e.call(c.token, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": other.str("appId")}).expect(t, 403, "Authorization_RequestDenied")

		// What it creates, it owns, and can manage.
		mine := e.call(c.token, "POST", "/v1.0/applications", map[string]any{"displayName": "mine"}).expect(t, 201)
		owners := e.call(admin, "GET", "/v1.0/applications/"+mine.str("id")+"/owners", nil).expect(t, 200)
		if ids := owners.ids(); len(ids) != 1 || ids[0] != c.sp.ID {
			t.Fatalf("owners of the created application: %s", owners.raw)
		}
		if ids := e.call(c.token, "GET", "/v1.0/applications", nil).expect(t, 200).ids(); !slices.Equal(ids, []string{mine.str("id")}) {
			t.Fatalf("owned-only list = %v", ids)
		}
		if n := len(e.call(c.token, "GET", "/v1.0/applications?$filter="+url.QueryEscape("id eq '"+other.str("id")+"'"), nil).expect(t, 200).values()); n != 0 {
			t.Fatal("filter by id reaches an application the caller does not own")
		}
		e.call(c.token, "PATCH", "/v1.0/applications/"+mine.str("id"), map[string]any{"description": "d"}).expect(t, 204)
		e.call(c.token, "POST", "/v1.0/applications/"+mine.str("id")+"/addPassword", nil).expect(t, 200)
		e.call(c.token, "POST", "/v1.0/applications/"+mine.str("id")+"/federatedIdentityCredentials", map[string]any{"name": "ci-main",
			"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:x/y:ref:refs/heads/main", "audiences": []string{"api://AzureADTokenExchange"}}).expect(t, 201)
		mySP := e.call(c.token, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": mine.str("appId")}).expect(t, 201).str("id")
		if ids := e.call(c.token, "GET", "/v1.0/servicePrincipals", nil).expect(t, 200).ids(); !slices.Equal(ids, []string{mySP}) {
			t.Fatalf("owned-only service principal list = %v", ids)
		}
		e.call(c.token, "PATCH", "/v1.0/servicePrincipals/"+mySP, map[string]any{"tags": []string{"x"}}).expect(t, 204)
		// Owned-only does not extend to app role assignments.
		e.call(c.token, "GET", "/v1.0/servicePrincipals/"+mySP+"/appRoleAssignments", nil).expect(t, 403)
		e.call(c.token, "DELETE", "/v1.0/servicePrincipals/"+mySP, nil).expect(t, 204)
		e.call(c.token, "DELETE", "/v1.0/applications/"+mine.str("id"), nil).expect(t, 204)
	})
}

// TestTenantIsolation checks that a token of one tenant reaches nothing
// of another, whichever way the object is named.
func TestTenantIsolation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		contoso, fabrikam := e.adminToken(e.contoso), e.adminToken(e.fabrikam)
		app := e.call(contoso, "POST", "/v1.0/applications", map[string]any{"displayName": "private"}).expect(t, 201)
		user := e.call(contoso, "POST", "/v1.0/users", newUserBody("ann", e.contoso)).expect(t, 201)
		group := e.call(fabrikam, "POST", "/v1.0/groups", map[string]any{"displayName": "fg", "mailEnabled": false, "mailNickname": "fg", "securityEnabled": true}).expect(t, 201)

		for _, path := range []string{
			"/v1.0/applications/" + app.str("id"),
			"/v1.0/applications(appId='" + app.str("appId") + "')",
			"/v1.0/applications/" + app.str("id") + "/owners",
			"/v1.0/servicePrincipals/" + e.contoso.AdminSP.ID,
			"/v1.0/servicePrincipals/" + e.contoso.AdminSP.ID + "/appRoleAssignments",
			"/v1.0/users/" + user.str("id"),
			"/v1.0/users/ann@contoso.onmicrosoft.com",
		} {
			e.call(fabrikam, "GET", path, nil).expect(t, 404, "Request_ResourceNotFound")
		}
		e.call(fabrikam, "PATCH", "/v1.0/applications/"+app.str("id"), map[string]any{"displayName": "mine now"}).expect(t, 404)
		e.call(fabrikam, "DELETE", "/v1.0/users/"+user.str("id"), nil).expect(t, 404)
		e.call(fabrikam, "POST", "/v1.0/groups/"+group.str("id")+"/members/$ref",
			map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + user.str("id")}).expect(t, 404)
		for _, path := range []string{"/v1.0/applications", "/v1.0/users", "/v1.0/servicePrincipals"} {
			r := e.call(fabrikam, "GET", path, nil).expect(t, 200)
			if strings.Contains(string(r.raw), app.str("id")) || strings.Contains(string(r.raw), user.str("id")) || strings.Contains(string(r.raw), e.contoso.AdminSP.ID) {
				t.Fatalf("fabrikam's %s shows contoso's objects", path)
			}
		}
		if got := e.call(contoso, "GET", "/v1.0/applications/"+app.str("id"), nil).expect(t, 200); got.str("displayName") != "private" {
			t.Fatal("the other tenant changed the application")
		}
	})
}

// TestAuditRecords checks the record of a change, and that a principal
// acting in another tenant is recorded with its home tenant.
func TestAuditRecords(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		contoso, fabrikam := e.contoso.Tenant.ID, e.fabrikam.Tenant.ID
		admin := e.adminToken(e.contoso)
		created := e.call(admin, "POST", "/v1.0/applications", map[string]any{"displayName": "audited"}).expect(t, 201)
		rec := e.lastAudit(contoso, "application.create")
		if rec.Actor != e.contoso.AdminSP.ID || rec.ActorTenant != contoso || rec.TargetTenant != contoso ||
			rec.Target != created.str("id") || rec.Result != audit.Success || rec.RequestID != created.header.Get("request-id") {
			t.Fatalf("create record %+v (request-id %s)", rec, created.header.Get("request-id"))
		}
		added := e.call(admin, "POST", "/v1.0/applications/"+created.str("id")+"/addPassword", nil).expect(t, 200)
		rec = e.lastAudit(contoso, "application.addPassword")
		if rec.Target != created.str("id") || rec.Result != audit.Success || strings.Contains(rec.Detail, added.str("secretText")) {
			t.Fatalf("addPassword record %+v", rec)
		}
		// A failed change is recorded with its error code.
		e.call(admin, "POST", "/v1.0/applications", map[string]any{"displayName": ""}).expect(t, 400)
		if rec := e.lastAudit(contoso, "application.create"); rec.Result != "Request_BadRequest" {
			t.Fatalf("failed create record %+v", rec)
		}

		// A multi-tenant application of contoso, consented into fabrikam
		// and granted Application.ReadWrite.All there.
		provider := e.call(admin, "POST", "/v1.0/applications", map[string]any{"displayName": "provider", "signInAudience": "AzureADMultipleOrgs"}).expect(t, 201)
		secret := e.call(admin, "POST", "/v1.0/applications/"+provider.str("id")+"/addPassword", nil).expect(t, 200).str("secretText")
		fabAdmin := e.adminToken(e.fabrikam)
		sp := e.call(fabAdmin, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": provider.str("appId")}).expect(t, 201).str("id")
		e.grantGraph(fabrikam, sp, directory.PermApplicationReadWriteAll)
		tok := e.graphToken(fabrikam, provider.str("appId"), secret)
		made := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "made by provider"}).expect(t, 201)
		rec = e.lastAudit(fabrikam, "application.create")
		if rec.Actor != sp || rec.ActorTenant != contoso || rec.TargetTenant != fabrikam || rec.Target != made.str("id") {
			t.Fatalf("foreign caller's record %+v", rec)
		}
		// Both tenants see the record.
		found := false
		for _, r := range e.audits(contoso) {
			found = found || (r.Action == "application.create" && r.Target == made.str("id"))
		}
		if !found {
			t.Fatal("the provider's home tenant does not see what its principal did")
		}
	})
}

// TestUnauditedChangeFails makes the audit log refuse writes and checks
// that a change then fails with 500 and is not stored.
func TestUnauditedChangeFails(t *testing.T) {
	st := storetest.SQLite(t)
	e := newEnv(t, st)
	admin := e.adminToken(e.contoso) // before the audit log breaks: tokens are audited too
	db, ok := st.(interface{ DB() *sql.DB })
	if !ok {
		t.Fatalf("%T has no DB()", st)
	}
	_, err := db.DB().Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END`)
	must(t, err)

	r := e.call(admin, "POST", "/v1.0/applications", map[string]any{"displayName": "unaudited"}).expect(t, 500, "InternalServerError")
	if !strings.Contains(r.errorMessage(), "audit") {
		t.Errorf("message %q", r.errorMessage())
	}
	apps, err := e.dir.ListApplications(e.ctx, e.contoso.Tenant.ID, directory.Query{DisplayName: "unaudited"})
	must(t, err)
	if len(apps) != 0 {
		t.Fatal("the change was stored without its audit record")
	}
	// Reads need no record and still work.
	e.call(admin, "GET", "/v1.0/applications", nil).expect(t, 200)
}

// TestErrorShapes checks Graph's error envelope and the 4xx answers to
// malformed requests: never a 500.
func TestErrorShapes(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		r := e.callWith(admin, "POST", "/v1.0/applications", `{"displayName":`, http.Header{"Client-Request-Id": {"my-request-1"}}).expect(t, 400, "Request_BadRequest")
		inner := r.doc["error"].(map[string]any)["innerError"].(map[string]any)
		if inner["request-id"] != r.header.Get("request-id") || inner["request-id"] == "" ||
			inner["client-request-id"] != "my-request-1" || r.header.Get("client-request-id") != "my-request-1" {
			t.Fatalf("innerError %v, headers %v", inner, r.header)
		}
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`).MatchString(inner["date"].(string)) {
			t.Errorf("innerError.date %q", inner["date"])
		}

		app := e.call(admin, "POST", "/v1.0/applications", map[string]any{"displayName": "target"}).expect(t, 201).str("id")
		for _, tc := range []struct {
			name, method, path string
			body               any
			status             int
			code               string
		}{
			{"unknown property", "POST", "/v1.0/applications", `{"displayName":"x","passwordHash":"y"}`, 400, "Request_BadRequest"},
			{"wrong type", "POST", "/v1.0/applications", `{"displayName":5}`, 400, "Request_BadRequest"},
			{"array body", "POST", "/v1.0/applications", `[]`, 400, "Request_BadRequest"},
			{"trailing data", "POST", "/v1.0/applications", `{"displayName":"x"} {}`, 400, "Request_BadRequest"},
			{"read-only property", "POST", "/v1.0/applications", `{"displayName":"x","id":"y"}`, 400, "Request_BadRequest"},
			{"NUL in a string", "POST", "/v1.0/applications", `{"displayName":"a\u0000b"}`, 400, "Request_BadRequest"},
			{"NUL in a key", "PATCH", "/v1.0/applications/" + app, `{"tags":["\u0000"]}`, 400, "Request_BadRequest"},
			{"no body", "POST", "/v1.0/users", nil, 400, "Request_BadRequest"},
			{"too large", "POST", "/v1.0/applications", `{"displayName":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "Request_BadRequest"},
			{"method not allowed", "DELETE", "/v1.0/applications", nil, 405, "Request_BadRequest"},
			{"unknown segment", "GET", "/v1.0/widgets", nil, 400, "BadRequest"},
			{"unknown action", "POST", "/v1.0/applications/" + app + "/explode", nil, 400, "BadRequest"},
			{"encoded slash", "GET", "/v1.0/users/a%2Fb", nil, 400, "Request_BadRequest"},
			{"NUL in path", "GET", "/v1.0/users/a%00b", nil, 400, "Request_BadRequest"},
			{"appId key on users", "GET", "/v1.0/users(appId='x')", nil, 400, "Request_BadRequest"},
			{"open key", "GET", "/v1.0/applications(appId='x'", nil, 400, "Request_BadRequest"},
			{"not a GUID", "GET", "/v1.0/applications/x", nil, 404, "Request_ResourceNotFound"},
			{"key form", "GET", "/v1.0/applications('" + app + "')", nil, 200, ""},
			{"user display name too long", "POST", "/v1.0/users", func() any {
				b := newUserBody("long", e.contoso)
				b["displayName"] = strings.Repeat("ü", 5000)
				return b
			}(), 400, "Request_BadRequest"},
			{"service principal display name too long", "PATCH", "/v1.0/servicePrincipals/" + e.contoso.AdminSP.ID, map[string]any{"displayName": strings.Repeat("s", 5000)}, 400, "Request_BadRequest"},
			{"secret beyond year 9999", "POST", "/v1.0/applications/" + app + "/addPassword", `{"passwordCredential":{"startDateTime":"9999-01-01T00:00:00Z"}}`, 400, "Request_BadRequest"},
			{"display name too long", "POST", "/v1.0/groups", map[string]any{"displayName": strings.Repeat("g", 300), "mailEnabled": false, "mailNickname": "g", "securityEnabled": true}, 400, "Request_BadRequest"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.call(admin, tc.method, tc.path, tc.body)
				if tc.code == "" {
					r.expect(t, tc.status)
				} else {
					r.expect(t, tc.status, tc.code)
				}
			})
		}
		r = e.call(admin, "DELETE", "/v1.0/applications", nil)
		inner = r.doc["error"].(map[string]any)["innerError"].(map[string]any)
		if inner["client-request-id"] != r.header.Get("request-id") {
			t.Errorf("without a client-request-id, Graph uses the request id: %v", inner)
		}
		if r.header.Get("Allow") != "GET, POST" {
			t.Errorf("Allow = %q", r.header.Get("Allow"))
		}
		r = e.callWith(admin, "POST", "/v1.0/applications", `{"displayName":"x"}`, http.Header{"Content-Type": {"text/plain"}})
		r.expect(t, 400, "Request_BadRequest")
	})
}

// TestDelegatedScopes checks that a delegated token (scp, no idtyp=app)
// is judged by its scopes, never by a roles claim it also carries, and an
// app-only token by its roles, never by scp.
func TestDelegatedScopes(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	tid := e.contoso.Tenant.ID
	admin := e.adminToken(e.contoso)
	user := e.call(admin, "POST", "/v1.0/users", newUserBody("dee", e.contoso)).expect(t, 201).str("id")
	now := time.Now()
	mint := func(idtyp, scp string, roles ...string) string {
		raw, err := token.Mint(e.keys.Current(), token.Claims{Audience: directory.GraphResource, Issuer: e.srv.URL + "/" + tid + "/",
			TenantID: tid, ObjectID: user, IdentType: idtyp, Scope: scp, Roles: roles,
			IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: now.Add(time.Hour).Unix(), Version: "1.0"})
		must(t, err)
		return raw
	}
	e.call(mint("user", "openid User.Read.All"), "GET", "/v1.0/users", nil).expect(t, 200)
	e.call(mint("", "user.read.all"), "GET", "/v1.0/users", nil).expect(t, 200) // scopes compare case-insensitively
	e.call(mint("user", "openid User.Read.All"), "POST", "/v1.0/users", newUserBody("eli", e.contoso)).expect(t, 403, "Authorization_RequestDenied")
	e.call(mint("user", "openid profile", directory.PermUserReadAll), "GET", "/v1.0/users", nil).expect(t, 403, "Authorization_RequestDenied")
	e.call(mint("app", directory.PermUserReadAll), "GET", "/v1.0/users", nil).expect(t, 403, "Authorization_RequestDenied")
	e.call(mint("app", "", directory.PermUserReadAll), "GET", "/v1.0/users", nil).expect(t, 200)
	if rec := e.lastAudit(tid, "user.list"); rec.Actor != user || rec.Result != "Authorization_RequestDenied" {
		t.Errorf("denial record %+v", rec)
	}
}
