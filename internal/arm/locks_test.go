package arm_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armlocks"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
)

// TestManagementLocksSDK: locks through armlocks' ManagementLocksClient,
// unmodified, at a group, a resource and the subscription, and their
// enforcement: a ReadOnly lock on a group refuses a vault PUT, a queue
// DELETE and a listKeys with ScopeLocked and lets reads and listTokens-like
// reads through; CanNotDelete refuses the group's DELETE but not a write;
// a lock on a queue refuses deleting its namespace; removing the locks
// lets everything through. A Contributor cannot create a lock; another
// tenant learns nothing of them.
func TestManagementLocksSDK(t *testing.T) {
	forEachStoreKEK(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		subID := e.contoso.Tenant.SubscriptionID
		tid := e.contoso.Tenant.ID
		admin := e.adminToken(e.contoso)
		cred := e.credential(tid, e.contoso.Admin.AppID, e.contoso.AdminSecret.SecretText)
		locks, err := armlocks.NewManagementLocksClient(subID, cred, e.armOptions())
		must(t, err)

		rg := sub(e) + "/resourceGroups/locked"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		nid := rg + "/providers/Microsoft.ServiceBus/namespaces/sb-locked-1"
		e.want(e.call(admin, "PUT", nid, nsBody()), 201, "")
		e.want(e.call(admin, "PUT", nid+"/queues/orders", map[string]any{}), 200, "")
		e.want(e.call(admin, "PUT", nid+"/authorizationRules/send", map[string]any{"properties": map[string]any{"rights": []string{"Send"}}}), 200, "")
		vid := rg + "/providers/Microsoft.KeyVault/vaults/kv-locked-1"

		// A ReadOnly lock on the group, with notes and an owner.
		created, err := locks.CreateOrUpdateAtResourceGroupLevel(ctx, "locked", "freeze", armlocks.ManagementLockObject{Properties: &armlocks.ManagementLockProperties{
			Level: to.Ptr(armlocks.LockLevelReadOnly), Notes: to.Ptr("change freeze"),
			Owners: []*armlocks.ManagementLockOwner{{ApplicationID: to.Ptr(e.contoso.Admin.AppID)}}}}, nil)
		must(t, err)
		if *created.ID != rg+"/providers/Microsoft.Authorization/locks/freeze" || *created.Name != "freeze" || *created.Type != "Microsoft.Authorization/locks" ||
			*created.Properties.Level != armlocks.LockLevelReadOnly || *created.Properties.Notes != "change freeze" ||
			len(created.Properties.Owners) != 1 || *created.Properties.Owners[0].ApplicationID != e.contoso.Admin.AppID {
			t.Fatalf("created %+v %+v", created.ManagementLockObject, created.Properties)
		}
		got, err := locks.GetAtResourceGroupLevel(ctx, "LOCKED", "Freeze", nil)
		must(t, err)
		if *got.Properties.Level != armlocks.LockLevelReadOnly {
			t.Fatalf("got %+v", got.Properties)
		}

		// Writes and deletes at or below the group are ScopeLocked; reads are not.
		r := e.call(admin, "PUT", vid, vaultBody(tid, nil))
		e.want(r, http.StatusConflict, "ScopeLocked")
		if want := "The scope '" + vid + "' cannot perform write operation because following scope(s) are locked: '" + rg + "'. Please remove the lock and try again."; r.message() != want {
			t.Errorf("message %q, want %q", r.message(), want)
		}
		r = e.call(admin, "DELETE", nid+"/queues/orders", nil)
		e.want(r, http.StatusConflict, "ScopeLocked")
		if !strings.Contains(r.message(), "cannot perform delete operation") {
			t.Errorf("delete message %q", r.message())
		}
		e.want(e.call(admin, "POST", nid+"/authorizationRules/send/listKeys", nil), http.StatusConflict, "ScopeLocked")
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope", "tags": map[string]string{"a": "b"}}), http.StatusConflict, "ScopeLocked")
		e.want(e.call(admin, "GET", nid+"/queues/orders", nil), 200, "")
		e.want(e.call(admin, "GET", rg, nil), 200, "")
		// Elsewhere in the subscription nothing is locked.
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/free", map[string]any{"location": "westeurope"}), 201, "")

		// A Contributor reads locks but cannot make or remove one.
		contributor := e.newApp(tid, "contributor", false)
		e.want(e.call(admin, "PUT", sub(e)+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
			"roleDefinitionId": rbac.RoleContributor, "principalId": contributor.sp.ID}}), 201, "")
		ctok := e.armToken(tid, contributor.app.AppID, contributor.secret)
		e.want(e.call(ctok, "GET", rg+"/providers/Microsoft.Authorization/locks/freeze", nil), 200, "")
		e.want(e.call(ctok, "PUT", sub(e)+"/resourceGroups/free/providers/Microsoft.Authorization/locks/mine", map[string]any{"properties": map[string]any{"level": "CanNotDelete"}}), 403, "AuthorizationFailed")
		e.want(e.call(ctok, "DELETE", rg+"/providers/Microsoft.Authorization/locks/freeze", nil), 403, "AuthorizationFailed")

		// Another tenant sees neither the locks nor that they exist.
		fab := e.adminToken(e.fabrikam)
		e.want(e.call(fab, "GET", rg+"/providers/Microsoft.Authorization/locks", nil), 401, "InvalidAuthenticationTokenTenant")
		e.want(e.call(fab, "DELETE", nid+"/queues/orders", nil), 401, "InvalidAuthenticationTokenTenant")

		// Replace the group's lock with CanNotDelete: writes pass, the group's DELETE does not.
		_, err = locks.CreateOrUpdateAtResourceGroupLevel(ctx, "locked", "freeze", armlocks.ManagementLockObject{Properties: &armlocks.ManagementLockProperties{
			Level: to.Ptr(armlocks.LockLevelCanNotDelete)}}, nil)
		must(t, err)
		e.want(e.call(admin, "PUT", vid, vaultBody(tid, nil)), 201, "")
		e.want(e.call(admin, "DELETE", rg, nil), http.StatusConflict, "ScopeLocked")
		e.want(e.call(admin, "DELETE", vid, nil), http.StatusConflict, "ScopeLocked")

		// A lock on a queue (by scope) blocks deleting its namespace, which would take it.
		qid := nid + "/queues/orders"
		_, err = locks.CreateOrUpdateByScope(ctx, qid, "keep-queue", armlocks.ManagementLockObject{Properties: &armlocks.ManagementLockProperties{
			Level: to.Ptr(armlocks.LockLevelCanNotDelete)}}, nil)
		must(t, err)
		// And one at the subscription.
		_, err = locks.CreateOrUpdateAtSubscriptionLevel(ctx, "sub-guard", armlocks.ManagementLockObject{Properties: &armlocks.ManagementLockProperties{
			Level: to.Ptr(armlocks.LockLevelCanNotDelete)}}, nil)
		must(t, err)
		e.want(e.call(admin, "DELETE", sub(e)+"/resourceGroups/free", nil), http.StatusConflict, "ScopeLocked")

		// Lists: at the group, the group's, the queue's and the
		// subscription's; atScope() at the queue, the queue's and those above it.
		listRG := func(filter *string) []string {
			t.Helper()
			var names []string
			for p := locks.NewListAtResourceGroupLevelPager("locked", &armlocks.ManagementLocksClientListAtResourceGroupLevelOptions{Filter: filter}); p.More(); {
				page, err := p.NextPage(ctx)
				must(t, err)
				for _, l := range page.Value {
					names = append(names, *l.Name)
				}
			}
			slices.Sort(names)
			return names
		}
		if got, want := listRG(nil), []string{"freeze", "keep-queue", "sub-guard"}; !slices.Equal(got, want) {
			t.Errorf("group list %v, want %v", got, want)
		}
		if got, want := listRG(to.Ptr("atScope()")), []string{"freeze", "sub-guard"}; !slices.Equal(got, want) {
			t.Errorf("group atScope() list %v, want %v", got, want)
		}
		var subNames []string
		for p := locks.NewListAtSubscriptionLevelPager(&armlocks.ManagementLocksClientListAtSubscriptionLevelOptions{Filter: to.Ptr("atScope()")}); p.More(); {
			page, err := p.NextPage(ctx)
			must(t, err)
			for _, l := range page.Value {
				subNames = append(subNames, *l.Name)
			}
		}
		if !slices.Equal(subNames, []string{"sub-guard"}) {
			t.Errorf("subscription atScope() list %v", subNames)
		}
		e.want(e.call(admin, "GET", rg+"/providers/Microsoft.Authorization/locks?$filter=level%20eq%20'ReadOnly'", nil), 400, "InvalidFilterInQueryString")

		// Remove the group's and the subscription's locks: the namespace
		// still cannot go while its queue is locked; then it can.
		_, err = locks.DeleteAtResourceGroupLevel(ctx, "locked", "freeze", nil)
		must(t, err)
		_, err = locks.DeleteAtSubscriptionLevel(ctx, "sub-guard", nil)
		must(t, err)
		r = e.call(admin, "DELETE", nid, nil)
		e.want(r, http.StatusConflict, "ScopeLocked")
		if !strings.Contains(r.message(), "'"+qid+"'") {
			t.Errorf("namespace delete names %q", r.message())
		}
		_, err = locks.DeleteByScope(ctx, qid, "keep-queue", nil)
		must(t, err)
		e.want(e.call(admin, "DELETE", qid+"/providers/Microsoft.Authorization/locks/keep-queue", nil), 204, "")
		e.want(e.call(admin, "DELETE", qid, nil), 200, "")
		e.want(e.call(admin, "DELETE", vid, nil), 200, "")
		_, err = locks.GetAtResourceGroupLevel(ctx, "locked", "freeze", nil)
		responseError(t, err, http.StatusNotFound, "LockNotFound")
		e.want(e.call(admin, "DELETE", rg, nil), 200, "")
	})
}

// TestManagementLockRefusals: bad bodies, names and scopes get ARM's 4xx.
func TestManagementLockRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		admin := e.adminToken(e.contoso)
		rg := sub(e) + "/resourceGroups/lk"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		lk := rg + "/providers/Microsoft.Authorization/locks/"
		e.want(e.call(admin, "PUT", lk+"a", map[string]any{"properties": map[string]any{"level": "NotSpecified"}}), 400, "BadRequest")
		e.want(e.call(admin, "PUT", lk+"a", map[string]any{}), 400, "BadRequest")
		e.want(e.call(admin, "PUT", lk+"a", "{"), 400, "InvalidRequestContent")
		e.want(e.call(admin, "PUT", lk+"a%26b", map[string]any{"properties": map[string]any{"level": "ReadOnly"}}), 400, "InvalidLockName")
		e.want(e.call(admin, "PUT", lk+strings.Repeat("n", 261), map[string]any{"properties": map[string]any{"level": "ReadOnly"}}), 400, "InvalidLockName")
		e.want(e.call(admin, "PUT", lk+"a", map[string]any{"properties": map[string]any{"level": "ReadOnly", "notes": strings.Repeat("x", 513)}}), 400, "BadRequest")
		// A NUL the store cannot keep is the client's 400, not a 500.
		e.want(e.call(admin, "PUT", lk+"a", map[string]any{"properties": map[string]any{"level": "ReadOnly", "notes": "a\x00b"}}), 400, "BadRequest")
		e.want(e.call(admin, "PUT", lk+"a", map[string]any{"properties": map[string]any{"level": "ReadOnly", "owners": []map[string]string{{"applicationId": "a\x00"}}}}), 400, "BadRequest")
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/nope/providers/Microsoft.Authorization/locks/a", map[string]any{"properties": map[string]any{"level": "ReadOnly"}}), 404, "ResourceGroupNotFound")
		e.want(e.call(admin, "PUT", rg+"/providers/Microsoft.KeyVault/vaults/nope/providers/Microsoft.Authorization/locks/a", map[string]any{"properties": map[string]any{"level": "ReadOnly"}}), 404, "ResourceNotFound")
		e.want(e.call(admin, "PUT", sub(e)+"/providers/Microsoft.KeyVault/vaults/nope/providers/Microsoft.Authorization/locks/a", map[string]any{"properties": map[string]any{"level": "ReadOnly"}}), 404, "ResourceNotFound")
		e.want(e.call(admin, "PUT", "/providers/Microsoft.Authorization/locks/a", map[string]any{"properties": map[string]any{"level": "ReadOnly"}}), 400, "InvalidResourceId")
		e.want(e.call(admin, "PATCH", lk+"a", map[string]any{}), 405, "MethodNotAllowed")
		e.want(e.call(admin, "GET", lk+"a", nil), 404, "LockNotFound")
		e.want(e.call(admin, "DELETE", lk+"a", nil), 204, "")
		// A second PUT of a lock answers 200; a ReadOnly lock refuses the group's DELETE too.
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/lk/providers/Microsoft.Authorization/locks/ro", map[string]any{"properties": map[string]any{"level": "ReadOnly"}}), 201, "")
		e.want(e.call(admin, "PUT", sub(e)+"/resourceGroups/lk/providers/Microsoft.Authorization/locks/ro", map[string]any{"properties": map[string]any{"level": "ReadOnly"}}), 200, "")
		e.want(e.call(admin, "DELETE", rg, nil), http.StatusConflict, "ScopeLocked")
	})
}
