package conformance

import (
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// testARM proves store.ARM: resource groups unique per subscription
// case-insensitively, resources keyed by their id case-insensitively,
// listing by group, type and prefix, and the cascades (tenant → group →
// resource, and a group's or resource's role and deny assignments).
func testARM(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	ctx := f.ctx
	tn := f.tenant()
	sub := tn.SubscriptionID
	g := store.ResourceGroup{TenantID: tn.ID, SubscriptionID: sub, Name: "Shared-RG", Location: "westeurope", Tags: map[string]string{"env": "prod"}}
	must(t, st.CreateResourceGroup(ctx, g), "create group")
	wantErr(t, st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: strings.ToUpper(sub), Name: "shared-rg", Location: "x"}), store.ErrConflict, "same name in another case")
	wantErr(t, st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: newID(), SubscriptionID: newID(), Name: "x", Location: "x"}), store.ErrNotFound, "group of a missing tenant")
	got, err := st.GetResourceGroup(ctx, strings.ToUpper(sub), "SHARED-rg")
	must(t, err, "get group")
	if got.Name != "Shared-RG" || got.TenantID != tn.ID || got.SubscriptionID != sub || got.Location != "westeurope" || got.Tags["env"] != "prod" || got.Created.IsZero() {
		t.Errorf("group = %+v", got)
	}
	g.Tags, g.Location = nil, "northeurope"
	must(t, st.UpdateResourceGroup(ctx, store.ResourceGroup{SubscriptionID: sub, Name: "shared-rg", Location: "northeurope"}), "update group")
	got, err = st.GetResourceGroup(ctx, sub, "shared-rg")
	must(t, err, "get updated group")
	if got.Name != "Shared-RG" || got.Location != "northeurope" || len(got.Tags) != 0 {
		t.Errorf("updated group = %+v", got)
	}
	wantErr(t, st.UpdateResourceGroup(ctx, store.ResourceGroup{SubscriptionID: sub, Name: "nope", Location: "x"}), store.ErrNotFound, "update missing group")
	must(t, st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: sub, Name: "a-first", Location: "x"}), "second group")
	gs, err := st.ListResourceGroups(ctx, sub)
	must(t, err, "list groups")
	if len(gs) != 2 || gs[0].Name != "a-first" || gs[1].Name != "Shared-RG" {
		t.Errorf("groups = %+v", gs)
	}

	rgID := "/subscriptions/" + sub + "/resourceGroups/Shared-RG"
	ns := rgID + "/providers/Microsoft.ServiceBus/namespaces/Bus"
	q := ns + "/queues/commands"
	must(t, st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: ns, Type: "Microsoft.ServiceBus/namespaces", Name: "Bus", Location: "westeurope",
		Tags: map[string]string{"a": "b"}, Properties: []byte(`{"sku":"Standard"}`)}), "create namespace")
	must(t, st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: q, Type: "Microsoft.ServiceBus/namespaces/queues", Name: "commands"}), "create queue")
	wantErr(t, st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: strings.ToUpper(ns), Type: "x/y", Name: "BUS"}), store.ErrConflict, "same id in another case")
	wantErr(t, st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: "/subscriptions/" + sub + "/resourceGroups/missing/providers/A.B/c/d", Type: "A.B/c", Name: "d"}), store.ErrNotFound, "resource in a missing group")
	wantPlainErr(t, st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: "/subscriptions/" + sub + "/providers/A.B/c/d", Type: "A.B/c", Name: "d"}), "resource outside a group")
	wantPlainErr(t, st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: rgID + "/providers/A.B/c/e", Type: "A.B/c", Name: "e", Properties: []byte("{")}), "properties not JSON")
	r, err := st.GetResource(ctx, strings.ToLower(ns))
	must(t, err, "get resource")
	if r.ID != ns || r.Name != "Bus" || r.Type != "Microsoft.ServiceBus/namespaces" || r.TenantID != tn.ID || !strings.EqualFold(r.ResourceGroup, "shared-rg") ||
		r.SubscriptionID != sub || r.Tags["a"] != "b" || string(r.Properties) != `{"sku":"Standard"}` || r.Created.IsZero() {
		t.Errorf("resource = %+v", r)
	}
	r.Properties, r.Tags = []byte(`{"sku":"Premium"}`), nil
	must(t, st.UpdateResource(ctx, r), "update resource")
	if r, _ = st.GetResource(ctx, ns); string(r.Properties) != `{"sku":"Premium"}` || len(r.Tags) != 0 {
		t.Errorf("updated resource = %+v", r)
	}
	wantErr(t, st.UpdateResource(ctx, store.Resource{ID: rgID + "/providers/A.B/c/none"}), store.ErrNotFound, "update missing resource")
	for _, tc := range []struct {
		name string
		q    store.ResourceQuery
		want int
	}{
		{"subscription", store.ResourceQuery{SubscriptionID: strings.ToUpper(sub)}, 2},
		{"group", store.ResourceQuery{SubscriptionID: sub, ResourceGroup: "SHARED-RG"}, 2},
		{"other group", store.ResourceQuery{SubscriptionID: sub, ResourceGroup: "a-first"}, 0},
		{"type", store.ResourceQuery{SubscriptionID: sub, Type: "microsoft.servicebus/namespaces/QUEUES"}, 1},
		{"prefix", store.ResourceQuery{SubscriptionID: sub, IDPrefix: strings.ToUpper(ns)}, 2},
		{"prefix is whole segments", store.ResourceQuery{SubscriptionID: sub, IDPrefix: ns[:len(ns)-1]}, 0},
		{"hostile text", store.ResourceQuery{SubscriptionID: sub, Type: "a\x00b"}, 0},
	} {
		rs, err := st.ListResources(ctx, tc.q)
		must(t, err, tc.name)
		if len(rs) != tc.want {
			t.Errorf("%s: %d resources, want %d", tc.name, len(rs), tc.want)
		}
	}

	// Deleting a resource takes its children and the assignments at or below it.
	assign := func(scope string) string {
		id := newID()
		must(t, st.CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: tn.ID, ID: id, Scope: scope, RoleDefinitionID: newID(),
			PrincipalID: newID(), PrincipalType: store.PrincipalServicePrincipal}), "assign at "+scope)
		return id
	}
	atQueue, atNS, atRG, atSub := assign(q), assign(strings.ToUpper(ns)), assign(rgID), assign("/subscriptions/"+sub)
	atSibling := assign(rgID + "x")
	must(t, st.CreateDenyAssignment(ctx, store.DenyAssignment{TenantID: tn.ID, ID: newID(), Name: "lock", Scope: ns,
		Permissions: []store.Permission{{Actions: []string{"*"}}}, Principals: []store.DenyPrincipal{{ID: store.EveryonePrincipalID, Type: store.PrincipalSystemDefined}}}), "deny at namespace")
	must(t, st.DeleteResource(ctx, q), "delete queue")
	wantErr(t, st.DeleteResource(ctx, q), store.ErrNotFound, "delete queue again")
	_, err = st.GetRoleAssignment(ctx, tn.ID, atQueue)
	wantErr(t, err, store.ErrNotFound, "assignment at the deleted queue")
	_, err = st.GetRoleAssignment(ctx, tn.ID, atNS)
	must(t, err, "assignment at the namespace survives the queue")
	must(t, st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: q, Type: "Microsoft.ServiceBus/namespaces/queues", Name: "commands"}), "recreate queue")

	// Deleting the group takes everything in it.
	must(t, st.DeleteResourceGroup(ctx, strings.ToUpper(sub), "shared-RG"), "delete group")
	wantErr(t, st.DeleteResourceGroup(ctx, sub, "shared-rg"), store.ErrNotFound, "delete group again")
	_, err = st.GetResource(ctx, ns)
	wantErr(t, err, store.ErrNotFound, "namespace after its group")
	_, err = st.GetResource(ctx, q)
	wantErr(t, err, store.ErrNotFound, "queue after its group")
	for _, id := range []string{atNS, atRG} {
		_, err = st.GetRoleAssignment(ctx, tn.ID, id)
		wantErr(t, err, store.ErrNotFound, "assignment in the deleted group")
	}
	for _, id := range []string{atSub, atSibling} {
		_, err = st.GetRoleAssignment(ctx, tn.ID, id)
		must(t, err, "assignment outside the deleted group")
	}
	ds, err := st.ListDenyAssignments(ctx, store.DenyAssignmentQuery{TenantID: tn.ID})
	must(t, err, "deny assignments")
	if len(ds) != 0 {
		t.Errorf("deny assignments after the group: %+v", ds)
	}

	// And the tenant takes its groups.
	must(t, st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: "/subscriptions/" + sub + "/resourceGroups/a-first/providers/A.B/c/d", Type: "A.B/c", Name: "d"}), "resource in a-first")
	must(t, st.DeleteTenant(ctx, tn.ID), "delete tenant")
	gs, err = st.ListResourceGroups(ctx, sub)
	must(t, err, "list after tenant")
	rs, err := st.ListResources(ctx, store.ResourceQuery{SubscriptionID: sub})
	must(t, err, "resources after tenant")
	if len(gs) != 0 || len(rs) != 0 {
		t.Errorf("after the tenant: %d groups, %d resources", len(gs), len(rs))
	}
}
