package conformance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// ProviderRegistrationTests are the store.ProviderRegistrations tests, in
// the form Run lists its tests.
var ProviderRegistrationTests = []struct {
	Name string
	Fn   func(t *testing.T, st store.Store)
}{
	{"ProviderRegistrationRoundTrip", testProviderRegistrationRoundTrip},
	{"ProviderRegistrationsPerSubscription", testProviderRegistrationsPerSubscription},
}

// A registration is created, then replaced in place: the namespace keeps
// its first spelling, State and Updated change; lookups ignore case; it
// goes with its tenant.
func testProviderRegistrationRoundTrip(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	at := time.Date(2025, 3, 4, 5, 6, 7, 891011121, time.FixedZone("UTC-3", -3*3600))
	must(t, st.PutProviderRegistration(f.ctx, store.ProviderRegistration{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID,
		Namespace: "Microsoft.KeyVault", State: "NotRegistered", Updated: at}), "put")
	got, err := st.GetProviderRegistration(f.ctx, strings.ToUpper(tn.SubscriptionID), "microsoft.keyvault")
	must(t, err, "get")
	if got.Namespace != "Microsoft.KeyVault" || got.State != "NotRegistered" || got.TenantID != tn.ID || got.SubscriptionID != tn.SubscriptionID {
		t.Fatalf("got %+v", got)
	}
	checkTime(t, "updated", got.Updated, stored(at))
	later := at.Add(time.Hour)
	must(t, st.PutProviderRegistration(f.ctx, store.ProviderRegistration{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID,
		Namespace: "MICROSOFT.KEYVAULT", State: "Registered", Updated: later}), "replace")
	got, err = st.GetProviderRegistration(f.ctx, tn.SubscriptionID, "Microsoft.KeyVault")
	must(t, err, "get after replace")
	if got.Namespace != "Microsoft.KeyVault" || got.State != "Registered" {
		t.Fatalf("after replace %+v", got)
	}
	checkTime(t, "updated after replace", got.Updated, stored(later))
	_, err = st.GetProviderRegistration(f.ctx, tn.SubscriptionID, "Microsoft.ServiceBus")
	wantErr(t, err, store.ErrNotFound, "a namespace never registered")
	_, err = st.GetProviderRegistration(f.ctx, tn.SubscriptionID, "bad\x00ns")
	wantErr(t, err, store.ErrNotFound, "a namespace no backend can hold")
	wantErr(t, st.PutProviderRegistration(f.ctx, store.ProviderRegistration{TenantID: newID(), SubscriptionID: newID(), Namespace: "Microsoft.KeyVault", State: "Registered"}),
		store.ErrNotFound, "put for a missing tenant")
	wantPlainErr(t, st.PutProviderRegistration(f.ctx, store.ProviderRegistration{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Namespace: "Microsoft.KeyVault"}),
		"put without a state")
	must(t, st.DeleteTenant(f.ctx, tn.ID), "delete tenant")
	_, err = st.GetProviderRegistration(f.ctx, tn.SubscriptionID, "Microsoft.KeyVault")
	wantErr(t, err, store.ErrNotFound, "registration after its tenant")
}

// Each subscription's registrations are its own, listed by namespace.
func testProviderRegistrationsPerSubscription(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn, other := f.tenant(), f.tenant()
	put := func(tenant store.Tenant, ns, state string) {
		t.Helper()
		must(t, st.PutProviderRegistration(f.ctx, store.ProviderRegistration{TenantID: tenant.ID, SubscriptionID: tenant.SubscriptionID, Namespace: ns, State: state}), "put "+ns)
	}
	put(tn, "Microsoft.Solutions", "NotRegistered")
	put(tn, "microsoft.KeyVault", "Registered")
	put(other, "Microsoft.ServiceBus", "NotRegistered")
	list := func(sub string) []string {
		t.Helper()
		rs, err := st.ListProviderRegistrations(f.ctx, sub)
		must(t, err, "list")
		var out []string
		for _, r := range rs {
			out = append(out, r.Namespace+"="+r.State)
		}
		return out
	}
	if got, want := list(tn.SubscriptionID), []string{"microsoft.KeyVault=Registered", "Microsoft.Solutions=NotRegistered"}; !slices.Equal(got, want) {
		t.Errorf("list = %v, want %v", got, want)
	}
	if got, want := list(strings.ToUpper(other.SubscriptionID)), []string{"Microsoft.ServiceBus=NotRegistered"}; !slices.Equal(got, want) {
		t.Errorf("other's list = %v, want %v", got, want)
	}
	if got := list(newID()); len(got) != 0 {
		t.Errorf("unknown subscription's list = %v", got)
	}
}
