package graph_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// advancedHeader is Graph's advanced query header.
var advancedHeader = http.Header{"ConsistencyLevel": {"eventual"}}

// TestFilterForms runs every $filter form, $count, $search and the /$count
// segment through the real HTTP surface, with Graph's answers for what it
// refuses.
func TestFilterForms(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		list := func(path, filter string, header http.Header, extra ...string) response {
			t.Helper()
			q := "?$filter=" + url.QueryEscape(filter)
			for _, x := range extra {
				q += "&" + x
			}
			return e.callWith(tok, "GET", path+q, nil, header)
		}
		names := func(r response) []string {
			var out []string
			for _, v := range r.values() {
				out = append(out, v["displayName"].(string))
			}
			slices.Sort(out)
			return out
		}
		mk := func(name string, body map[string]any) (id, appID string) {
			body["displayName"] = name
			r := e.call(tok, "POST", "/v1.0/applications", body).expect(t, 201)
			return r.str("id"), r.str("appId")
		}
		ordersID, ordersApp := mk("orders", map[string]any{"identifierUris": []string{"api://contoso.onmicrosoft.com/orders"}, "tags": []string{"HideApp", "seed"}})
		_, billingApp := mk("billing", map[string]any{"signInAudience": "AzureADMultipleOrgs", "description": "Billing engine"})
		mk("Billing Reports", map[string]any{})
		for _, a := range []string{ordersApp, billingApp} {
			e.call(tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": a}).expect(t, 201)
		}

		apps := map[string][]string{
			"displayName eq 'orders' or displayName eq 'billing'":                                      {"billing", "orders"},
			"displayName in ('orders','BILLING')":                                                      {"billing", "orders"},
			"startswith(displayName,'bill') and signInAudience eq 'AzureADMyOrg'":                      {"Billing Reports"},
			"(startswith(displayName,'bill') or displayName eq 'orders') and id eq '" + ordersID + "'": {"orders"},
			"identifierUris/any(x:x eq 'api://contoso.onmicrosoft.com/orders')":                        {"orders"},
			"identifierUris/any(x:startswith(x,'api://'))":                                             {"orders"},
			"tags/any(t:t eq 'hideapp')":                                                               {"orders"},
			"appId eq '" + billingApp + "'":                                                            {"billing"},
			"startswith(appId,'" + billingApp[:8] + "')":                                               {"billing"},
			"signInAudience eq 'AzureADMultipleOrgs'":                                                  {"billing"},
			"description eq 'Billing engine'":                                                          {"billing"},
			"createdDateTime ge 2000-01-01T00:00:00Z and startswith(displayName,'ord')":                {"orders"},
			"createdDateTime le 2000-01-01T00:00:00Z":                                                  nil,
			"id in ('" + ordersID + "', '00000000-0000-0000-0000-000000000000')":                       {"orders"},
			"id eq 'not-a-guid'":                                                                       nil,
		}
		for f, want := range apps {
			if got := names(list("/v1.0/applications", f, nil).expect(t, 200)); !slices.Equal(got, want) {
				t.Errorf("applications $filter=%s: %v, want %v", f, got, want)
			}
		}

		// Advanced operators: refused without ConsistencyLevel and $count,
		// answered with both, with @odata.count.
		for f, want := range map[string][]string{
			"displayName ne 'orders' and startswith(displayName,'b')":                                               {"Billing Reports", "billing"},
			"not(startswith(displayName,'b'))":                                                                      {"orders", "tenantbridge-admin"},
			"not identifierUris/any(x:x eq 'api://contoso.onmicrosoft.com/orders') and startswith(displayName,'b')": {"Billing Reports", "billing"},
			"description eq null and startswith(displayName,'b')":                                                   {"Billing Reports"},
		} {
			r := list("/v1.0/applications", f, nil).expect(t, 400, "Request_UnsupportedQuery")
			if !strings.Contains(r.errorMessage(), "Try adding $count=true query parameter and ConsistencyLevel:eventual header") {
				t.Errorf("%s: %s", f, r.errorMessage())
			}
			list("/v1.0/applications", f, advancedHeader).expect(t, 400, "Request_UnsupportedQuery")
			list("/v1.0/applications", f, nil, "$count=true").expect(t, 400, "Request_UnsupportedQuery")
			r = list("/v1.0/applications", f, advancedHeader, "$count=true").expect(t, 200)
			if got := names(r); !slices.Equal(got, want) {
				t.Errorf("advanced $filter=%s: %v, want %v", f, got, want)
			}
			if r.doc["@odata.count"] != float64(len(want)) {
				t.Errorf("advanced $filter=%s: @odata.count %v", f, r.doc["@odata.count"])
			}
		}

		// Refusals in Graph's terms.
		for f, code := range map[string]string{
			"identifierUris eq 'api://x'":          "Request_UnsupportedQuery",
			"identifierUris/all(x:x eq 'api://x')": "Request_UnsupportedQuery",
			"appRoles/any(r:r/value eq 'x')":       "Request_UnsupportedQuery",
			"keyCredentials/any(k:k/keyId eq 'x')": "Request_UnsupportedQuery",
			"displayName gt 'a'":                   "Request_UnsupportedQuery",
			"endswith(displayName,'s')":            "Request_UnsupportedQuery",
			"displayName eq true":                  "BadRequest",
			"displayName eq 'a' and":               "BadRequest",
			"displayName eq 'a')":                  "BadRequest",
			"publisherDomain eq 'x' or " + strings.Repeat("displayName eq 'x' or ", 15) + "id eq 'x'": "Request_UnsupportedQuery",
		} {
			list("/v1.0/applications", f, nil).expect(t, 400, code)
		}
		if r := list("/v1.0/applications", "appRoles/any(r:r/value eq 'x')", nil); r.errorMessage() != "Complex query on property appRoles is not supported." {
			t.Errorf("complex collection message %q", r.errorMessage())
		}
		if r := list("/v1.0/applications", "isFallbackPublicClient eq true", nil); r.errorMessage() != "Unsupported or invalid query filter clause specified for property 'isFallbackPublicClient' of resource 'Application'." {
			t.Errorf("unsupported property message %q", r.errorMessage())
		}
		// More than 15 expressions work as an advanced query.
		many := "publisherDomain eq 'x' or " + strings.Repeat("displayName eq 'x' or ", 15) + "displayName eq 'orders'"
		list("/v1.0/applications", many, advancedHeader, "$count=true").expect(t, 200)

		// $count=true without the header is ignored; with it, counted.
		r := e.call(tok, "GET", "/v1.0/applications?$count=true", nil).expect(t, 200)
		if _, ok := r.doc["@odata.count"]; ok {
			t.Error("@odata.count without ConsistencyLevel")
		}
		all := len(r.values())
		r = e.callWith(tok, "GET", "/v1.0/applications?$count=true&$top=1", nil, advancedHeader).expect(t, 200)
		if r.doc["@odata.count"] != float64(all) || len(r.values()) != 1 || !strings.Contains(r.str("@odata.nextLink"), "count=true") {
			t.Errorf("$count=true&$top=1: %s", r.raw)
		}
		e.call(tok, "GET", "/v1.0/applications?$count=maybe", nil).expect(t, 400, "Request_BadRequest")

		// The $count segment.
		c := e.call(tok, "GET", "/v1.0/applications/$count", nil).expect(t, 400, "Request_BadRequest")
		if c.errorMessage() != "$count is not currently supported." {
			t.Errorf("$count segment without header: %q", c.errorMessage())
		}
		c = e.callWith(tok, "GET", "/v1.0/applications/$count?$filter="+url.QueryEscape("startswith(displayName,'bill')"), nil, advancedHeader).expect(t, 200)
		if string(c.raw) != "2" || !strings.HasPrefix(c.header.Get("Content-Type"), "text/plain") {
			t.Errorf("$count segment: %q %s", c.raw, c.header.Get("Content-Type"))
		}

		// $search: ConsistencyLevel required, tokens matched by prefix.
		s := e.call(tok, "GET", "/v1.0/applications?$search="+url.QueryEscape(`"displayName:reports"`), nil).expect(t, 400, "Request_UnsupportedQuery")
		if !strings.Contains(s.errorMessage(), "ConsistencyLevel: eventual") {
			t.Errorf("$search message %q", s.errorMessage())
		}
		s = e.callWith(tok, "GET", "/v1.0/applications?$search="+url.QueryEscape(`"displayName:repo"`), nil, advancedHeader).expect(t, 200)
		if got := names(s); !slices.Equal(got, []string{"Billing Reports"}) {
			t.Errorf("$search: %v", got)
		}
		e.callWith(tok, "GET", "/v1.0/applications?$search="+url.QueryEscape(`"appId:x"`), nil, advancedHeader).expect(t, 400, "Request_UnsupportedQuery")
		e.callWith(tok, "GET", "/v1.0/applications?$search=orders", nil, advancedHeader).expect(t, 400, "Request_BadRequest")

		// Service principals: the forms az and PowerShell send.
		sps := map[string][]string{
			"servicePrincipalNames/any(c:c eq '" + ordersApp + "')":                                 {"orders"},
			"servicePrincipalNames/any(c:c eq 'API://contoso.onmicrosoft.com/orders')":              {"orders"},
			"appId eq '" + billingApp + "' and accountEnabled eq true":                              {"billing"},
			"appOwnerOrganizationId eq " + e.contoso.Tenant.ID + " and startswith(displayName,'b')": {"billing"},
			"servicePrincipalType eq 'Application' and displayName in ('orders','x')":               {"orders"},
			"appRoleAssignmentRequired eq true":                                                     nil,
		}
		for f, want := range sps {
			if got := names(list("/v1.0/servicePrincipals", f, nil).expect(t, 200)); !slices.Equal(got, want) {
				t.Errorf("servicePrincipals $filter=%s: %v, want %v", f, got, want)
			}
		}
		list("/v1.0/servicePrincipals", "appOwnerOrganizationId eq '"+e.contoso.Tenant.ID+"'", nil).expect(t, 400, "BadRequest")
		list("/v1.0/servicePrincipals", "servicePrincipalNames eq 'x'", nil).expect(t, 400, "Request_UnsupportedQuery")

		// Users: userPrincipalName, and endsWith only as an advanced query.
		for _, n := range []string{"ada", "bob"} {
			e.call(tok, "POST", "/v1.0/users", newUserBody(n, e.contoso)).expect(t, 201)
		}
		users := map[string][]string{
			"userPrincipalName eq 'ADA@contoso.onmicrosoft.com'":               {"ada"},
			"startswith(userPrincipalName,'b') or startswith(displayName,'a')": {"ada", "bob"},
			"accountEnabled eq true and mailNickname in ('ada','bob')":         {"ada", "bob"},
		}
		for f, want := range users {
			if got := names(list("/v1.0/users", f, nil).expect(t, 200)); !slices.Equal(got, want) {
				t.Errorf("users $filter=%s: %v, want %v", f, got, want)
			}
		}
		ends := "endswith(userPrincipalName,'@contoso.onmicrosoft.com') and startswith(displayName,'b')"
		if r := list("/v1.0/users", ends, nil).expect(t, 400, "Request_UnsupportedQuery"); !strings.HasPrefix(r.errorMessage(), "Operator 'endsWith' is not supported") {
			t.Errorf("endsWith message %q", r.errorMessage())
		}
		if got := names(list("/v1.0/users", ends, advancedHeader, "$count=true").expect(t, 200)); !slices.Equal(got, []string{"bob"}) {
			t.Errorf("endsWith: %v", got)
		}
		list("/v1.0/users", "endswith(displayName,'a')", advancedHeader, "$count=true").expect(t, 400, "Request_UnsupportedQuery")

		// Groups.
		e.call(tok, "POST", "/v1.0/groups", map[string]any{"displayName": "ops", "mailEnabled": false, "mailNickname": "ops", "securityEnabled": true}).expect(t, 201)
		for f, want := range map[string][]string{
			"securityEnabled eq true and displayName eq 'ops'": {"ops"},
			"mailNickname in ('ops') and mailEnabled eq false": {"ops"},
			"groupTypes/any(g:g eq 'Unified')":                 nil,
		} {
			if got := names(list("/v1.0/groups", f, nil).expect(t, 200)); !slices.Equal(got, want) {
				t.Errorf("groups $filter=%s: %v, want %v", f, got, want)
			}
		}
		list("/v1.0/groups", "createdDateTime ge 2021-11-01", advancedHeader, "$count=true").expect(t, 400, "Request_UnsupportedQuery")
	})
}

// TestFilterPagingOwnedOnly: a filter evaluated after the store read still
// pages correctly, and an owned-only caller sees only what it owns.
func TestFilterPaging(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		var want []string
		for i := range 7 {
			tags := []string{"other"}
			if i%2 == 0 {
				tags = []string{"even"}
			}
			id := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "p" + string(rune('a'+i)), "tags": tags}).expect(t, 201).str("id")
			if i%2 == 0 {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		var seen []string
		next := "/v1.0/applications?$filter=" + url.QueryEscape("tags/any(t:t eq 'even')") + "&$top=1"
		for pages := 0; next != ""; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			r := e.call(tok, "GET", next, nil).expect(t, 200)
			seen = append(seen, r.ids()...)
			next = r.str("@odata.nextLink")
		}
		if !slices.Equal(seen, want) {
			t.Fatalf("paged %v, want %v", seen, want)
		}
	})
}
