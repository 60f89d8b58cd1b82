package arm_test

import (
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
)

// tagsOf is the SDK's tag map as plain strings.
func tagsOf(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = *v
	}
	return out
}

func ptrTags(m map[string]string) map[string]*string {
	out := map[string]*string{}
	for k, v := range m {
		out[k] = to.Ptr(v)
	}
	return out
}

// TestTagsSDK: the Tags API through armresources' TagsClient, unmodified,
// on a resource group and a vault: create-or-replace, merge, replace,
// delete by name and by name and value, delete all; the resource's own GET
// shows what the Tags API wrote; tagNames counts them; Azure's limits and
// the caller's rights are enforced.
func TestTagsSDK(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		subID := e.contoso.Tenant.SubscriptionID
		tid := e.contoso.Tenant.ID
		admin := e.adminToken(e.contoso)
		cred := e.credential(tid, e.contoso.Admin.AppID, e.contoso.AdminSecret.SecretText)
		tags, err := armresources.NewTagsClient(subID, cred, e.armOptions())
		must(t, err)

		rg := sub(e) + "/resourceGroups/tagged"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope", "tags": map[string]string{"env": "dev"}}), 201, "")
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-tagged-1"
		e.want(e.call(admin, "PUT", vid, vaultBody(tid, nil)), 201, "")

		check := func(scope string, want map[string]string) {
			t.Helper()
			got, err := tags.GetAtScope(ctx, scope, nil)
			must(t, err)
			if *got.ID != scope+"/providers/Microsoft.Resources/tags/default" || *got.Name != "default" || *got.Type != "Microsoft.Resources/tags" {
				t.Fatalf("tags resource %s %s %s", *got.ID, *got.Name, *got.Type)
			}
			if g := tagsOf(got.Properties.Tags); !maps.Equal(g, want) {
				t.Fatalf("%s: tags %v, want %v", scope, g, want)
			}
		}
		check(rg, map[string]string{"env": "dev"})
		check(vid, map[string]string{})

		// Create or replace on the vault; its own GET shows them.
		put, err := tags.CreateOrUpdateAtScope(ctx, vid, armresources.TagsResource{Properties: &armresources.Tags{Tags: ptrTags(map[string]string{"team": "a", "cost": "1"})}}, nil)
		must(t, err)
		if g := tagsOf(put.Properties.Tags); !maps.Equal(g, map[string]string{"team": "a", "cost": "1"}) {
			t.Fatalf("put answered %v", g)
		}
		r := e.call(admin, "GET", vid, nil)
		if tv, _ := r.doc["tags"].(map[string]any); r.status != 200 || tv["team"] != "a" || tv["cost"] != "1" {
			t.Fatalf("vault GET: %s", r.raw)
		}

		patch := func(scope string, op armresources.TagsPatchOperation, in map[string]string) map[string]string {
			t.Helper()
			res, err := tags.UpdateAtScope(ctx, scope, armresources.TagsPatchResource{Operation: to.Ptr(op), Properties: &armresources.Tags{Tags: ptrTags(in)}}, nil)
			must(t, err)
			return tagsOf(res.Properties.Tags)
		}
		// Merge: a given name replaces the old one of any letter case.
		if g := patch(vid, armresources.TagsPatchOperationMerge, map[string]string{"TEAM": "b", "owner": "ops"}); !maps.Equal(g, map[string]string{"TEAM": "b", "cost": "1", "owner": "ops"}) {
			t.Fatalf("merge: %v", g)
		}
		// Delete: by name, and by name and value only while it holds that value.
		if g := patch(vid, armresources.TagsPatchOperationDelete, map[string]string{"team": "", "owner": "someone-else"}); !maps.Equal(g, map[string]string{"cost": "1", "owner": "ops"}) {
			t.Fatalf("delete: %v", g)
		}
		if g := patch(vid, armresources.TagsPatchOperationDelete, map[string]string{"owner": "ops"}); !maps.Equal(g, map[string]string{"cost": "1"}) {
			t.Fatalf("delete by value: %v", g)
		}
		// Replace on the group.
		if g := patch(rg, armresources.TagsPatchOperationReplace, map[string]string{"env": "prod", "tier": "gold"}); !maps.Equal(g, map[string]string{"env": "prod", "tier": "gold"}) {
			t.Fatalf("replace: %v", g)
		}
		r = e.call(admin, "GET", rg, nil)
		if tv, _ := r.doc["tags"].(map[string]any); tv["tier"] != "gold" {
			t.Fatalf("group GET: %s", r.raw)
		}

		// tagNames: each name with its values and counts.
		patch(vid, armresources.TagsPatchOperationMerge, map[string]string{"env": "prod"})
		counts := map[string]int32{}
		for p := tags.NewListPager(nil); p.More(); {
			page, err := p.NextPage(ctx)
			must(t, err)
			for _, d := range page.Value {
				counts[*d.TagName] = *d.Count.Value
				if *d.TagName == "env" && (len(d.Values) != 1 || *d.Values[0].TagValue != "prod" || *d.Values[0].Count.Value != 2) {
					t.Errorf("env values %+v", d.Values)
				}
			}
		}
		if !maps.Equal(counts, map[string]int32{"env": 2, "tier": 1, "cost": 1}) {
			t.Errorf("tagNames counts %v", counts)
		}

		// Delete all.
		_, err = tags.DeleteAtScope(ctx, vid, nil)
		must(t, err)
		check(vid, map[string]string{})

		// Azure's limits and errors.
		tooMany := map[string]string{}
		for i := range 51 {
			tooMany["t"+strings.Repeat("x", i)] = "v"
		}
		_, err = tags.CreateOrUpdateAtScope(ctx, vid, armresources.TagsResource{Properties: &armresources.Tags{Tags: ptrTags(tooMany)}}, nil)
		responseError(t, err, http.StatusBadRequest, "InvalidTag")
		tp := vid + "/providers/Microsoft.Resources/tags/default"
		e.want(e.call(admin, "PUT", tp, map[string]any{"properties": map[string]any{"tags": map[string]string{"a<b": "v"}}}), 400, "InvalidTagNameCharacters")
		e.want(e.call(admin, "PUT", tp, map[string]any{"properties": map[string]any{"tags": map[string]string{"a": strings.Repeat("v", 257)}}}), 400, "InvalidTagNameCharacters")
		e.want(e.call(admin, "PUT", tp, map[string]any{"properties": map[string]any{"tags": map[string]string{"a": "1", "A": "2"}}}), 400, "InvalidTag")
		e.want(e.call(admin, "PATCH", tp, map[string]any{"operation": "Upsert", "properties": map[string]any{"tags": map[string]string{}}}), 400, "InvalidRequestContent")
		e.want(e.call(admin, "PUT", tp, map[string]any{}), 400, "BadRequest")
		e.want(e.call(admin, "PUT", tp, "[1"), 400, "InvalidRequestContent")
		e.want(e.call(admin, "GET", rg+"/providers/Microsoft.KeyVault/vaults/nope/providers/Microsoft.Resources/tags/default", nil), 404, "ResourceNotFound")
		e.want(e.call(admin, "GET", sub(e)+"/resourceGroups/nope/providers/Microsoft.Resources/tags/default", nil), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "GET", sub(e)+"/providers/Microsoft.Resources/tags/default", nil), 400, "BadRequest")
		e.want(e.call(admin, "GET", rg+"/providers/Microsoft.Resources/tags/other", nil), 400, "InvalidResourceId")
		e.want(e.call(admin, "POST", tp, nil), 405, "MethodNotAllowed")

		// Rights: a Reader reads tags but writes none; another tenant neither.
		reader := e.newApp(tid, "tag-reader", false)
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleReader, "principalId": reader.sp.ID}}), 201, "")
		rtok := e.armToken(tid, reader.app.AppID, reader.secret)
		e.want(e.call(rtok, "GET", tp, nil), 200, "")
		e.want(e.call(rtok, "PUT", tp, map[string]any{"properties": map[string]any{"tags": map[string]string{"a": "b"}}}), 403, "AuthorizationFailed")
		e.want(e.call(rtok, "DELETE", tp, nil), 403, "AuthorizationFailed")
		fab := e.adminToken(e.fabrikam)
		e.want(e.call(fab, "GET", tp, nil), 401, "InvalidAuthenticationTokenTenant")

		// Write on the vault itself is enough to write its tags (a custom
		// role without Microsoft.Resources/tags/*), not the group's.
		roleID := uuid.NewString()
		e.want(e.call(admin, "PUT", sub(e)+"/providers/Microsoft.Authorization/roleDefinitions/"+roleID, map[string]any{"properties": map[string]any{
			"roleName": "Vault Writer", "type": "CustomRole", "assignableScopes": []string{sub(e)},
			"permissions": []any{map[string]any{"actions": []string{"Microsoft.KeyVault/vaults/write", "Microsoft.KeyVault/vaults/read"}}}}}), 201, "")
		writer := e.newApp(tid, "vault-writer", false)
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": sub(e) + "/providers/Microsoft.Authorization/roleDefinitions/" + roleID, "principalId": writer.sp.ID}}), 201, "")
		wtok := e.armToken(tid, writer.app.AppID, writer.secret)
		e.want(e.call(wtok, "PATCH", tp, map[string]any{"operation": "Merge", "properties": map[string]any{"tags": map[string]string{"by": "writer"}}}), 200, "")
		e.want(e.call(wtok, "PATCH", rg+"/providers/Microsoft.Resources/tags/default", map[string]any{"operation": "Merge", "properties": map[string]any{"tags": map[string]string{"by": "writer"}}}), 403, "AuthorizationFailed")

		// A ReadOnly lock on the group refuses tag writes.
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.Authorization/locks/ro", map[string]any{"properties": map[string]any{"level": "ReadOnly"}}), 201, "")
		e.want(e.call(admin, "PATCH", tp, map[string]any{"operation": "Merge", "properties": map[string]any{"tags": map[string]string{"a": "b"}}}), 409, "ScopeLocked")
		e.want(e.call(admin, "GET", tp, nil), 200, "")
	})
}
