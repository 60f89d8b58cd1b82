package graph_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestOrderBy: $orderby on displayName (and a user's userPrincipalName)
// sorts without regard to case, ascending or descending, and pages in that
// order; it needs the advanced query parameters where Graph's table says
// so (applications, service principals, and any sort with $filter or
// $search), and every other sort is Request_UnsupportedQuery.
func TestOrderBy(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tok := e.adminToken(e.contoso)
		for _, name := range []string{"beta", "Alpha", "gamma", "alpha 2", "Beta"} {
			appID := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": name}).expect(t, 201).str("appId")
			e.call(tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": appID}).expect(t, 201)
			e.call(tok, "POST", "/v1.0/groups", map[string]any{"displayName": name, "mailEnabled": false,
				"mailNickname": strings.ReplaceAll(name, " ", ""), "securityEnabled": true}).expect(t, 201)
		}
		names := func(r response) []string {
			var out []string
			for _, v := range r.values() {
				out = append(out, v["displayName"].(string))
			}
			return out
		}
		// all follows the nextLinks of a sorted list and returns its names
		// and how many pages it took.
		all := func(path string, header http.Header) ([]string, int) {
			t.Helper()
			var out []string
			pages := 0
			for path != "" {
				r := e.callWith(tok, "GET", path, nil, header).expect(t, 200)
				out = append(out, names(r)...)
				path = r.str("@odata.nextLink")
				if pages++; pages > 20 {
					t.Fatalf("more than 20 pages")
				}
			}
			return out, pages
		}
		sortedFold := func(s []string, desc bool) bool {
			return slices.IsSortedFunc(s, func(a, b string) int {
				c := strings.Compare(strings.ToLower(a), strings.ToLower(b))
				if desc {
					return -c
				}
				return c
			})
		}
		mine := func(s []string) []string {
			return slices.DeleteFunc(slices.Clone(s), func(n string) bool {
				return !slices.Contains([]string{"beta", "Alpha", "gamma", "alpha 2", "Beta"}, n)
			})
		}

		// Applications and service principals: advanced queries only.
		for _, set := range []string{"applications", "servicePrincipals"} {
			r := e.call(tok, "GET", "/v1.0/"+set+"?$orderby=displayName", nil).expect(t, 400, "Request_UnsupportedQuery")
			if r.errorMessage() != "Sorting not supported for current query." {
				t.Errorf("%s: %q", set, r.errorMessage())
			}
			e.callWith(tok, "GET", "/v1.0/"+set+"?$orderby=displayName", nil, advancedHeader).expect(t, 400, "Request_UnsupportedQuery")
			whole := names(e.callWith(tok, "GET", "/v1.0/"+set+"?$orderby=displayName&$count=true", nil, advancedHeader).expect(t, 200))
			if !sortedFold(whole, false) || len(mine(whole)) != 5 {
				t.Errorf("%s by displayName: %q", set, whole)
			}
			paged, pages := all("/v1.0/"+set+"?$orderby=displayName&$count=true&$top=2", advancedHeader)
			if !slices.Equal(paged, whole) || pages < 3 {
				t.Errorf("%s paged by 2 (%d pages): %q, want %q", set, pages, paged, whole)
			}
			desc, _ := all("/v1.0/"+set+"?$orderby=displayName%20desc&$count=true&$top=3", advancedHeader)
			// Descending is ascending reversed: equal names keep their ids' order, reversed too.
			rev := slices.Clone(whole)
			slices.Reverse(rev)
			if !slices.Equal(desc, rev) {
				t.Errorf("%s by displayName desc: %q", set, desc)
			}
		}
		// With a filter, advanced too: then it sorts what matches.
		f := "&$filter=" + url.QueryEscape("startswith(displayName,'a')")
		e.call(tok, "GET", "/v1.0/applications?$orderby=displayName"+f, nil).expect(t, 400, "Request_UnsupportedQuery")
		if got := names(e.callWith(tok, "GET", "/v1.0/applications?$orderby=displayName&$count=true"+f, nil, advancedHeader).expect(t, 200)); !slices.Equal(got, []string{"Alpha", "alpha 2"}) {
			t.Errorf("filtered and sorted: %q", got)
		}
		// @odata.count is every match, not the page's, on any page.
		for _, q := range []string{"", "&$top=1"} {
			r := e.callWith(tok, "GET", "/v1.0/applications?$orderby=displayName%20desc&$count=true"+q+f, nil, advancedHeader).expect(t, 200)
			if r.doc["@odata.count"] != float64(2) {
				t.Errorf("filtered and sorted%s: @odata.count %v", q, r.doc["@odata.count"])
			}
			if next, _ := r.doc["@odata.nextLink"].(string); next != "" {
				u, _ := url.Parse(next)
				r = e.callWith(tok, "GET", u.RequestURI(), nil, advancedHeader).expect(t, 200)
				if r.doc["@odata.count"] != float64(2) || len(r.values()) != 1 {
					t.Errorf("second page: @odata.count %v, %d items", r.doc["@odata.count"], len(r.values()))
				}
			}
		}

		// Groups and users: by default.
		groups, _ := all("/v1.0/groups?$orderby=displayName&$top=2", nil)
		if want := []string{"Alpha", "alpha 2", "beta", "Beta", "gamma"}; !sortedFold(groups, false) || len(groups) != 5 ||
			!slices.Equal([]string{strings.ToLower(groups[2]), strings.ToLower(groups[3])}, []string{"beta", "beta"}) {
			t.Errorf("groups by displayName: %q, want the order of %q", groups, want)
		}
		e.call(tok, "GET", "/v1.0/groups?$orderby=displayName"+f, nil).expect(t, 400, "Request_UnsupportedQuery")
		e.call(tok, "GET", "/v1.0/groups?$orderby=displayName&$search=%22displayName:a%22", nil).expect(t, 400, "Request_UnsupportedQuery")
		for _, u := range []string{"zoe", "Adam", "mia"} {
			e.call(tok, "POST", "/v1.0/users", map[string]any{"accountEnabled": true, "displayName": u, "mailNickname": u,
				"userPrincipalName": u + "@contoso.onmicrosoft.com", "passwordProfile": map[string]any{"password": "Str0ng-and-long-enough!"}}).expect(t, 201)
		}
		r := e.call(tok, "GET", "/v1.0/users?$orderby=userPrincipalName%20DESC", nil).expect(t, 200)
		var upns []string
		for _, v := range r.values() {
			upns = append(upns, v["userPrincipalName"].(string))
		}
		if !sortedFold(upns, true) || len(upns) < 3 {
			t.Errorf("users by userPrincipalName desc: %q", upns)
		}

		// Every other sort is refused; a token of an unsorted list does
		// not resume a sorted one.
		for _, q := range []string{"createdDateTime", "appId", "displayName sideways", "displayName,appId", "displayName asc desc", ""} {
			e.callWith(tok, "GET", "/v1.0/applications?$count=true&$orderby="+url.QueryEscape(q), nil, advancedHeader).expect(t, 400, "Request_UnsupportedQuery")
		}
		e.call(tok, "GET", "/v1.0/oauth2PermissionGrants?$orderby=displayName", nil).expect(t, 400, "Request_UnsupportedQuery")
		next := e.call(tok, "GET", "/v1.0/groups?$top=1", nil).expect(t, 200).str("@odata.nextLink")
		u, err := url.Parse(next)
		must(t, err)
		e.call(tok, "GET", "/v1.0/groups?$orderby=displayName&$skiptoken="+url.QueryEscape(u.Query().Get("$skiptoken")), nil).expect(t, 400, "Request_BadRequest")
	})
}
