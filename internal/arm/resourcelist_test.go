package arm_test

import (
	"net/url"
	"slices"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
)

// TestResourceList: Resources - List and List By Resource Group (what
// `az resource list` and `az keyvault show -n` without -g call) return the
// tracked resources — not queues or other child resources — that the
// caller may read, filtered by the $filter forms Azure documents, paged
// with an absolute nextLink; other filters are InvalidFilterInQueryString.
func TestResourceList(t *testing.T) {
	forEachStorePaged(t, 2, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		tid := e.contoso.Tenant.ID
		app, data := sub(e)+"/resourceGroups/app", sub(e)+"/resourceGroups/data"
		for _, rg := range []string{app, data} {
			e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		}
		nsBodyTagged := nsBody()
		nsBodyTagged["tags"] = map[string]string{"env": "test"}
		e.want(e.call(admin, "PUT", app+"/providers/Microsoft.ServiceBus/namespaces/sb-app-one", nsBodyTagged), 201, "")
		e.want(e.call(admin, "PUT", app+"/providers/Microsoft.ServiceBus/namespaces/sb-app-one/queues/orders", map[string]any{}), 200, "")
		e.want(e.call(admin, "PUT", app+"/providers/Microsoft.KeyVault/vaults/kv-app-one", map[string]any{"location": "westeurope",
			"properties": map[string]any{"tenantId": tid, "sku": map[string]any{"family": "A", "name": "standard"}}}), 201, "")
		e.want(e.call(admin, "PUT", data+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-data", map[string]any{"location": "eastus"}), 201, "")
		// An identity made through the operator API has no resource record;
		// it is listed all the same.
		_, err := e.dir.CreateUserAssignedIdentity(e.ctx, tid, "data", "id-operator")
		must(t, err)

		list := func(tok, path string) []string {
			t.Helper()
			names, _ := e.pageAll(tok, path)
			return names
		}
		want := func(got []string, want ...string) {
			t.Helper()
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		}
		q := func(filter string) string { return "?api-version=2021-04-01&$filter=" + url.QueryEscape(filter) }

		// Sorted by id, two a page.
		all, pages := e.pageAll(admin, sub(e)+"/resources?api-version=2021-04-01")
		want(all, "kv-app-one", "sb-app-one", "id-data", "id-operator")
		if pages != 2 {
			t.Errorf("%d pages, want 2", pages)
		}
		want(list(admin, data+"/resources?api-version=2021-04-01"), "id-data", "id-operator")
		want(list(admin, sub(e)+"/resources?api-version=2021-04-01&$filter="), "kv-app-one", "sb-app-one", "id-data", "id-operator")

		for filter, names := range map[string][]string{
			"resourceType eq 'Microsoft.KeyVault/vaults'":                              {"kv-app-one"},
			"resourceType eq 'microsoft.keyvault/VAULTS' and name eq 'KV-APP-ONE'":     {"kv-app-one"},
			"resourceType ne 'Microsoft.ManagedIdentity/userAssignedIdentities'":       {"kv-app-one", "sb-app-one"},
			"resourceGroup eq 'DATA'":                                                  {"id-data", "id-operator"},
			"location eq 'East US'":                                                    {"id-data"},
			"substringof('app', name)":                                                 {"kv-app-one", "sb-app-one"},
			"substringof('one', name) and resourceType eq 'Microsoft.KeyVault/vaults'": {"kv-app-one"},
			"name eq 'id-data' or name eq 'sb-app-one'":                                {"sb-app-one", "id-data"},
			"tagName eq 'env'":                                                         {"sb-app-one"},
			"tagName eq 'ENV' and tagValue eq 'test'":                                  {"sb-app-one"},
			"tagName eq 'env' and tagValue eq 'TEST'":                                  nil,
			"startswith(tagName, 'en')":                                                {"sb-app-one"},
			"name eq 'it''s'":                                                          nil,
		} {
			if got := list(admin, sub(e)+"/resources"+q(filter)); !slices.Equal(got, names) {
				t.Errorf("$filter=%s: %q, want %q", filter, got, names)
			}
		}

		// A tag filter answers without the resources' tags; $expand adds
		// the times and the provisioning state.
		r := e.call(admin, "GET", sub(e)+"/resources?$filter="+url.QueryEscape("tagName eq 'env'"), nil)
		if v, _ := r.doc["value"].([]any); len(v) != 1 || v[0].(map[string]any)["tags"] != nil {
			t.Errorf("tag filter: %s", r.raw)
		}
		r = e.call(admin, "GET", app+"/resources?$filter="+url.QueryEscape("name eq 'sb-app-one'"), nil)
		v, _ := r.doc["value"].([]any)
		if len(v) != 1 {
			t.Fatalf("namespace: %s", r.raw)
		}
		ns := v[0].(map[string]any)
		tags, _ := ns["tags"].(map[string]any)
		sku, _ := ns["sku"].(map[string]any)
		if ns["id"] != app+"/providers/Microsoft.ServiceBus/namespaces/sb-app-one" || ns["type"] != "Microsoft.ServiceBus/namespaces" ||
			ns["location"] != "westeurope" || tags["env"] != "test" || sku["name"] != "Standard" || ns["createdTime"] != nil || ns["properties"] != nil {
			t.Errorf("namespace: %s", r.raw)
		}
		r = e.call(admin, "GET", app+"/resources?$expand=createdTime,changedTime,provisioningState", nil)
		for _, it := range r.doc["value"].([]any) {
			m := it.(map[string]any)
			if m["createdTime"] == nil || m["changedTime"] == nil || m["provisioningState"] != "Succeeded" {
				t.Errorf("expanded: %s", r.raw)
			}
		}

		for _, bad := range []string{
			"plan eq 'x'", "identity/principalId eq 'x'", "name eq x", "name eq 'x' and", "name gt 'a'", "name eq 'open",
			"substringof('a', location)", "startswith(name, 'a')", "tagName eq 'a' and name eq 'b'", "tagValue eq 'v'",
			"tagName ne 'a'", "(name eq 'a')", "name eq 'a' 'b'", "name eq 'a' xor name eq 'b'",
		} {
			e.want(e.call(admin, "GET", sub(e)+"/resources?$filter="+url.QueryEscape(bad), nil), 400, "InvalidFilterInQueryString")
		}

		// A principal with Reader on one group sees that group's
		// resources, in either list; another tenant sees nothing.
		reader := e.newApp(tid, "reader", false)
		e.want(e.call(admin, "PUT", assignmentPath(data), assignBody(rbac.RoleReader, reader.sp.ID)), 201, "")
		rtok := e.armToken(tid, reader.app.AppID, reader.secret)
		want(list(rtok, sub(e)+"/resources?api-version=2021-04-01"), "id-data", "id-operator")
		want(list(rtok, app+"/resources?api-version=2021-04-01"))
		nobody := e.newApp(tid, "nobody", false)
		want(list(e.armToken(tid, nobody.app.AppID, nobody.secret), sub(e)+"/resources?api-version=2021-04-01"))
		e.want(e.call(e.adminToken(e.fabrikam), "GET", sub(e)+"/resources", nil), 401, "InvalidAuthenticationTokenTenant")

		e.want(e.call(admin, "GET", sub(e)+"/resourceGroups/nosuch/resources", nil), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "POST", sub(e)+"/resources", nil), 405, "MethodNotAllowed")
		e.want(e.call(admin, "GET", sub(e)+"/resources?$top=0", nil), 400, "InvalidQueryParameterValue")
	})
}
