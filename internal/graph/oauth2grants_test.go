package graph_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
)

var grantKeys = []string{"id", "clientId", "consentType", "principalId", "resourceId", "scope"}

func filterQuery(f string) string { return "?$filter=" + url.QueryEscape(f) }

func TestOAuth2PermissionGrants(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tid := e.contoso.Tenant.ID
		writer := e.newClient(tid, "grant-writer", directory.PermDelegatedGrantReadWriteAll)
		reader := e.newClient(tid, "grant-reader", directory.PermDelegatedGrantReadAll)
		dirReader := e.newClient(tid, "dir-reader", directory.PermDirectoryReadAll)
		outsider := e.newClient(tid, "outsider", directory.PermUserReadAll)
		client := e.newClient(tid, "the-client")
		graphSP, err := e.dir.ServicePrincipalByAppID(e.ctx, tid, directory.GraphAppID)
		must(t, err)
		ada, err := e.dir.CreateUser(e.ctx, tid, directory.NewUser{UserPrincipalName: "ada@" + e.contoso.Tenant.Domain,
			DisplayName: "Ada", Password: "Correct-Horse-9", AccountEnabled: true})
		must(t, err)
		bob, err := e.dir.CreateUser(e.ctx, tid, directory.NewUser{UserPrincipalName: "bob@" + e.contoso.Tenant.Domain,
			DisplayName: "Bob", Password: "Correct-Horse-9", AccountEnabled: true})
		must(t, err)
		tok := writer.token

		// Create: a tenant-wide grant and one for Ada.
		body := func(consentType, principal, scope string) map[string]any {
			b := map[string]any{"clientId": client.sp.ID, "consentType": consentType, "resourceId": graphSP.ID, "scope": scope}
			if principal != "" {
				b["principalId"] = principal
			}
			return b
		}
		all := e.call(tok, "POST", "/v1.0/oauth2PermissionGrants", body("AllPrincipals", "", "User.Read openid")).expect(t, 201)
		sameKeys(t, "oAuth2PermissionGrant", all.doc, grantKeys, "@odata.context")
		if all.doc["principalId"] != nil || all.str("consentType") != "AllPrincipals" || all.str("scope") != "User.Read openid" ||
			all.str("clientId") != client.sp.ID || all.str("resourceId") != graphSP.ID {
			t.Fatalf("created: %s", all.raw)
		}
		if !strings.HasSuffix(all.str("@odata.context"), "/v1.0/$metadata#oauth2PermissionGrants/$entity") {
			t.Fatalf("context: %s", all.str("@odata.context"))
		}
		allID := all.str("id")
		if rec := e.lastAudit(tid, "oauth2PermissionGrant.create"); rec.Result != audit.Success || rec.Target != allID || rec.Actor != writer.sp.ID {
			t.Fatalf("audit: %+v", rec)
		}
		// Upper-case ids are the same ids.
		adaGrant := e.call(tok, "POST", "/v1.0/oauth2PermissionGrants", map[string]any{"clientId": strings.ToUpper(client.sp.ID),
			"consentType": "Principal", "principalId": strings.ToUpper(ada.ID), "resourceId": graphSP.ID, "scope": "User.Read"}).expect(t, 201)
		adaID := adaGrant.str("id")
		if adaGrant.str("principalId") != ada.ID || adaGrant.str("clientId") != client.sp.ID {
			t.Fatalf("created: %s", adaGrant.raw)
		}

		// Bad input, each a 400 (or Graph's 409 for a second grant).
		dup := e.call(tok, "POST", "/v1.0/oauth2PermissionGrants", body("AllPrincipals", "", "User.Read")).
			expect(t, 409, "Request_MultipleObjectsWithSameKeyValue")
		if dup.errorMessage() != "Permission entry already exists." {
			t.Errorf("duplicate message %q", dup.errorMessage())
		}
		e.call(tok, "POST", "/v1.0/oauth2PermissionGrants", body("Principal", ada.ID, "Mail.Read")).expect(t, 409, "Request_MultipleObjectsWithSameKeyValue")
		nobody := uuid.NewString()
		for name, b := range map[string]map[string]any{
			"unknown client":      {"clientId": nobody, "consentType": "AllPrincipals", "resourceId": graphSP.ID, "scope": "User.Read"},
			"unknown resource":    {"clientId": client.sp.ID, "consentType": "AllPrincipals", "resourceId": nobody, "scope": "User.Read"},
			"unknown principal":   body("Principal", nobody, "User.Read"),
			"unknown scope":       body("Principal", bob.ID, "User.Read Not.AScope"),
			"app role as scope":   body("Principal", bob.ID, "User.Read.All Directory.ReadWrite.All"),
			"bad consentType":     body("Everyone", "", "User.Read"),
			"principal for all":   body("AllPrincipals", ada.ID, "User.Read"),
			"principal missing":   body("Principal", "", "User.Read"),
			"client missing":      {"consentType": "AllPrincipals", "resourceId": graphSP.ID, "scope": "User.Read"},
			"resource missing":    {"clientId": client.sp.ID, "consentType": "AllPrincipals", "scope": "User.Read"},
			"consentType missing": {"clientId": client.sp.ID, "resourceId": graphSP.ID, "scope": "User.Read"},
			"id given":            {"id": nobody, "clientId": client.sp.ID, "consentType": "Principal", "principalId": bob.ID, "resourceId": graphSP.ID},
			"unknown property":    {"clientId": client.sp.ID, "consentType": "AllPrincipals", "resourceId": graphSP.ID, "colour": "red"},
			"wrong type":          {"clientId": client.sp.ID, "consentType": "AllPrincipals", "resourceId": graphSP.ID, "scope": 7},
		} {
			r := e.call(tok, "POST", "/v1.0/oauth2PermissionGrants", b)
			if r.status != 400 || r.errorCode() != "Request_BadRequest" {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		e.call(tok, "POST", "/v1.0/oauth2PermissionGrants", "not json").expect(t, 400, "Request_BadRequest")

		// Get.
		got := e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants/"+adaID, nil).expect(t, 200)
		sameKeys(t, "oAuth2PermissionGrant", got.doc, grantKeys, "@odata.context")
		if got.str("principalId") != ada.ID || got.str("consentType") != "Principal" {
			t.Fatalf("get: %s", got.raw)
		}
		sel := e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants/"+strings.ToUpper(adaID)+"?$select=scope,clientId", nil).expect(t, 200)
		if sel.str("scope") != "User.Read" || len(sel.doc) != 3 {
			t.Fatalf("$select: %s", sel.raw)
		}
		e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants/"+nobody, nil).expect(t, 404, "Request_ResourceNotFound")
		e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants/not-an-id", nil).expect(t, 404, "Request_ResourceNotFound")
		e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants/"+adaID+"?$select=nope", nil).expect(t, 400, "Request_BadRequest")

		// List, with filters.
		listIDs := func(token, path string) []string {
			t.Helper()
			r := e.call(token, "GET", path, nil)
			if r.status != 200 {
				t.Fatalf("GET %s: %d %s", path, r.status, r.raw)
			}
			ids := r.ids()
			slices.Sort(ids)
			return ids
		}
		both := []string{allID, adaID}
		slices.Sort(both)
		for path, want := range map[string][]string{
			"/v1.0/oauth2PermissionGrants": both,
			"/v1.0/oauth2PermissionGrants" + filterQuery("clientId eq '"+client.sp.ID+"'"):                                    both,
			"/v1.0/oauth2PermissionGrants" + filterQuery("clientId eq '"+writer.sp.ID+"'"):                                    nil,
			"/v1.0/oauth2PermissionGrants" + filterQuery("resourceId eq '"+strings.ToUpper(graphSP.ID)+"'"):                   both,
			"/v1.0/oauth2PermissionGrants" + filterQuery("consentType eq 'AllPrincipals'"):                                    {allID},
			"/v1.0/oauth2PermissionGrants" + filterQuery("consentType eq 'principal'"):                                        {adaID},
			"/v1.0/oauth2PermissionGrants" + filterQuery("consentType eq 'Other'"):                                            nil,
			"/v1.0/oauth2PermissionGrants" + filterQuery("principalId eq '"+ada.ID+"'"):                                       {adaID},
			"/v1.0/oauth2PermissionGrants" + filterQuery("principalId eq ''"):                                                 nil,
			"/v1.0/oauth2PermissionGrants" + filterQuery("clientId eq '"+client.sp.ID+"' and consentType eq 'AllPrincipals'"): {allID},
			"/v1.0/oauth2PermissionGrants" + filterQuery("ClientId EQ '"+client.sp.ID+"' AND principalId eq '"+ada.ID+"'"):    {adaID},
			"/v1.0/servicePrincipals/" + client.sp.ID + "/oauth2PermissionGrants":                                             both,
			"/v1.0/servicePrincipals(appId='" + client.app.AppID + "')/oauth2PermissionGrants":                                both,
			"/v1.0/servicePrincipals/" + client.sp.ID + "/oauth2PermissionGrants" + filterQuery("consentType eq 'Principal'"): {adaID},
			"/v1.0/servicePrincipals/" + graphSP.ID + "/oauth2PermissionGrants":                                               nil, // Graph is the resource, not the client
			"/v1.0/users/" + ada.ID + "/oauth2PermissionGrants":                                                               {adaID},
			"/v1.0/users/ada@" + e.contoso.Tenant.Domain + "/oauth2PermissionGrants":                                          {adaID},
			"/v1.0/users/" + bob.ID + "/oauth2PermissionGrants":                                                               nil,
		} {
			if got := listIDs(reader.token, path); !slices.Equal(got, want) {
				t.Errorf("%s: %v, want %v", path, got, want)
			}
		}
		list := e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants", nil).expect(t, 200)
		if !strings.HasSuffix(list.str("@odata.context"), "/v1.0/$metadata#oauth2PermissionGrants") {
			t.Fatalf("context: %s", list.raw)
		}
		for _, v := range list.values() {
			sameKeys(t, "oAuth2PermissionGrant", v, grantKeys)
		}
		spList := e.call(reader.token, "GET", "/v1.0/servicePrincipals/"+client.sp.ID+"/oauth2PermissionGrants", nil).expect(t, 200)
		if !strings.HasSuffix(spList.str("@odata.context"), "/v1.0/$metadata#servicePrincipals('"+client.sp.ID+"')/oauth2PermissionGrants") {
			t.Fatalf("context: %s", spList.raw)
		}
		// Paging: $top and the nextLink, which keeps the filter.
		first := e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants"+filterQuery("clientId eq '"+client.sp.ID+"'")+"&$top=1", nil).expect(t, 200)
		next := first.str("@odata.nextLink")
		if len(first.values()) != 1 || next == "" || !strings.Contains(next, "filter") {
			t.Fatalf("first page: %s", first.raw)
		}
		second := e.call(reader.token, "GET", next, nil).expect(t, 200)
		if len(second.values()) != 1 || second.str("@odata.nextLink") != "" || second.ids()[0] == first.ids()[0] {
			t.Fatalf("second page: %s", second.raw)
		}
		sel2 := e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants?$select=scope", nil).expect(t, 200)
		for _, v := range sel2.values() {
			if len(v) != 1 || v["scope"] == nil {
				t.Fatalf("$select on a list: %s", sel2.raw)
			}
		}
		for _, f := range []string{"scope eq 'User.Read'", "clientId ne 'x'", "startswith(clientId,'a')", "clientId eq x",
			"clientId eq 'a' or resourceId eq 'b'", "clientId eq 'a' and clientId eq 'b'", "clientId eq 'a' and", "id eq 'x'"} {
			r := e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants"+filterQuery(f), nil)
			if r.status != 400 || r.errorCode() != "Request_UnsupportedQuery" {
				t.Errorf("$filter=%s: %d %s", f, r.status, r.raw)
			}
		}
		e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants?$filter=a&$filter=b", nil).expect(t, 400, "Request_BadRequest")
		e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants?$top=0", nil).expect(t, 400, "Request_BadRequest")
		e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants?$orderby=scope", nil).expect(t, 400, "Request_UnsupportedQuery")
		e.call(reader.token, "GET", "/v1.0/servicePrincipals/"+nobody+"/oauth2PermissionGrants", nil).expect(t, 404, "Request_ResourceNotFound")
		e.call(reader.token, "GET", "/v1.0/users/"+nobody+"/oauth2PermissionGrants", nil).expect(t, 404, "Request_ResourceNotFound")

		// Update: scope only.
		e.call(tok, "PATCH", "/v1.0/oauth2PermissionGrants/"+adaID, map[string]any{"scope": "User.Read Mail.Read mail.read"}).expect(t, 204)
		if got := e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants/"+adaID, nil).expect(t, 200); got.str("scope") != "User.Read Mail.Read" {
			t.Fatalf("after PATCH: %s", got.raw)
		}
		if rec := e.lastAudit(tid, "oauth2PermissionGrant.update"); rec.Result != audit.Success || rec.Target != adaID || !strings.Contains(rec.Detail, "Mail.Read") {
			t.Fatalf("audit: %+v", rec)
		}
		// The grant is what the token service consults: Ada's tokens for
		// this client now carry Mail.Read, everyone else's do not.
		scopes, err := e.dir.ConsentedScopes(e.ctx, tid, client.sp.ID, ada.ID, graphSP.ID)
		must(t, err)
		if !slices.Contains(scopes, "Mail.Read") || !slices.Contains(scopes, "openid") {
			t.Fatalf("Ada's scopes: %v", scopes)
		}
		scopes, err = e.dir.ConsentedScopes(e.ctx, tid, client.sp.ID, bob.ID, graphSP.ID)
		must(t, err)
		if slices.Contains(scopes, "Mail.Read") {
			t.Fatalf("another user's scopes: %v", scopes)
		}
		for name, b := range map[string]any{
			"principalId": map[string]any{"principalId": bob.ID},
			"clientId":    map[string]any{"clientId": writer.sp.ID, "scope": "User.Read"},
			"consentType": map[string]any{"consentType": "AllPrincipals"},
			"resourceId":  map[string]any{"resourceId": graphSP.ID},
			"id":          map[string]any{"id": nobody},
		} {
			r := e.call(tok, "PATCH", "/v1.0/oauth2PermissionGrants/"+adaID, b).expect(t, 400, "Request_BadRequest")
			if r.errorMessage() != "Property cannot be updated: "+name {
				t.Errorf("PATCH %s: %q", name, r.errorMessage())
			}
		}
		e.call(tok, "PATCH", "/v1.0/oauth2PermissionGrants/"+adaID, map[string]any{"scope": "Not.AScope"}).expect(t, 400, "Request_BadRequest")
		e.call(tok, "PATCH", "/v1.0/oauth2PermissionGrants/"+adaID, map[string]any{"colour": "red"}).expect(t, 400, "Request_BadRequest")
		e.call(tok, "PATCH", "/v1.0/oauth2PermissionGrants/"+nobody, map[string]any{"scope": "User.Read"}).expect(t, 404, "Request_ResourceNotFound")
		if got := e.call(reader.token, "GET", "/v1.0/oauth2PermissionGrants/"+adaID, nil).expect(t, 200); got.str("scope") != "User.Read Mail.Read" {
			t.Fatalf("a refused PATCH changed the grant: %s", got.raw)
		}
		e.call(tok, "PATCH", "/v1.0/oauth2PermissionGrants/"+allID, map[string]any{"scope": ""}).expect(t, 204)

		// Who may do what.
		e.call(dirReader.token, "GET", "/v1.0/oauth2PermissionGrants", nil).expect(t, 200)
		e.call(dirReader.token, "GET", "/v1.0/servicePrincipals/"+client.sp.ID+"/oauth2PermissionGrants", nil).expect(t, 200)
		e.call(writer.token, "GET", "/v1.0/oauth2PermissionGrants/"+adaID, nil).expect(t, 200)
		for _, c := range []struct{ token, method, path string }{
			{outsider.token, "GET", "/v1.0/oauth2PermissionGrants"},
			{outsider.token, "GET", "/v1.0/oauth2PermissionGrants/" + adaID},
			{outsider.token, "GET", "/v1.0/users/" + ada.ID + "/oauth2PermissionGrants"},
			{e.newClient(tid, "user-writer", directory.PermUserReadWriteAll).token, "GET", "/v1.0/oauth2PermissionGrants"},
			{reader.token, "POST", "/v1.0/oauth2PermissionGrants"},
			{reader.token, "PATCH", "/v1.0/oauth2PermissionGrants/" + adaID},
			{dirReader.token, "DELETE", "/v1.0/oauth2PermissionGrants/" + adaID},
		} {
			var b any
			if c.method != "GET" && c.method != "DELETE" {
				b = map[string]any{"scope": "User.Read"}
			}
			e.call(c.token, c.method, c.path, b).expect(t, 403, "Authorization_RequestDenied")
		}
		if rec := e.lastAudit(tid, "oauth2PermissionGrant.delete"); rec.Result != "Authorization_RequestDenied" || rec.Actor != dirReader.sp.ID {
			t.Fatalf("refusal audit: %+v", rec)
		}
		e.call("", "GET", "/v1.0/oauth2PermissionGrants", nil).expect(t, 401, "InvalidAuthenticationToken")
		e.call(tok, "PUT", "/v1.0/oauth2PermissionGrants/"+adaID, map[string]any{}).expect(t, 405)

		// Another tenant sees none of it.
		other := e.newClient(e.fabrikam.Tenant.ID, "other-writer", directory.PermDelegatedGrantReadWriteAll)
		if ids := e.call(other.token, "GET", "/v1.0/oauth2PermissionGrants", nil).expect(t, 200).ids(); len(ids) != 0 {
			t.Fatalf("fabrikam sees %v", ids)
		}
		e.call(other.token, "GET", "/v1.0/oauth2PermissionGrants/"+adaID, nil).expect(t, 404, "Request_ResourceNotFound")
		e.call(other.token, "DELETE", "/v1.0/oauth2PermissionGrants/"+adaID, nil).expect(t, 404, "Request_ResourceNotFound")
		e.call(other.token, "POST", "/v1.0/oauth2PermissionGrants", body("AllPrincipals", "", "User.Read")).expect(t, 400, "Request_BadRequest")

		// Delete.
		e.call(tok, "DELETE", "/v1.0/oauth2PermissionGrants/"+allID, nil).expect(t, 204)
		if rec := e.lastAudit(tid, "oauth2PermissionGrant.delete"); rec.Result != audit.Success || rec.Target != allID {
			t.Fatalf("audit: %+v", rec)
		}
		e.call(tok, "GET", "/v1.0/oauth2PermissionGrants/"+allID, nil).expect(t, 404, "Request_ResourceNotFound")
		e.call(tok, "DELETE", "/v1.0/oauth2PermissionGrants/"+allID, nil).expect(t, 404, "Request_ResourceNotFound")
		// With the tenant-wide grant gone it can be made again.
		e.call(tok, "POST", "/v1.0/oauth2PermissionGrants", body("AllPrincipals", "", "User.Read")).expect(t, 201)

		// Deleting Ada deletes her grant, as Entra does.
		e.grantGraph(tid, writer.sp.ID, directory.PermUserReadWriteAll)
		userWriter := e.graphToken(tid, writer.app.AppID, writer.secret)
		e.call(userWriter, "DELETE", "/v1.0/users/"+ada.ID, nil).expect(t, 204)
		e.call(userWriter, "GET", "/v1.0/oauth2PermissionGrants/"+adaID, nil).expect(t, 404, "Request_ResourceNotFound")
		if ids := e.call(userWriter, "GET", "/v1.0/oauth2PermissionGrants", nil).expect(t, 200).ids(); len(ids) != 1 {
			t.Fatalf("after deleting the user: %v", ids)
		}
	})
}
