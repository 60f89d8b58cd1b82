// Package conformance is the one test suite every store backend passes: it
// proves each behaviour documented in package store, so that code written
// against the SQLite backend behaves the same on PostgreSQL. Backends call
// Run from their tests; storetest supplies fresh stores.
package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Run runs the suite. newStore must return a fresh, empty store each time
// it is called and arrange for it to be closed; it is called from parallel
// subtests.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"Tenants", testTenants},
		{"TenantConflicts", testTenantConflicts},
		{"ObjectRoundTrip", testObjectRoundTrip},
		{"ObjectConflicts", testObjectConflicts},
		{"UpdateObject", testUpdateObject},
		{"DeleteObject", testDeleteObject},
		{"ListObjects", testListObjects},
		{"ListObjectsPaging", testListObjectsPaging},
		{"Links", testLinks},
		{"AppRoleAssignments", testAppRoleAssignments},
		{"DeleteObjectCascades", testDeleteObjectCascades},
		{"DeleteTenant", testDeleteTenant},
		{"InTx", testInTx},
		{"ConcurrentUpdate", testConcurrentUpdate},
		{"ConcurrentCreate", testConcurrentCreate},
		{"Audit", testAudit},
		{"AuditBatch", testAuditBatch},
		{"HostileText", testHostileText},
		{"OneTimeUse", testOneTimeUse},
		{"OneTimeUseConcurrent", testOneTimeUseConcurrent},
		{"OneTimeUseConcurrentReuse", testOneTimeUseConcurrentReuse},
		{"OneTimeUseExpiry", testOneTimeUseExpiry},
		{"OneTimeUseInTx", testOneTimeUseInTx},
		{"PruneUsed", testPruneUsed},
		{"Vaults", testVaults},
		{"Keys", testKeys},
		{"RoleDefinitions", testRoleDefinitions}, {"RoleAssignments", testRoleAssignments}, {"DenyAssignments", testDenyAssignments}, {"DeleteTenantRemovesRBAC", testDeleteTenantRemovesRBAC}, {"TenantsBySubscription", testTenantsBySubscription},
		{"ARM", testARM},
		{"Generation", testGeneration},
		{"PartGeneration", testPartGeneration},
		{"ResourcesNamed", testResourcesNamed},
	}
	// The suites kept in their own files, each a list of named tests.
	for _, suite := range [][]struct {
		Name string
		Fn   func(t *testing.T, st store.Store)
	}{QueueTests, UserTokenTests, OutboxTests, LockoutTests, DeploymentTests, ProviderRegistrationTests, ManagementLockTests, DeletedVaultTests, SignedOutTests} {
		for _, q := range suite {
			tests = append(tests, struct {
				name string
				fn   func(t *testing.T, st store.Store)
			}{q.Name, q.Fn})
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func testTenants(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	ctx := f.ctx
	// A time in another zone with nanoseconds: it must come back in UTC,
	// truncated to the microsecond, on every backend.
	created := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+5", 5*3600))
	contoso := store.Tenant{ID: newID(), Name: "Contoso", Domain: "contoso.onmicrosoft.com", SubscriptionID: newID(), Created: created}
	must(t, st.CreateTenant(ctx, contoso), "create contoso")
	want := contoso
	want.Created = stored(created)

	for _, key := range []string{contoso.ID, contoso.Domain, "CONTOSO.OnMicrosoft.COM"} {
		got, err := st.GetTenant(ctx, key)
		must(t, err, "get tenant by "+key)
		checkTenant(t, got, want)
	}

	before := time.Now()
	fabrikam := store.Tenant{ID: newID(), Name: "fabrikam", Domain: "fabrikam.onmicrosoft.com", SubscriptionID: newID()}
	must(t, st.CreateTenant(ctx, fabrikam), "create fabrikam")
	adatum := store.Tenant{ID: newID(), Name: "adatum", Domain: "adatum.example", SubscriptionID: newID()}
	must(t, st.CreateTenant(ctx, adatum), "create adatum")
	after := time.Now()
	got, err := st.GetTenant(ctx, fabrikam.ID)
	must(t, err, "get fabrikam")
	checkNow(t, "zero Created set by the store", got.Created, before, after)

	ts, err := st.ListTenants(ctx)
	must(t, err, "list tenants")
	var names []string
	for _, tn := range ts {
		names = append(names, tn.Name)
	}
	checkIDs(t, "ListTenants orders by name", names, []string{"adatum", "Contoso", "fabrikam"})
	checkTenant(t, ts[1], want)

	for _, key := range []string{newID(), "nowhere.example", ""} {
		_, err := st.GetTenant(ctx, key)
		wantErr(t, err, store.ErrNotFound, "get unknown tenant "+key)
	}
	wantErr(t, st.DeleteTenant(ctx, newID()), store.ErrNotFound, "delete unknown tenant")

	must(t, st.DeleteTenant(ctx, adatum.ID), "delete adatum")
	_, err = st.GetTenant(ctx, adatum.ID)
	wantErr(t, err, store.ErrNotFound, "get deleted tenant")
	ts, err = st.ListTenants(ctx)
	must(t, err, "list tenants")
	if len(ts) != 2 {
		t.Errorf("after delete: %d tenants, want 2", len(ts))
	}
}

func testTenantConflicts(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	taken := store.Tenant{ID: newID(), Name: "contoso", Domain: "contoso.onmicrosoft.com", SubscriptionID: newID()}
	must(t, st.CreateTenant(f.ctx, taken), "create")
	tests := []struct {
		name string
		t    store.Tenant
	}{
		{"same id", store.Tenant{ID: taken.ID, Name: "other", Domain: "other.example"}},
		{"same name", store.Tenant{ID: newID(), Name: "contoso", Domain: "other.example"}},
		{"same name other case", store.Tenant{ID: newID(), Name: "CONTOSO", Domain: "other.example"}},
		{"same domain", store.Tenant{ID: newID(), Name: "other", Domain: "contoso.onmicrosoft.com"}},
		{"same domain other case", store.Tenant{ID: newID(), Name: "other", Domain: "Contoso.OnMicrosoft.com"}},
	}
	for _, tc := range tests {
		wantErr(t, st.CreateTenant(f.ctx, tc.t), store.ErrConflict, tc.name)
	}
	ts, err := st.ListTenants(f.ctx)
	must(t, err, "list")
	if len(ts) != 1 {
		t.Errorf("%d tenants after rejected creates, want 1", len(ts))
	}
	// The subscription id is not a key.
	must(t, st.CreateTenant(f.ctx, store.Tenant{ID: newID(), Name: "other", Domain: "other.example", SubscriptionID: taken.SubscriptionID}),
		"create with a shared subscription id")
}

// Errors that InTx tests return from their callbacks; InTx must hand them
// back unchanged (identical, not just wrapped).
var (
	errBoom  = errors.New("boom")
	errInner = errors.New("inner")
)
