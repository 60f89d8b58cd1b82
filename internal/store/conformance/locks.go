package conformance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// ManagementLockTests are the store.ManagementLocks tests, in the form
// Run lists its tests.
var ManagementLockTests = []struct {
	Name string
	Fn   func(t *testing.T, st store.Store)
}{
	{"ManagementLockRoundTrip", testManagementLockRoundTrip},
	{"ManagementLocksPerSubscription", testManagementLocksPerSubscription},
}

// A lock is created, then replaced in place: scope and name keep their
// first spelling and Created, Level, Notes, Owners and Updated change;
// lookups ignore case; delete removes it once; it goes with its tenant.
func testManagementLockRoundTrip(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	scope := "/subscriptions/" + tn.SubscriptionID + "/resourceGroups/Locked"
	at := time.Date(2025, 3, 4, 5, 6, 7, 891011121, time.FixedZone("UTC-3", -3*3600))
	must(t, st.PutManagementLock(f.ctx, store.ManagementLock{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Scope: scope, Name: "Keep",
		Level: "CanNotDelete", Notes: "first", Owners: []string{"app-1"}, Created: at, Updated: at}), "put")
	got, err := st.GetManagementLock(f.ctx, strings.ToUpper(scope), "keep")
	must(t, err, "get")
	if got.Scope != scope || got.Name != "Keep" || got.Level != "CanNotDelete" || got.Notes != "first" || !slices.Equal(got.Owners, []string{"app-1"}) ||
		got.TenantID != tn.ID || got.SubscriptionID != tn.SubscriptionID {
		t.Fatalf("got %+v", got)
	}
	checkTime(t, "created", got.Created, stored(at))
	later := at.Add(time.Hour)
	must(t, st.PutManagementLock(f.ctx, store.ManagementLock{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Scope: strings.ToLower(scope), Name: "KEEP",
		Level: "ReadOnly", Created: later, Updated: later}), "replace")
	got, err = st.GetManagementLock(f.ctx, scope, "Keep")
	must(t, err, "get after replace")
	if got.Scope != scope || got.Name != "Keep" || got.Level != "ReadOnly" || got.Notes != "" || len(got.Owners) != 0 {
		t.Fatalf("after replace %+v", got)
	}
	checkTime(t, "created after replace", got.Created, stored(at))
	checkTime(t, "updated after replace", got.Updated, stored(later))
	_, err = st.GetManagementLock(f.ctx, scope, "other")
	wantErr(t, err, store.ErrNotFound, "a lock never made")
	_, err = st.GetManagementLock(f.ctx, scope, "bad\x00name")
	wantErr(t, err, store.ErrNotFound, "a name no backend can hold")
	wantErr(t, st.PutManagementLock(f.ctx, store.ManagementLock{TenantID: newID(), SubscriptionID: newID(), Scope: "/subscriptions/x", Name: "n", Level: "ReadOnly"}),
		store.ErrNotFound, "put for a missing tenant")
	wantPlainErr(t, st.PutManagementLock(f.ctx, store.ManagementLock{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Scope: scope, Name: "n"}),
		"put without a level")
	must(t, st.DeleteManagementLock(f.ctx, strings.ToUpper(scope), "KEEP"), "delete")
	wantErr(t, st.DeleteManagementLock(f.ctx, scope, "Keep"), store.ErrNotFound, "delete twice")
	must(t, st.PutManagementLock(f.ctx, store.ManagementLock{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Scope: scope, Name: "again", Level: "ReadOnly"}), "put again")
	must(t, st.DeleteTenant(f.ctx, tn.ID), "delete tenant")
	_, err = st.GetManagementLock(f.ctx, scope, "again")
	wantErr(t, err, store.ErrNotFound, "lock after its tenant")
}

// Each subscription's locks are its own, listed by scope and name.
func testManagementLocksPerSubscription(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn, other := f.tenant(), f.tenant()
	put := func(tenant store.Tenant, scope, name string) {
		t.Helper()
		must(t, st.PutManagementLock(f.ctx, store.ManagementLock{TenantID: tenant.ID, SubscriptionID: tenant.SubscriptionID,
			Scope: "/subscriptions/" + tenant.SubscriptionID + scope, Name: name, Level: "ReadOnly"}), "put "+name)
	}
	put(tn, "/resourceGroups/b", "z")
	put(tn, "/resourceGroups/B", "a")
	put(tn, "", "sub")
	put(other, "", "theirs")
	list := func(sub string) []string {
		t.Helper()
		ls, err := st.ListManagementLocks(f.ctx, sub)
		must(t, err, "list")
		var out []string
		for _, l := range ls {
			out = append(out, strings.TrimPrefix(l.Scope, "/subscriptions/"+l.SubscriptionID)+":"+l.Name)
		}
		return out
	}
	if got, want := list(tn.SubscriptionID), []string{":sub", "/resourceGroups/B:a", "/resourceGroups/b:z"}; !slices.Equal(got, want) {
		t.Errorf("list = %v, want %v", got, want)
	}
	if got, want := list(strings.ToUpper(other.SubscriptionID)), []string{":theirs"}; !slices.Equal(got, want) {
		t.Errorf("other's list = %v, want %v", got, want)
	}
	if got := list(newID()); len(got) != 0 {
		t.Errorf("unknown subscription's list = %v", got)
	}
}
