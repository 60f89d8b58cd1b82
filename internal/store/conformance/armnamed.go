package conformance

import (
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// testResourcesNamed: a globally named resource is found by type and name
// in any case, across tenants and subscriptions, and nothing else is: not
// another type of the same name, not a name that merely ends the same.
func testResourcesNamed(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	ctx := f.ctx
	const nsType = "Microsoft.ServiceBus/namespaces"
	var want []string
	for _, name := range []string{"Orders-Bus", "orders-bus"} { // two tenants, one name: the store does not forbid it
		tn := f.tenant()
		rg := "/subscriptions/" + tn.SubscriptionID + "/resourceGroups/rg"
		must(t, st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: "rg", Location: "x"}), "group")
		ns := rg + "/providers/" + nsType + "/" + name
		must(t, st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: ns, Type: nsType, Name: name}), "namespace")
		want = append(want, ns)
		must(t, st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: rg + "/providers/" + nsType + "/big-" + name, Type: nsType, Name: "big-" + name}), "longer name")
		must(t, st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: ns + "/queues/" + name, Type: nsType + "/queues", Name: name}), "queue of that name")
	}
	got, err := st.ResourcesNamed(ctx, "microsoft.servicebus/NAMESPACES", "ORDERS-BUS")
	must(t, err, "resources named")
	if len(got) != 2 {
		t.Fatalf("found %d namespaces, want 2: %+v", len(got), got)
	}
	for _, r := range got {
		if r.ID != want[0] && r.ID != want[1] {
			t.Errorf("found %s", r.ID)
		}
	}
	for _, name := range []string{"", "bus", "rders-bus", "x/orders-bus", "orders-bus\x00"} {
		if got, err := st.ResourcesNamed(ctx, nsType, name); err != nil || len(got) != 0 {
			t.Errorf("ResourcesNamed(%q) = %d resources, %v", name, len(got), err)
		}
	}
}
