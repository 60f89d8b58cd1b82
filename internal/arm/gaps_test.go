package arm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
)

// assignBody is the body of a role assignment PUT.
func assignBody(role, principal string) map[string]any {
	return map[string]any{"properties": map[string]any{"roleDefinitionId": role, "principalId": principal}}
}

func assignmentPath(scope string) string {
	return scope + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.NewString()
}

// subscriptionIDs lists GET /subscriptions as the token's holder sees it.
func (e *env) subscriptionIDs(tok string) []string {
	e.t.Helper()
	r := e.call(tok, "GET", "/subscriptions", nil)
	e.want(r, 200, "")
	var out []string
	vs, _ := r.doc["value"].([]any)
	for _, v := range vs {
		out = append(out, v.(map[string]any)["subscriptionId"].(string))
	}
	return out
}

// TestSubscriptionVisibility: as in Azure, a principal with any role
// assignment at or below a subscription (directly or through a group)
// sees the subscription in GET /subscriptions and may GET it, without
// being able to read anything else in it; a principal with none sees
// nothing.
func TestSubscriptionVisibility(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid, subID := e.contoso.Tenant.ID, e.contoso.Tenant.SubscriptionID
		rg := sub(e) + "/resourceGroups/vis"
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-vis"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		e.want(e.call(admin, "PUT", vid, vaultBody(tid, nil)), 201, "")

		nobody := e.newApp(tid, "nobody", false)
		nobodyTok := e.armToken(tid, nobody.app.AppID, nobody.secret)
		if got := e.subscriptionIDs(nobodyTok); len(got) != 0 {
			t.Errorf("no assignment: sees %v", got)
		}
		e.want(e.call(nobodyTok, "GET", sub(e), nil), 403, "AuthorizationFailed")

		// A data role on one vault.
		kvUser := e.newApp(tid, "kv user", false)
		e.want(e.call(admin, "PUT", assignmentPath(vid), assignBody(rbac.RoleKeyVaultSecretsUser, kvUser.sp.ID)), 201, "")
		kvTok := e.armToken(tid, kvUser.app.AppID, kvUser.secret)
		if got := e.subscriptionIDs(kvTok); !slices.Equal(got, []string{subID}) {
			t.Errorf("Key Vault Secrets User on a vault: sees %v, want [%s]", got, subID)
		}
		e.want(e.call(kvTok, "GET", sub(e), nil), 200, "")
		e.want(e.call(kvTok, "GET", rg, nil), 403, "AuthorizationFailed")
		e.want(e.call(kvTok, "GET", vid, nil), 403, "AuthorizationFailed")

		// Reader on a group, through a group membership.
		member := e.newApp(tid, "member", false)
		g, err := e.dir.CreateGroup(e.ctx, tid, directory.Group{DisplayName: "readers", MailNickname: "readers", SecurityEnabled: true})
		must(t, err)
		must(t, e.dir.AddMember(e.ctx, tid, g.ID, member.sp.ID))
		e.want(e.call(admin, "PUT", assignmentPath(rg), assignBody(rbac.RoleReader, g.ID)), 201, "")
		memberTok := e.armToken(tid, member.app.AppID, member.secret)
		if got := e.subscriptionIDs(memberTok); !slices.Equal(got, []string{subID}) {
			t.Errorf("Reader on a group through a group: sees %v", got)
		}
		e.want(e.call(memberTok, "GET", sub(e), nil), 200, "")

		// An assignment in another tenant's subscription shows nothing here.
		fab := e.adminToken(e.fabrikam)
		if got := e.subscriptionIDs(fab); !slices.Equal(got, []string{e.fabrikam.Tenant.SubscriptionID}) {
			t.Errorf("fabrikam's admin sees %v", got)
		}
		// Removing the assignment hides it on the next request.
		r := e.call(admin, "GET", vid+"/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()", nil)
		vs, _ := r.doc["value"].([]any)
		for _, v := range vs {
			m := v.(map[string]any)
			if m["properties"].(map[string]any)["principalId"] == kvUser.sp.ID {
				e.want(e.call(admin, "DELETE", m["id"].(string), nil), 200, "")
			}
		}
		if got := e.subscriptionIDs(kvTok); len(got) != 0 {
			t.Errorf("after the assignment went: sees %v", got)
		}
	})
}

// TestCustomRoleAssignableScopes: a custom role is assignable only at or
// below its assignable scopes (RoleAssignmentScopeNotAssignableToRoleDefinition
// otherwise, as ARM answers); built-in roles everywhere; assignable scopes
// must be in the tenant's own subscriptions, and the caller must be
// allowed to write role definitions at each of them.
func TestCustomRoleAssignableScopes(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		rg1, rg2 := sub(e)+"/resourceGroups/one", sub(e)+"/resourceGroups/two"
		for _, rg := range []string{rg1, rg2} {
			e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		}
		roleID := uuid.NewString()
		def := func(scopes ...string) map[string]any {
			return map[string]any{"properties": map[string]any{"roleName": "Group One Reader", "type": "CustomRole",
				"permissions":      []any{map[string]any{"actions": []string{"Microsoft.Resources/subscriptions/resourceGroups/read"}}},
				"assignableScopes": scopes}}
		}
		e.want(e.call(admin, "PUT", rg1+"/providers/Microsoft.Authorization/roleDefinitions/"+roleID, def(rg1)), 201, "")
		user := e.newApp(tid, "user", false)

		e.want(e.call(admin, "PUT", assignmentPath(rg1), assignBody(roleID, user.sp.ID)), 201, "")
		e.want(e.call(admin, "PUT", assignmentPath(strings.ToUpper(rg1)+"/providers/Microsoft.KeyVault/vaults/kv1"), assignBody(roleID, user.sp.ID)), 201, "")
		for _, scope := range []string{rg2, sub(e), rg1 + "x"} {
			r := e.call(admin, "PUT", assignmentPath(scope), assignBody(roleID, user.sp.ID))
			e.want(r, 400, "RoleAssignmentScopeNotAssignableToRoleDefinition")
			if want := "The role Group One Reader is not available for assignment at the requested scope."; r.message() != want {
				t.Errorf("message %q, want %q", r.message(), want)
			}
		}
		// Widened to the subscription, it is assignable everywhere in it.
		e.want(e.call(admin, "PUT", rg1+"/providers/Microsoft.Authorization/roleDefinitions/"+roleID, def(rg1, sub(e))), 201, "")
		e.want(e.call(admin, "PUT", assignmentPath(rg2), assignBody(roleID, user.sp.ID)), 201, "")
		// Built-in roles are assignable at any scope.
		e.want(e.call(admin, "PUT", assignmentPath(rg2), assignBody(rbac.RoleReader, user.sp.ID)), 201, "")

		// Assignable scopes lie in the tenant's own subscriptions.
		fsub := "/subscriptions/" + e.fabrikam.Tenant.SubscriptionID
		for _, scope := range []string{fsub, "/subscriptions/" + uuid.NewString(), "/"} {
			e.want(e.call(admin, "PUT", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+uuid.NewString(),
				map[string]any{"properties": map[string]any{"roleName": "r " + scope, "assignableScopes": []string{sub(e), scope}}}), 400, "InvalidAssignableScope")
		}
		// The caller must be allowed to write role definitions at every assignable scope.
		owner1 := e.newApp(tid, "owner of one", false)
		e.want(e.call(admin, "PUT", assignmentPath(rg1), assignBody(rbac.RoleOwner, owner1.sp.ID)), 201, "")
		o1 := e.armToken(tid, owner1.app.AppID, owner1.secret)
		e.want(e.call(o1, "PUT", rg1+"/providers/Microsoft.Authorization/roleDefinitions/"+uuid.NewString(),
			map[string]any{"properties": map[string]any{"roleName": "mine", "assignableScopes": []string{rg1}}}), 201, "")
		e.want(e.call(o1, "PUT", rg1+"/providers/Microsoft.Authorization/roleDefinitions/"+uuid.NewString(),
			map[string]any{"properties": map[string]any{"roleName": "too wide", "assignableScopes": []string{rg1, rg2}}}), 403, "AuthorizationFailed")
	})
}

// listPage is one page of an ARM list, as the SDKs' generated clients
// read it.
type listPage struct {
	Value    []map[string]any `json:"value"`
	NextLink *string          `json:"nextLink"`
}

// pageAll lists path with azcore's pager, following nextLink as the
// generated ARM clients do (runtime.NewPager over an azcore pipeline), and
// returns the names of every item and the number of pages.
func (e *env) pageAll(tok, path string) (names []string, pages int) {
	e.t.Helper()
	pl := runtime.NewPipeline("armtest", "v0.0.0", runtime.PipelineOptions{}, &policy.ClientOptions{Transport: e.client})
	pager := runtime.NewPager(runtime.PagingHandler[listPage]{
		More: func(p listPage) bool { return p.NextLink != nil && *p.NextLink != "" },
		Fetcher: func(ctx context.Context, cur *listPage) (listPage, error) {
			u := armBase + path
			if cur != nil {
				u = *cur.NextLink
				if !strings.HasPrefix(u, armBase+"/") {
					return listPage{}, fmt.Errorf("nextLink %q is not an absolute management.azure.com URL", u)
				}
			}
			req, err := runtime.NewRequest(ctx, http.MethodGet, u)
			if err != nil {
				return listPage{}, err
			}
			req.Raw().Header.Set("Authorization", "Bearer "+tok)
			resp, err := pl.Do(req)
			if err != nil {
				return listPage{}, err
			}
			if !runtime.HasStatusCode(resp, http.StatusOK) {
				return listPage{}, runtime.NewResponseError(resp)
			}
			var p listPage
			return p, runtime.UnmarshalAsJSON(resp, &p)
		},
	})
	for pager.More() {
		p, err := pager.NextPage(e.ctx)
		must(e.t, err)
		pages++
		for _, v := range p.Value {
			names = append(names, v["name"].(string))
		}
		if pages > 100 {
			e.t.Fatalf("%s: more than 100 pages", path)
		}
	}
	return names, pages
}

// TestListPaging: lists page at the configured size (ARM's is 1000) with
// an absolute nextLink that azcore's pager follows to the end, $top where
// ARM takes it, each item once, and filters kept across pages.
func TestListPaging(t *testing.T) {
	forEachStorePaged(t, 2, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		const api, groupAPI, vaultAPI = "api-version=2022-04-01", "api-version=2021-04-01", "api-version=2023-07-01"
		var groups []string
		for i := range 5 {
			name := fmt.Sprintf("RG-%d", i)
			groups = append(groups, name)
			e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/"+name, map[string]any{"location": "westeurope"}), 201, "")
		}

		// Resource groups: 5 in pages of 2.
		names, pages := e.pageAll(admin, sub(e)+"/resourceGroups?"+groupAPI)
		if !slices.Equal(names, groups) || pages != 3 {
			t.Errorf("resource groups %v in %d pages, want %v in 3", names, pages, groups)
		}
		r := e.call(admin, "GET", sub(e)+"/resourceGroups", nil)
		next, _ := r.doc["nextLink"].(string)
		if u, err := url.Parse(next); err != nil || u.Scheme != "https" || u.Host != "management.azure.com" || u.Query().Get("api-version") != "2021-04-01" || u.Query().Get("$skiptoken") == "" {
			t.Errorf("nextLink %q", next)
		}
		// $top=1: pages of one.
		names, pages = e.pageAll(admin, sub(e)+"/resourceGroups?$top=1&"+groupAPI)
		if len(names) != 5 || pages != 5 {
			t.Errorf("$top=1: %v in %d pages", names, pages)
		}
		e.want(e.call(admin, "GET", sub(e)+"/resourceGroups?$top=0", nil), 400, "InvalidQueryParameterValue")
		e.want(e.call(admin, "GET", sub(e)+"/resourceGroups?$skiptoken=%25%25", nil), 400, "InvalidSkipToken")

		// Resources by type: vaults of the subscription.
		var vaults []string
		for i := range 3 {
			name := fmt.Sprintf("kv-page-%d", i)
			vaults = append(vaults, name)
			e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/RG-1/providers/Microsoft.KeyVault/vaults/"+name, vaultBody(tid, nil)), 201, "")
		}
		names, pages = e.pageAll(admin, sub(e)+"/providers/Microsoft.KeyVault/vaults?"+vaultAPI)
		if !slices.Equal(names, vaults) || pages != 2 {
			t.Errorf("vaults %v in %d pages", names, pages)
		}

		// Role assignments: the admin's Owner and five more, and filters
		// across pages.
		p := e.newApp(tid, "paged", false)
		g, err := e.dir.CreateGroup(e.ctx, tid, directory.Group{DisplayName: "g", MailNickname: "g", SecurityEnabled: true})
		must(t, err)
		must(t, e.dir.AddMember(e.ctx, tid, g.ID, p.sp.ID))
		for _, name := range groups[:3] {
			e.want(e.call(admin, "PUT", assignmentPath(sub(e)+"/resourceGroups/"+name), assignBody(rbac.RoleReader, p.sp.ID)), 201, "")
		}
		for _, name := range groups[3:] {
			e.want(e.call(admin, "PUT", assignmentPath(sub(e)+"/resourceGroups/"+name), assignBody(rbac.RoleReader, g.ID)), 201, "")
		}
		names, pages = e.pageAll(admin, sub(e)+"/providers/Microsoft.Authorization/roleAssignments?"+api)
		if len(names) != 6 || pages != 3 || !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != 6 {
			t.Errorf("role assignments %v in %d pages, want 6 sorted in 3", names, pages)
		}
		names, _ = e.pageAll(admin, sub(e)+"/providers/Microsoft.Authorization/roleAssignments?$filter="+url.QueryEscape("principalId eq '"+p.sp.ID+"'")+"&"+api)
		if len(names) != 3 {
			t.Errorf("principalId filter: %d assignments, want 3", len(names))
		}
		names, _ = e.pageAll(admin, sub(e)+"/providers/Microsoft.Authorization/roleAssignments?$filter="+url.QueryEscape("assignedTo('"+p.sp.ID+"')")+"&"+api)
		if len(names) != 5 {
			t.Errorf("assignedTo filter: %d assignments, want 5 (3 direct, 2 through the group)", len(names))
		}
		names, _ = e.pageAll(admin, sub(e)+"/resourceGroups/RG-4/providers/Microsoft.Authorization/roleAssignments?$filter="+url.QueryEscape("atScope() and assignedTo('"+p.sp.ID+"')")+"&"+api)
		if len(names) != 1 {
			t.Errorf("atScope() and assignedTo at RG-4: %d assignments, want 1", len(names))
		}
		e.want(e.call(admin, "GET", sub(e)+"/providers/Microsoft.Authorization/roleAssignments?$filter="+url.QueryEscape("assignedTo('x')"), nil), 400, "InvalidFilterInQueryString")
		e.want(e.call(admin, "GET", sub(e)+"/providers/Microsoft.Authorization/roleAssignments?$filter="+url.QueryEscape("assignedTo('"+p.sp.ID+"') and principalId eq '"+p.sp.ID+"'"), nil), 400, "InvalidFilterInQueryString")

		// Role definitions: every built-in role, each once.
		names, pages = e.pageAll(admin, sub(e)+"/providers/Microsoft.Authorization/roleDefinitions?"+api)
		if len(names) != len(rbac.BuiltInRoles()) || pages != (len(names)+1)/2 || !slices.IsSorted(names) {
			t.Errorf("role definitions: %d in %d pages, want %d", len(names), pages, len(rbac.BuiltInRoles()))
		}
	})
}

// TestErrorMessagesKeepQuotes: client text quoted in an error message
// keeps its quotes and backslashes, as Azure's messages do (the JSON
// encoding escapes them); only what is not printable is replaced.
func TestErrorMessagesKeepQuotes(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		location := `west"eu\rope` + strings.Repeat("x", 60)
		r := e.call(admin, "PUT", sub(e)+"/resourceGroups/quoted", map[string]any{"location": location})
		e.want(r, 400, "LocationNotAvailableForResourceGroup")
		if !strings.Contains(r.message(), `'west"eu\rope`) {
			t.Errorf("message %q lost the quote or the backslash", r.message())
		}
	})
}

// TestLeadingDoubleSlash: an id joined to a base URL ending in '/'
// ("//subscriptions/…") names the same resource, as Resource Manager
// takes it; three slashes do not.
func TestLeadingDoubleSlash(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/slashes"
		e.want(e.call(admin, "PUT", "/"+rg, map[string]any{"location": "westeurope"}), 201, "")
		r := e.call(admin, "GET", "/"+rg, nil)
		e.want(r, 200, "")
		if r.doc["id"] != rg {
			t.Errorf("id %v, want %s", r.doc["id"], rg)
		}
		if r := e.call(admin, "GET", "//"+rg, nil); r.status == 200 {
			t.Errorf("///subscriptions answered 200")
		}
	})
}
