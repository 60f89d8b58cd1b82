package graph_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// applicationKeys are exactly the properties of Graph's application that
// this surface serves; a missing or extra key (a leaked storage field)
// fails the test.
var applicationKeys = []string{"id", "appId", "displayName", "description", "signInAudience", "identifierUris",
	"appRoles", "api", "requiredResourceAccess", "passwordCredentials", "keyCredentials", "web", "spa", "publicClient",
	"isFallbackPublicClient", "publisherDomain", "createdDateTime", "tags"}

func sameKeys(t *testing.T, what string, m map[string]any, want []string, extra ...string) {
	t.Helper()
	got := keysOf(m)
	want = append(slices.Clone(want), extra...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s keys = %v, want %v", what, got, want)
	}
}

func TestApplicationLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		roleID := uuid.NewString()
		created := e.call(tok, "POST", "/v1.0/applications", map[string]any{
			"@odata.type":    "#microsoft.graph.application",
			"displayName":    "orders",
			"signInAudience": "AzureADMultipleOrgs",
			"identifierUris": []string{"api://contoso.onmicrosoft.com/orders"},
			"appRoles": []map[string]any{{"id": roleID, "value": "Orders.Read", "displayName": "Read orders",
				"description": "Read orders.", "allowedMemberTypes": []string{"Application"}}},
			"api":                    map[string]any{"requestedAccessTokenVersion": 2},
			"requiredResourceAccess": []map[string]any{{"resourceAppId": directory.GraphAppID, "resourceAccess": []map[string]any{{"id": "df021288-bdef-4463-88db-98f22de89214", "type": "Role"}}}},
			"web":                    map[string]any{"redirectUris": []string{"https://orders.contoso.test/callback"}},
			"tags":                   []string{"seed"},
		}).expect(t, 201)
		sameKeys(t, "created application", created.doc, applicationKeys, "@odata.context")
		if got := created.str("@odata.context"); got != e.srv.URL+"/v1.0/$metadata#applications/$entity" {
			t.Errorf("@odata.context = %q", got)
		}
		id, appID := created.str("id"), created.str("appId")
		if !strings.HasSuffix(created.str("createdDateTime"), "Z") || created.str("publisherDomain") != "contoso.onmicrosoft.com" {
			t.Errorf("createdDateTime %q, publisherDomain %q", created.str("createdDateTime"), created.str("publisherDomain"))
		}
		if created.doc["description"] != nil {
			t.Errorf("unset description = %v, want null", created.doc["description"])
		}
		roles := created.doc["appRoles"].([]any)
		role := roles[0].(map[string]any)
		if role["id"] != roleID || role["isEnabled"] != true || role["origin"] != "Application" || role["value"] != "Orders.Read" {
			t.Errorf("appRole = %v", role)
		}
		if v := created.doc["api"].(map[string]any)["requestedAccessTokenVersion"]; v != float64(2) {
			t.Errorf("requestedAccessTokenVersion = %v", v)
		}

		// By object id and by the appId key.
		byID := e.call(tok, "GET", "/v1.0/applications/"+id, nil).expect(t, 200)
		byAppID := e.call(tok, "GET", "/v1.0/applications(appId='"+appID+"')", nil).expect(t, 200)
		if byID.str("id") != id || byAppID.str("id") != id || byID.str("displayName") != "orders" {
			t.Fatalf("get: %s / %s", byID.raw, byAppID.raw)
		}
		e.call(tok, "GET", "/v1.0/applications(appId='"+strings.ToUpper(appID)+"')", nil).expect(t, 200)
		e.call(tok, "GET", "/v1.0/applications/"+strings.ToUpper(id), nil).expect(t, 200)

		// PATCH changes only what it names.
		e.call(tok, "PATCH", "/v1.0/applications/"+id, map[string]any{"description": "Order API", "tags": []string{"a", "b"}}).expect(t, 204)
		got := e.call(tok, "GET", "/v1.0/applications/"+id, nil).expect(t, 200)
		if got.str("description") != "Order API" || len(got.doc["tags"].([]any)) != 2 || got.str("displayName") != "orders" ||
			len(got.doc["identifierUris"].([]any)) != 1 {
			t.Fatalf("after PATCH: %s", got.raw)
		}
		e.call(tok, "PATCH", "/v1.0/applications(appId='"+appID+"')", map[string]any{"displayName": "orders2"}).expect(t, 204)
		if e.call(tok, "GET", "/v1.0/applications/"+id, nil).str("displayName") != "orders2" {
			t.Fatal("PATCH by appId key did not apply")
		}

		// Validation is the directory's, answered as Graph's 400.
		bad := e.call(tok, "PATCH", "/v1.0/applications/"+id, map[string]any{"signInAudience": "PersonalMicrosoftAccount"}).expect(t, 400, "Request_BadRequest")
		if !strings.Contains(bad.errorMessage(), "signInAudience") {
			t.Errorf("message %q", bad.errorMessage())
		}
		e.call(tok, "PATCH", "/v1.0/applications/"+id, map[string]any{"appId": uuid.NewString()}).expect(t, 400, "Request_BadRequest")
		// A second application may not claim the same identifier URI.
		dup := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "dup", "identifierUris": []string{"api://contoso.onmicrosoft.com/orders"}}).expect(t, 400, "Request_BadRequest")
		if dup.errorMessage() != "Another object with the same value for property identifierUris already exists." {
			t.Errorf("duplicate message %q", dup.errorMessage())
		}

		e.call(tok, "DELETE", "/v1.0/applications/"+id, nil).expect(t, 204)
		nf := e.call(tok, "GET", "/v1.0/applications/"+id, nil).expect(t, 404, "Request_ResourceNotFound")
		if nf.errorMessage() != "Resource '"+id+"' does not exist or one of its queried reference-property objects are not present." {
			t.Errorf("404 message %q", nf.errorMessage())
		}
		e.call(tok, "DELETE", "/v1.0/applications/"+id, nil).expect(t, 404, "Request_ResourceNotFound")
	})
}

func TestApplicationPasswords(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		id := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "secrets"}).expect(t, 201).str("id")
		end := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
		added := e.call(tok, "POST", "/v1.0/applications/"+id+"/addPassword", map[string]any{
			"passwordCredential": map[string]any{"displayName": "ci", "endDateTime": end.Format(time.RFC3339)}}).expect(t, 200)
		secret, keyID := added.str("secretText"), added.str("keyId")
		if len(secret) < 30 || added.str("hint") != secret[:3] || added.str("displayName") != "ci" || added.str("endDateTime") != end.Format(time.RFC3339) {
			t.Fatalf("addPassword: %s", added.raw)
		}
		sameKeys(t, "passwordCredential", added.doc, []string{"customKeyIdentifier", "displayName", "endDateTime", "hint", "keyId", "secretText", "startDateTime"}, "@odata.context")
		if added.header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", added.header.Get("Cache-Control"))
		}
		// An empty body is Graph's defaults.
		e.call(tok, "POST", "/v1.0/applications/"+id+"/addPassword", nil).expect(t, 200)

		// The secret works at the token endpoint (once the app has its
		// service principal)...
		app := e.call(tok, "GET", "/v1.0/applications/"+id, nil).expect(t, 200)
		e.call(tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": app.str("appId")}).expect(t, 201)
		e.tokenFor(e.contoso.Tenant.ID, app.str("appId"), secret, "https://graph.microsoft.com/.default")
		// ...and never appears again: not its text, not its hash.
		for _, path := range []string{"/v1.0/applications/" + id, "/v1.0/applications", "/v1.0/applications?$select=passwordCredentials"} {
			r := e.call(tok, "GET", path, nil).expect(t, 200)
			if strings.Contains(string(r.raw), secret) || strings.Contains(strings.ToLower(string(r.raw)), "hash") {
				t.Fatalf("GET %s leaks the secret: %s", path, r.raw)
			}
		}
		creds := app.doc["passwordCredentials"].([]any)
		if len(creds) != 2 {
			t.Fatalf("passwordCredentials = %v", creds)
		}
		for _, c := range creds {
			m := c.(map[string]any)
			if m["secretText"] != nil {
				t.Fatalf("secretText in GET: %v", m)
			}
			sameKeys(t, "passwordCredential", m, []string{"customKeyIdentifier", "displayName", "endDateTime", "hint", "keyId", "secretText", "startDateTime"})
		}

		e.call(tok, "POST", "/v1.0/applications/"+id+"/removePassword", map[string]any{"keyId": keyID}).expect(t, 204)
		e.call(tok, "POST", "/v1.0/applications/"+id+"/removePassword", map[string]any{"keyId": keyID}).expect(t, 400, "Request_BadRequest")
		e.call(tok, "POST", "/v1.0/applications/"+id+"/removePassword", map[string]any{"keyId": "nope"}).expect(t, 400, "Request_BadRequest")
		if n := len(e.call(tok, "GET", "/v1.0/applications/"+id, nil).doc["passwordCredentials"].([]any)); n != 1 {
			t.Fatalf("%d credentials after removePassword", n)
		}
		// A bad window is the directory's 400.
		e.call(tok, "POST", "/v1.0/applications/"+id+"/addPassword", map[string]any{"passwordCredential": map[string]any{
			"startDateTime": "2030-01-01T00:00:00Z", "endDateTime": "2029-01-01T00:00:00Z"}}).expect(t, 400, "Request_BadRequest")
	})
}

func TestFederatedIdentityCredentials(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		id := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "workload"}).expect(t, 201).str("id")
		base := "/v1.0/applications/" + id + "/federatedIdentityCredentials"
		fic := map[string]any{"name": "github-main", "issuer": "https://token.actions.githubusercontent.com",
			"subject": "repo:contoso/app:ref:refs/heads/main", "audiences": []string{"api://AzureADTokenExchange"}}
		created := e.call(tok, "POST", base, fic).expect(t, 201)
		sameKeys(t, "federatedIdentityCredential", created.doc, []string{"id", "name", "issuer", "subject", "audiences", "description"}, "@odata.context")
		if created.str("@odata.context") != e.srv.URL+"/v1.0/$metadata#applications('"+id+"')/federatedIdentityCredentials/$entity" {
			t.Errorf("@odata.context %q", created.str("@odata.context"))
		}
		ficID := created.str("id")

		// Graph's two duplicate answers.
		dupName := e.call(tok, "POST", base, fic).expect(t, 409, "Request_MultipleObjectsWithSameKeyValue")
		if dupName.errorMessage() != "FederatedIdentityCredential with name github-main already exists." {
			t.Errorf("message %q", dupName.errorMessage())
		}
		fic["name"] = "other"
		e.call(tok, "POST", base, fic).expect(t, 400, "Request_BadRequest")
		fic["issuer"] = "http://insecure.example"
		e.call(tok, "POST", base, fic).expect(t, 400, "Request_BadRequest")

		list := e.call(tok, "GET", base, nil).expect(t, 200)
		if ids := list.ids(); len(ids) != 1 || ids[0] != ficID {
			t.Fatalf("list = %s", list.raw)
		}
		byName := e.call(tok, "GET", base+"/github-main", nil).expect(t, 200)
		if byName.str("id") != ficID {
			t.Fatalf("by name: %s", byName.raw)
		}
		e.call(tok, "PATCH", base+"/"+ficID, map[string]any{"subject": "repo:contoso/app:environment:prod", "description": "prod"}).expect(t, 204)
		e.call(tok, "PATCH", base+"/"+ficID, map[string]any{"name": "renamed"}).expect(t, 400, "Request_BadRequest")
		got := e.call(tok, "GET", base+"/"+ficID, nil).expect(t, 200)
		if got.str("subject") != "repo:contoso/app:environment:prod" || got.str("description") != "prod" || got.str("name") != "github-main" {
			t.Fatalf("after PATCH: %s", got.raw)
		}
		e.call(tok, "DELETE", base+"/github-main", nil).expect(t, 204)
		e.call(tok, "GET", base+"/"+ficID, nil).expect(t, 404, "Request_ResourceNotFound")
		e.call(tok, "DELETE", base+"/"+ficID, nil).expect(t, 404, "Request_ResourceNotFound")
	})
}

func TestApplicationOwners(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		id := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "owned"}).expect(t, 201).str("id")
		owner := e.newClient(e.contoso.Tenant.ID, "owner")
		ref := map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + owner.sp.ID}
		e.call(tok, "POST", "/v1.0/applications/"+id+"/owners/$ref", ref).expect(t, 204)
		e.call(tok, "POST", "/v1.0/applications/"+id+"/owners/$ref", ref).expect(t, 400, "Request_BadRequest")
		owners := e.call(tok, "GET", "/v1.0/applications/"+id+"/owners", nil).expect(t, 200)
		vals := owners.values()
		if len(vals) != 1 || vals[0]["id"] != owner.sp.ID || vals[0]["@odata.type"] != "#microsoft.graph.servicePrincipal" {
			t.Fatalf("owners = %s", owners.raw)
		}
		if owners.str("@odata.context") != e.srv.URL+"/v1.0/$metadata#directoryObjects" {
			t.Errorf("@odata.context %q", owners.str("@odata.context"))
		}
		missing := uuid.NewString()
		e.call(tok, "POST", "/v1.0/applications/"+id+"/owners/$ref", map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + missing}).expect(t, 404, "Request_ResourceNotFound")
		e.call(tok, "POST", "/v1.0/applications/"+id+"/owners/$ref", map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/nothing/" + missing}).expect(t, 400, "Request_BadRequest")
		e.call(tok, "DELETE", "/v1.0/applications/"+id+"/owners/"+owner.sp.ID+"/$ref", nil).expect(t, 204)
		e.call(tok, "DELETE", "/v1.0/applications/"+id+"/owners/"+owner.sp.ID+"/$ref", nil).expect(t, 404, "Request_ResourceNotFound")
		if n := len(e.call(tok, "GET", "/v1.0/applications/"+id+"/owners", nil).values()); n != 0 {
			t.Fatalf("%d owners after removal", n)
		}
	})
}

func TestApplicationQueries(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		var made []string
		for i := range 5 {
			made = append(made, e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "page-" + string(rune('a'+i))}).expect(t, 201).str("id"))
		}
		e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "O'Brien's app"}).expect(t, 201)
		slices.Sort(made)

		// $top with @odata.nextLink, followed as a client would, until the end.
		var seen []string
		next := "/v1.0/applications?$filter=" + url.QueryEscape("startswith(displayName,'page-')") + "&$top=2&$select=id,displayName"
		pages := 0
		for next != "" {
			r := e.call(tok, "GET", next, nil).expect(t, 200)
			pages++
			if !strings.HasPrefix(r.str("@odata.context"), e.srv.URL+"/v1.0/$metadata#applications(id,displayName)") {
				t.Fatalf("@odata.context %q", r.str("@odata.context"))
			}
			for _, v := range r.values() {
				sameKeys(t, "selected application", v, []string{"id", "displayName"})
				seen = append(seen, v["id"].(string))
			}
			next = r.str("@odata.nextLink")
			if next != "" && !strings.HasPrefix(next, e.srv.URL+"/v1.0/applications?") {
				t.Fatalf("nextLink %q is not absolute", next)
			}
			if pages > 5 {
				t.Fatal("paging does not end")
			}
		}
		if pages != 3 || !slices.Equal(seen, made) {
			t.Fatalf("%d pages, ids %v, want %v", pages, seen, made)
		}

		// Each filter form.
		filters := map[string]int{
			"displayName eq 'page-c'":              1,
			"DisplayName eq 'PAGE-C'":              1,
			"startswith(displayName, 'page')":      5,
			"displayName eq 'O''Brien''s app'":     1,
			"id eq '" + made[0] + "'":              1,
			"appId eq '" + uuid.NewString() + "'":  0,
			"displayName eq ''":                    0,
			"displayName eq 'no such application'": 0,
		}
		for f, n := range filters {
			r := e.call(tok, "GET", "/v1.0/applications?$filter="+url.QueryEscape(f), nil).expect(t, 200)
			if len(r.values()) != n {
				t.Errorf("$filter=%s: %d results, want %d", f, len(r.values()), n)
			}
		}
		appID := e.call(tok, "GET", "/v1.0/applications/"+made[1], nil).str("appId")
		if ids := e.call(tok, "GET", "/v1.0/applications?$filter="+url.QueryEscape("appId eq '"+appID+"'"), nil).ids(); len(ids) != 1 || ids[0] != made[1] {
			t.Errorf("appId filter = %v", ids)
		}

		// Refusals, each a 400 in Graph's terms.
		for q, code := range map[string]string{
			"$filter=" + url.QueryEscape("isFallbackPublicClient eq true"): "Request_UnsupportedQuery",
			"$filter=" + url.QueryEscape("displayName ne 'a'"):             "Request_UnsupportedQuery",
			"$filter=" + url.QueryEscape("displayName eq 'unterminated"):   "BadRequest",
			"$filter=" + url.QueryEscape("startswith(id,'a')"):             "Request_UnsupportedQuery",
			"$select=displayName,passwordHash":                             "Request_BadRequest",
			"$top=0":                                                       "Request_BadRequest",
			"$top=1000":                                                    "Request_BadRequest",
			"$top=ten":                                                     "Request_BadRequest",
			"$skiptoken=not-a-token":                                       "Request_BadRequest",
			"$orderby=displayName":                                         "Request_UnsupportedQuery",
			"$expand=owners":                                               "Request_UnsupportedQuery",
			"$top=1&$top=2":                                                "Request_BadRequest",
			"$filter=%zz":                                                  "Request_BadRequest",
			"$filter=" + url.QueryEscape("displayName eq '") + "%00" + url.QueryEscape("'"): "Request_BadRequest",
		} {
			e.call(tok, "GET", "/v1.0/applications?"+q, nil).expect(t, 400, code)
		}
		// $select on one object.
		one := e.call(tok, "GET", "/v1.0/applications/"+made[0]+"?$select=appId", nil).expect(t, 200)
		sameKeys(t, "selected application", one.doc, []string{"appId"}, "@odata.context")
		e.call(tok, "GET", "/v1.0/applications/"+made[0]+"?$top=1", nil).expect(t, 400, "Request_UnsupportedQuery")
	})
}
