package conformance

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

func testRoleDefinitions(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	a, b := f.tenant(), f.tenant()
	created := time.Date(2024, 1, 2, 3, 4, 5, 6789, time.FixedZone("UTC-3", -3*3600))
	ids := sortedIDs(2)
	d := store.RoleDefinition{
		TenantID: a.ID, ID: ids[1], Name: "Queue Sender", Description: "sends",
		Permissions: []store.Permission{{
			Actions: []string{"Microsoft.ServiceBus/*/queues/read"}, DataActions: []string{"Microsoft.ServiceBus/*/send/action"},
			NotDataActions: []string{"Microsoft.ServiceBus/namespaces/messages/receive/action"},
		}},
		AssignableScopes: []string{"/subscriptions/" + a.SubscriptionID}, Created: created, CreatedBy: "creator",
	}
	must(t, st.CreateRoleDefinition(f.ctx, d), "create role definition")
	got, err := st.GetRoleDefinition(f.ctx, a.ID, d.ID)
	must(t, err, "get role definition")
	checkTime(t, "role definition Created", got.Created, stored(created))
	checkTime(t, "role definition Updated defaults to Created", got.Updated, stored(created))
	want := d
	want.Created, want.Updated, got.Created, got.Updated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("role definition round trip:\n got  %+v\n want %+v", got, want)
	}

	wantErr(t, st.CreateRoleDefinition(f.ctx, store.RoleDefinition{TenantID: a.ID, ID: newID(), Name: "QUEUE sender"}),
		store.ErrConflict, "same name other case")
	wantErr(t, st.CreateRoleDefinition(f.ctx, store.RoleDefinition{TenantID: a.ID, ID: d.ID, Name: "other"}),
		store.ErrConflict, "same id")
	wantErr(t, st.CreateRoleDefinition(f.ctx, store.RoleDefinition{TenantID: newID(), ID: newID(), Name: "x"}),
		store.ErrNotFound, "missing tenant")
	must(t, st.CreateRoleDefinition(f.ctx, store.RoleDefinition{TenantID: b.ID, ID: newID(), Name: "Queue Sender"}),
		"the same name in another tenant")
	other := store.RoleDefinition{TenantID: a.ID, ID: ids[0], Name: "Reader Plus"}
	must(t, st.CreateRoleDefinition(f.ctx, other), "create second")

	list, err := st.ListRoleDefinitions(f.ctx, a.ID)
	must(t, err, "list")
	var got2 []string
	for _, x := range list {
		got2 = append(got2, x.ID)
	}
	checkIDs(t, "role definitions by id", got2, ids)
	if len(list) == 2 && (list[0].Permissions != nil || list[0].AssignableScopes != nil) {
		t.Errorf("empty lists come back as nil: %+v", list[0])
	}

	d.Name, d.Permissions = "Queue Sender v2", []store.Permission{{Actions: []string{"*/read"}}}
	must(t, st.UpdateRoleDefinition(f.ctx, d), "update")
	got, err = st.GetRoleDefinition(f.ctx, a.ID, d.ID)
	must(t, err, "get updated")
	if got.Name != d.Name || !reflect.DeepEqual(got.Permissions, d.Permissions) || !got.Updated.After(got.Created) {
		t.Errorf("after update: %+v", got)
	}
	other.Name = "queue sender V2"
	wantErr(t, st.UpdateRoleDefinition(f.ctx, other), store.ErrConflict, "update to a taken name")
	wantErr(t, st.UpdateRoleDefinition(f.ctx, store.RoleDefinition{TenantID: a.ID, ID: newID(), Name: "n"}), store.ErrNotFound, "update missing")

	must(t, st.DeleteRoleDefinition(f.ctx, a.ID, d.ID), "delete")
	_, err = st.GetRoleDefinition(f.ctx, a.ID, d.ID)
	wantErr(t, err, store.ErrNotFound, "get deleted")
	wantErr(t, st.DeleteRoleDefinition(f.ctx, a.ID, d.ID), store.ErrNotFound, "delete again")
	_, err = st.GetRoleDefinition(f.ctx, b.ID, other.ID)
	wantErr(t, err, store.ErrNotFound, "another tenant's role")
}

// scopes of a small hierarchy in subscription sub.
func hierarchy(sub string) (subScope, rg, rg2, ns, queue string) {
	subScope = "/subscriptions/" + sub
	rg = subScope + "/resourceGroups/Shared"
	rg2 = subScope + "/resourceGroups/Shared2"
	ns = rg + "/providers/Microsoft.ServiceBus/namespaces/Bus"
	queue = ns + "/queues/Commands"
	return
}

func raIDs(as []store.RoleAssignment) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func testRoleAssignments(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	a, b := f.tenant(), f.tenant()
	sub, rg, rg2, ns, queue := hierarchy(a.SubscriptionID)
	ids := sortedIDs(6)
	user, group, sp := newID(), newID(), newID()
	const reader, sender = "acdd72a7-3385-48ef-bd42-f606fba81ae7", "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
	created := time.Date(2023, 3, 4, 5, 6, 7, 891, time.UTC)
	as := []store.RoleAssignment{
		{TenantID: a.ID, ID: ids[0], Scope: sub, RoleDefinitionID: reader, PrincipalID: user, PrincipalType: store.PrincipalUser, CreatedOn: created, CreatedBy: "admin"},
		{TenantID: a.ID, ID: ids[1], Scope: rg, RoleDefinitionID: sender, PrincipalID: group, PrincipalType: store.PrincipalGroup},
		{TenantID: a.ID, ID: ids[2], Scope: queue, RoleDefinitionID: sender, PrincipalID: sp, PrincipalType: store.PrincipalServicePrincipal, PrincipalTenantID: b.ID},
		{TenantID: a.ID, ID: ids[3], Scope: rg2, RoleDefinitionID: reader, PrincipalID: user, PrincipalType: store.PrincipalUser},
		{TenantID: a.ID, ID: ids[4], Scope: ns, RoleDefinitionID: reader, PrincipalID: user, PrincipalType: store.PrincipalUser},
	}
	before := time.Now()
	for _, x := range as {
		must(t, st.CreateRoleAssignment(f.ctx, x), "create role assignment "+x.Scope)
	}
	after := time.Now()

	got, err := st.GetRoleAssignment(f.ctx, a.ID, ids[0])
	must(t, err, "get")
	checkTime(t, "CreatedOn", got.CreatedOn, stored(created))
	want := as[0]
	want.PrincipalTenantID = a.ID // defaulted
	got.CreatedOn, want.CreatedOn = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("round trip:\n got  %+v\n want %+v", got, want)
	}
	got, err = st.GetRoleAssignment(f.ctx, a.ID, ids[2])
	must(t, err, "get cross-tenant")
	if got.PrincipalTenantID != b.ID || got.Scope != queue {
		t.Errorf("cross-tenant assignment: %+v", got)
	}
	checkNow(t, "zero CreatedOn", got.CreatedOn, before, after)

	list := func(q store.RoleAssignmentQuery) []string {
		t.Helper()
		q.TenantID = a.ID
		got, err := st.ListRoleAssignments(f.ctx, q)
		must(t, err, "list role assignments")
		return raIDs(got)
	}
	// The queue and its ancestors, in another case: everything but rg2.
	ancestors := []string{"/", strings.ToUpper(sub), strings.ToLower(rg), ns, queue}
	checkIDs(t, "at or above the queue", list(store.RoleAssignmentQuery{Scopes: ancestors}), []string{ids[0], ids[1], ids[2], ids[4]})
	got2, err := st.ListRoleAssignments(f.ctx, store.RoleAssignmentQuery{TenantID: a.ID, Scopes: []string{strings.ToUpper(rg)}})
	must(t, err, "list")
	if len(got2) != 1 || got2[0].Scope != rg {
		t.Errorf("scope is returned as given: %+v", got2)
	}
	checkIDs(t, "by principal", list(store.RoleAssignmentQuery{Scopes: ancestors, PrincipalIDs: []string{user, sp}}), []string{ids[0], ids[2], ids[4]})
	checkIDs(t, "by principal tenant", list(store.RoleAssignmentQuery{PrincipalTenantID: b.ID}), []string{ids[2]})
	checkIDs(t, "by role", list(store.RoleAssignmentQuery{RoleDefinitionID: strings.ToUpper(sender)}), []string{ids[1], ids[2]})
	checkIDs(t, "at or below rg (not rg2)", list(store.RoleAssignmentQuery{ScopePrefix: strings.ToUpper(rg)}), []string{ids[1], ids[2], ids[4]})
	checkIDs(t, "at or below rg2", list(store.RoleAssignmentQuery{ScopePrefix: rg2 + "/"}), []string{ids[3]})
	checkIDs(t, "empty scope list", list(store.RoleAssignmentQuery{Scopes: []string{}}), nil)
	checkIDs(t, "empty principal list", list(store.RoleAssignmentQuery{PrincipalIDs: []string{}}), nil)
	checkIDs(t, "hostile scope", list(store.RoleAssignmentQuery{Scopes: []string{"/\x00"}}), nil)
	// Paging: After is a cursor on the id, Limit bounds the page.
	checkIDs(t, "first page", list(store.RoleAssignmentQuery{Limit: 2}), []string{ids[0], ids[1]})
	checkIDs(t, "next page", list(store.RoleAssignmentQuery{After: ids[1], Limit: 2}), []string{ids[2], ids[3]})
	checkIDs(t, "last page", list(store.RoleAssignmentQuery{After: ids[3], Limit: 2}), []string{ids[4]})
	checkIDs(t, "past the end", list(store.RoleAssignmentQuery{After: ids[4]}), nil)
	checkIDs(t, "any below the subscription for the user", list(store.RoleAssignmentQuery{ScopePrefix: sub, PrincipalIDs: []string{user}, Limit: 1}), []string{ids[0]})
	checkIDs(t, "below rg, after a cursor", list(store.RoleAssignmentQuery{ScopePrefix: rg, After: ids[1]}), []string{ids[2], ids[4]})
	checkIDs(t, "hostile cursor", list(store.RoleAssignmentQuery{After: "\x00"}), nil)
	other, err := st.ListRoleAssignments(f.ctx, store.RoleAssignmentQuery{TenantID: b.ID, Scopes: ancestors})
	must(t, err, "list in b")
	checkIDs(t, "another tenant sees none of them", raIDs(other), nil)

	dup := as[1]
	dup.ID, dup.Scope, dup.RoleDefinitionID = newID(), strings.ToUpper(rg), strings.ToUpper(sender)
	wantErr(t, st.CreateRoleAssignment(f.ctx, dup), store.ErrConflict, "same scope (other case), role and principal")
	dup = as[1]
	wantErr(t, st.CreateRoleAssignment(f.ctx, dup), store.ErrConflict, "same id")
	dup.ID, dup.TenantID, dup.PrincipalID = newID(), newID(), newID()
	wantErr(t, st.CreateRoleAssignment(f.ctx, dup), store.ErrNotFound, "missing tenant")
	dup.TenantID, dup.PrincipalTenantID = a.ID, newID()
	wantErr(t, st.CreateRoleAssignment(f.ctx, dup), store.ErrNotFound, "missing principal tenant")
	dup.PrincipalTenantID, dup.PrincipalID, dup.RoleDefinitionID = "", group, reader
	must(t, st.CreateRoleAssignment(f.ctx, dup), "another role for the same principal and scope")

	must(t, st.DeleteRoleAssignment(f.ctx, a.ID, ids[0]), "delete")
	_, err = st.GetRoleAssignment(f.ctx, a.ID, ids[0])
	wantErr(t, err, store.ErrNotFound, "get deleted")
	wantErr(t, st.DeleteRoleAssignment(f.ctx, a.ID, ids[0]), store.ErrNotFound, "delete again")
	wantErr(t, st.DeleteRoleAssignment(f.ctx, b.ID, ids[1]), store.ErrNotFound, "delete through another tenant")

	// Deleting the principal's home tenant removes its assignments elsewhere.
	must(t, st.DeleteTenant(f.ctx, b.ID), "delete the principal's tenant")
	_, err = st.GetRoleAssignment(f.ctx, a.ID, ids[2])
	wantErr(t, err, store.ErrNotFound, "cross-tenant assignment after its principal's tenant went")
}

func testDenyAssignments(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	a, b := f.tenant(), f.tenant()
	sub, rg, _, ns, queue := hierarchy(a.SubscriptionID)
	ids := sortedIDs(3)
	d := store.DenyAssignment{
		TenantID: a.ID, ID: ids[1], Name: "Managed app deny", Description: "platform", Scope: rg,
		Permissions:             []store.Permission{{Actions: []string{"*"}, NotActions: []string{"*/read"}}},
		Principals:              []store.DenyPrincipal{{ID: store.EveryonePrincipalID, Type: store.PrincipalSystemDefined}},
		ExcludePrincipals:       []store.DenyPrincipal{{ID: newID(), Type: store.PrincipalServicePrincipal}},
		DoNotApplyToChildScopes: true, IsSystemProtected: true, CreatedBy: "platform",
		CreatedOn: time.Date(2022, 2, 2, 2, 2, 2, 2000, time.UTC),
	}
	must(t, st.CreateDenyAssignment(f.ctx, d), "create")
	got, err := st.GetDenyAssignment(f.ctx, a.ID, d.ID)
	must(t, err, "get")
	checkTime(t, "deny CreatedOn", got.CreatedOn, stored(d.CreatedOn))
	want := d
	got.CreatedOn, want.CreatedOn = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deny round trip:\n got  %+v\n want %+v", got, want)
	}
	plain := store.DenyAssignment{TenantID: a.ID, ID: ids[0], Name: "queue deny", Scope: queue}
	must(t, st.CreateDenyAssignment(f.ctx, plain), "create at the queue")
	got, err = st.GetDenyAssignment(f.ctx, a.ID, plain.ID)
	must(t, err, "get plain")
	if got.DoNotApplyToChildScopes || got.Principals != nil || got.Permissions != nil {
		t.Errorf("plain deny: %+v", got)
	}
	must(t, st.CreateDenyAssignment(f.ctx, store.DenyAssignment{TenantID: a.ID, ID: ids[2], Name: "Managed app deny", Scope: sub}),
		"the same name at another scope")
	wantErr(t, st.CreateDenyAssignment(f.ctx, store.DenyAssignment{TenantID: a.ID, ID: newID(), Name: "MANAGED app deny", Scope: strings.ToUpper(rg)}),
		store.ErrConflict, "the same name and scope, other case")
	wantErr(t, st.CreateDenyAssignment(f.ctx, store.DenyAssignment{TenantID: a.ID, ID: d.ID, Name: "x", Scope: rg}),
		store.ErrConflict, "the same id")

	lst := func(q store.DenyAssignmentQuery) []string {
		t.Helper()
		q.TenantID = a.ID
		ds, err := st.ListDenyAssignments(f.ctx, q)
		must(t, err, "list deny assignments")
		out := make([]string, len(ds))
		for i, x := range ds {
			out[i] = x.ID
		}
		return out
	}
	checkIDs(t, "at or above the namespace", lst(store.DenyAssignmentQuery{Scopes: []string{"/", sub, strings.ToLower(rg), ns}}), []string{ids[1], ids[2]})
	checkIDs(t, "at or below rg", lst(store.DenyAssignmentQuery{ScopePrefix: rg}), []string{ids[0], ids[1]})
	checkIDs(t, "all", lst(store.DenyAssignmentQuery{}), ids)
	other, err := st.ListDenyAssignments(f.ctx, store.DenyAssignmentQuery{TenantID: b.ID})
	must(t, err, "list b")
	if len(other) != 0 {
		t.Errorf("another tenant sees %d deny assignments", len(other))
	}
	must(t, st.DeleteDenyAssignment(f.ctx, a.ID, d.ID), "delete")
	wantErr(t, st.DeleteDenyAssignment(f.ctx, a.ID, d.ID), store.ErrNotFound, "delete again")
	_, err = st.GetDenyAssignment(f.ctx, a.ID, d.ID)
	wantErr(t, err, store.ErrNotFound, "get deleted")
}

func testDeleteTenantRemovesRBAC(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	a, keep := f.tenant(), f.tenant()
	sub, _, _, _, _ := hierarchy(a.SubscriptionID)
	for _, tn := range []store.Tenant{a, keep} {
		must(t, st.CreateRoleDefinition(f.ctx, store.RoleDefinition{TenantID: tn.ID, ID: newID(), Name: "custom"}), "role")
		must(t, st.CreateRoleAssignment(f.ctx, store.RoleAssignment{TenantID: tn.ID, ID: newID(), Scope: sub,
			RoleDefinitionID: newID(), PrincipalID: newID(), PrincipalType: store.PrincipalUser}), "assignment")
		must(t, st.CreateDenyAssignment(f.ctx, store.DenyAssignment{TenantID: tn.ID, ID: newID(), Name: "deny", Scope: sub}), "deny")
	}
	must(t, st.DeleteTenant(f.ctx, a.ID), "delete tenant")
	count := func(tenantID string) int {
		rd, err := st.ListRoleDefinitions(f.ctx, tenantID)
		must(t, err, "list roles")
		ra, err := st.ListRoleAssignments(f.ctx, store.RoleAssignmentQuery{TenantID: tenantID})
		must(t, err, "list assignments")
		da, err := st.ListDenyAssignments(f.ctx, store.DenyAssignmentQuery{TenantID: tenantID})
		must(t, err, "list denies")
		return len(rd) + len(ra) + len(da)
	}
	if n := count(a.ID); n != 0 {
		t.Errorf("%d RBAC records survive their tenant", n)
	}
	if n := count(keep.ID); n != 3 {
		t.Errorf("the other tenant has %d RBAC records, want 3", n)
	}
}

func testTenantsBySubscription(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	a := f.tenant()
	got, err := st.TenantsBySubscription(f.ctx, strings.ToUpper(a.SubscriptionID))
	must(t, err, "by subscription")
	checkIDs(t, "tenant of the subscription", got, []string{a.ID})
	got, err = st.TenantsBySubscription(f.ctx, newID())
	must(t, err, "unknown subscription")
	checkIDs(t, "unknown subscription", got, nil)
	// Subscription ids are not a store key: two tenants may share one,
	// and the caller must see both to refuse the ambiguity.
	shared := store.Tenant{ID: newID(), Name: "shared" + a.ID[:6], Domain: "shared" + a.ID[:6] + ".example", SubscriptionID: a.SubscriptionID}
	must(t, st.CreateTenant(f.ctx, shared), "create tenant sharing the subscription")
	got, err = st.TenantsBySubscription(f.ctx, a.SubscriptionID)
	must(t, err, "shared subscription")
	checkIDs(t, "both tenants", got, sortedCopy(a.ID, shared.ID))
}
