package graph_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

var userKeys = []string{"id", "accountEnabled", "createdDateTime", "displayName", "givenName", "mail",
	"mailNickname", "surname", "userPrincipalName"}

var groupKeys = []string{"id", "createdDateTime", "description", "displayName", "groupTypes", "mail",
	"mailEnabled", "mailNickname", "securityEnabled"}

func newUserBody(name string, tb *directory.TenantBootstrap) map[string]any {
	return map[string]any{"accountEnabled": true, "displayName": name, "mailNickname": name,
		"userPrincipalName": name + "@" + tb.Tenant.Domain,
		"passwordProfile":   map[string]any{"password": "Corr3ct-Horse-Battery", "forceChangePasswordNextSignIn": false}}
}

func TestUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		created := e.call(tok, "POST", "/v1.0/users", newUserBody("ada", e.contoso)).expect(t, 201)
		sameKeys(t, "user", created.doc, userKeys, "@odata.context")
		id := created.str("id")
		if created.str("userPrincipalName") != "ada@contoso.onmicrosoft.com" || created.doc["accountEnabled"] != true {
			t.Fatalf("created: %s", created.raw)
		}
		if strings.Contains(strings.ToLower(string(created.raw)), "password") || strings.Contains(string(created.raw), "argon2") {
			t.Fatalf("user shape leaks the password: %s", created.raw)
		}
		dup := e.call(tok, "POST", "/v1.0/users", newUserBody("ada", e.contoso)).expect(t, 400, "Request_BadRequest")
		if dup.errorMessage() != "Another object with the same value for property userPrincipalName already exists." {
			t.Errorf("message %q", dup.errorMessage())
		}
		weak := newUserBody("bob", e.contoso)
		weak["passwordProfile"] = map[string]any{"password": "short"}
		e.call(tok, "POST", "/v1.0/users", weak).expect(t, 400, "Request_BadRequest")
		foreign := newUserBody("eve", e.fabrikam)
		e.call(tok, "POST", "/v1.0/users", foreign).expect(t, 400, "Request_BadRequest")
		noEnabled := newUserBody("carl", e.contoso)
		delete(noEnabled, "accountEnabled")
		e.call(tok, "POST", "/v1.0/users", noEnabled).expect(t, 400, "Request_BadRequest")

		// By id and by sign-in name.
		e.call(tok, "GET", "/v1.0/users/"+id, nil).expect(t, 200)
		if got := e.call(tok, "GET", "/v1.0/users/ADA@contoso.onmicrosoft.com", nil).expect(t, 200); got.str("id") != id {
			t.Fatalf("by UPN: %s", got.raw)
		}
		e.call(tok, "GET", "/v1.0/users/nobody@contoso.onmicrosoft.com", nil).expect(t, 404, "Request_ResourceNotFound")
		e.call(tok, "GET", "/v1.0/users/not-an-id", nil).expect(t, 404, "Request_ResourceNotFound")

		e.call(tok, "PATCH", "/v1.0/users/"+id, map[string]any{"displayName": "Ada L.", "surname": "Lovelace",
			"passwordProfile": map[string]any{"password": "An0ther-Good-One"}}).expect(t, 204)
		e.call(tok, "PATCH", "/v1.0/users/"+id, map[string]any{"userPrincipalName": "x@contoso.onmicrosoft.com"}).expect(t, 400, "Request_BadRequest")
		got := e.call(tok, "GET", "/v1.0/users/"+id, nil).expect(t, 200)
		if got.str("displayName") != "Ada L." || got.str("surname") != "Lovelace" {
			t.Fatalf("after PATCH: %s", got.raw)
		}
		list := e.call(tok, "GET", "/v1.0/users?$filter="+url.QueryEscape("startswith(displayName,'ada')")+"&$select=displayName,userPrincipalName", nil).expect(t, 200)
		if v := list.values(); len(v) != 1 || v[0]["userPrincipalName"] != "ada@contoso.onmicrosoft.com" || len(v[0]) != 2 {
			t.Fatalf("list: %s", list.raw)
		}
		e.call(tok, "GET", "/v1.0/users?$filter="+url.QueryEscape("appId eq 'x'"), nil).expect(t, 400, "Request_UnsupportedQuery")

		group := e.call(tok, "POST", "/v1.0/groups", map[string]any{"displayName": "readers", "mailEnabled": false,
			"mailNickname": "readers", "securityEnabled": true}).expect(t, 201)
		e.call(tok, "POST", "/v1.0/groups/"+group.str("id")+"/members/$ref",
			map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + id}).expect(t, 204)
		memberOf := e.call(tok, "GET", "/v1.0/users/"+id+"/memberOf", nil).expect(t, 200)
		if v := memberOf.values(); len(v) != 1 || v[0]["id"] != group.str("id") || v[0]["@odata.type"] != "#microsoft.graph.group" {
			t.Fatalf("memberOf: %s", memberOf.raw)
		}

		e.call(tok, "DELETE", "/v1.0/users/"+id, nil).expect(t, 204)
		e.call(tok, "GET", "/v1.0/users/"+id, nil).expect(t, 404, "Request_ResourceNotFound")
		if n := len(e.call(tok, "GET", "/v1.0/groups/"+group.str("id")+"/members", nil).values()); n != 0 {
			t.Fatalf("deleted user still a member (%d)", n)
		}
	})
}

func TestGroups(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		create := func(name string) string {
			r := e.call(tok, "POST", "/v1.0/groups", map[string]any{"displayName": name, "mailEnabled": false,
				"mailNickname": name, "securityEnabled": true, "description": "the " + name, "groupTypes": []string{}}).expect(t, 201)
			sameKeys(t, "group", r.doc, groupKeys, "@odata.context")
			return r.str("id")
		}
		outer, inner := create("outer"), create("inner")
		e.call(tok, "POST", "/v1.0/groups", map[string]any{"displayName": "m365", "mailEnabled": true, "mailNickname": "m", "securityEnabled": false, "groupTypes": []string{"Unified"}}).expect(t, 400, "Request_BadRequest")
		user := e.call(tok, "POST", "/v1.0/users", newUserBody("grace", e.contoso)).expect(t, 201).str("id")
		worker := e.newClient(e.contoso.Tenant.ID, "worker")
		ref := func(id string) map[string]any {
			return map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + id}
		}

		e.call(tok, "POST", "/v1.0/groups/"+outer+"/members/$ref", ref(inner)).expect(t, 204)
		e.call(tok, "POST", "/v1.0/groups/"+outer+"/members/$ref", ref(worker.sp.ID)).expect(t, 204)
		e.call(tok, "POST", "/v1.0/groups/"+inner+"/members/$ref", ref(user)).expect(t, 204)
		dup := e.call(tok, "POST", "/v1.0/groups/"+outer+"/members/$ref", ref(inner)).expect(t, 400, "Request_BadRequest")
		if !strings.Contains(dup.errorMessage(), "already exist") {
			t.Errorf("message %q", dup.errorMessage())
		}
		// Cycles and self-membership are the directory's 400s.
		e.call(tok, "POST", "/v1.0/groups/"+inner+"/members/$ref", ref(outer)).expect(t, 400, "Request_BadRequest")
		e.call(tok, "POST", "/v1.0/groups/"+inner+"/members/$ref", ref(inner)).expect(t, 400, "Request_BadRequest")

		members := e.call(tok, "GET", "/v1.0/groups/"+outer+"/members", nil).expect(t, 200)
		types := map[string]string{}
		for _, v := range members.values() {
			types[v["id"].(string)] = v["@odata.type"].(string)
		}
		if len(types) != 2 || types[inner] != "#microsoft.graph.group" || types[worker.sp.ID] != "#microsoft.graph.servicePrincipal" {
			t.Fatalf("members: %s", members.raw)
		}
		transitive := e.call(tok, "GET", "/v1.0/groups/"+outer+"/transitiveMembers", nil).expect(t, 200)
		if len(transitive.values()) != 3 {
			t.Fatalf("transitiveMembers: %s", transitive.raw)
		}
		sel := e.call(tok, "GET", "/v1.0/groups/"+outer+"/members?$select=displayName", nil).expect(t, 200)
		for _, v := range sel.values() {
			sameKeys(t, "selected member", v, []string{"displayName", "@odata.type"})
		}
		paged := e.call(tok, "GET", "/v1.0/groups/"+outer+"/transitiveMembers?$top=2", nil).expect(t, 200)
		if len(paged.values()) != 2 || paged.str("@odata.nextLink") == "" {
			t.Fatalf("paged: %s", paged.raw)
		}
		rest := e.call(tok, "GET", paged.str("@odata.nextLink"), nil).expect(t, 200)
		if len(rest.values()) != 1 || rest.str("@odata.nextLink") != "" {
			t.Fatalf("second page: %s", rest.raw)
		}

		e.call(tok, "PATCH", "/v1.0/groups/"+outer, map[string]any{"description": "changed"}).expect(t, 204)
		e.call(tok, "PATCH", "/v1.0/groups/"+outer, map[string]any{"securityEnabled": false}).expect(t, 400, "Request_BadRequest")
		if got := e.call(tok, "GET", "/v1.0/groups/"+outer, nil).expect(t, 200); got.str("description") != "changed" || got.str("displayName") != "outer" {
			t.Fatalf("after PATCH: %s", got.raw)
		}

		e.call(tok, "DELETE", "/v1.0/groups/"+outer+"/members/"+inner+"/$ref", nil).expect(t, 204)
		e.call(tok, "DELETE", "/v1.0/groups/"+outer+"/members/"+inner+"/$ref", nil).expect(t, 404, "Request_ResourceNotFound")

		e.call(tok, "POST", "/v1.0/groups/"+outer+"/owners/$ref", ref(user)).expect(t, 204)
		if v := e.call(tok, "GET", "/v1.0/groups/"+outer+"/owners", nil).expect(t, 200).values(); len(v) != 1 || v[0]["@odata.type"] != "#microsoft.graph.user" {
			t.Fatalf("owners: %v", v)
		}
		e.call(tok, "DELETE", "/v1.0/groups/"+outer+"/owners/"+user+"/$ref", nil).expect(t, 204)

		e.call(tok, "DELETE", "/v1.0/groups/"+outer, nil).expect(t, 204)
		e.call(tok, "GET", "/v1.0/groups/"+outer, nil).expect(t, 404, "Request_ResourceNotFound")
	})
}
