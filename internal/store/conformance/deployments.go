package conformance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// DeploymentTests are the store.Deployments tests, in the form Run lists
// its tests.
var DeploymentTests = []struct {
	Name string
	Fn   func(t *testing.T, st store.Store)
}{
	{"DeploymentRoundTrip", testDeploymentRoundTrip},
	{"DeploymentScopes", testDeploymentScopes},
	{"DeploymentsGoWithGroupAndTenant", testDeploymentsGoWithGroupAndTenant},
}

func deploymentNames(ds []store.Deployment) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
	}
	return out
}

// A deployment is created, then replaced in place: name case, Created and
// the scope stay; State, Document and Updated change. Lookups ignore case.
func testDeploymentRoundTrip(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	g := store.ResourceGroup{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: "Deploy-RG", Location: "westus"}
	must(t, st.CreateResourceGroup(f.ctx, g), "create group")
	created := time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.FixedZone("UTC+1", 3600))
	d := store.Deployment{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, ResourceGroup: "Deploy-RG", Name: "Main",
		State: "Accepted", Document: []byte(`{"a":1}`), Created: created, Updated: created}
	must(t, st.PutDeployment(f.ctx, d), "put")
	got, err := st.GetDeployment(f.ctx, strings.ToUpper(tn.SubscriptionID), "deploy-rg", "MAIN")
	must(t, err, "get")
	if got.Name != "Main" || got.ResourceGroup != "Deploy-RG" || got.State != "Accepted" || string(got.Document) != `{"a":1}` || got.TenantID != tn.ID {
		t.Fatalf("got %+v", got)
	}
	checkTime(t, "created", got.Created, stored(created))
	later := created.Add(time.Hour)
	must(t, st.PutDeployment(f.ctx, store.Deployment{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, ResourceGroup: "deploy-rg", Name: "main",
		State: "Succeeded", Document: []byte(`{"a":2}`), Created: later, Updated: later}), "replace")
	got, err = st.GetDeployment(f.ctx, tn.SubscriptionID, "Deploy-RG", "Main")
	must(t, err, "get after replace")
	if got.Name != "Main" || got.State != "Succeeded" || string(got.Document) != `{"a":2}` {
		t.Fatalf("after replace %+v", got)
	}
	checkTime(t, "created kept", got.Created, stored(created))
	checkTime(t, "updated", got.Updated, stored(later))
	wantPlainErr(t, st.PutDeployment(f.ctx, store.Deployment{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: "bad", State: "Accepted", Document: []byte("{")}), "put of a document that is not JSON")
	wantErr(t, st.PutDeployment(f.ctx, store.Deployment{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, ResourceGroup: "missing", Name: "x", State: "Accepted", Document: []byte("{}")}), store.ErrNotFound, "put into a missing group")
	must(t, st.DeleteDeployment(f.ctx, tn.SubscriptionID, "DEPLOY-RG", "main"), "delete")
	_, err = st.GetDeployment(f.ctx, tn.SubscriptionID, "Deploy-RG", "Main")
	wantErr(t, err, store.ErrNotFound, "get after delete")
	wantErr(t, st.DeleteDeployment(f.ctx, tn.SubscriptionID, "Deploy-RG", "Main"), store.ErrNotFound, "delete again")
	_, err = st.GetDeployment(f.ctx, tn.SubscriptionID, "Deploy-RG", "bad\x00name")
	wantErr(t, err, store.ErrNotFound, "get by a name no backend can hold")
}

// The subscription's own deployments and each group's are apart: one
// name may be used at each scope, and a list sees only its scope, by name.
// UnfinishedDeployments finds the Accepted and Running ones everywhere.
func testDeploymentScopes(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn, other := f.tenant(), f.tenant()
	for _, g := range []store.ResourceGroup{{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: "rg1", Location: "x"}, {TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: "rg2", Location: "x"}} {
		must(t, st.CreateResourceGroup(f.ctx, g), "create group")
	}
	put := func(tenant, sub, rg, name, state string) {
		t.Helper()
		must(t, st.PutDeployment(f.ctx, store.Deployment{TenantID: tenant, SubscriptionID: sub, ResourceGroup: rg, Name: name, State: state, Document: []byte(`{}`)}), "put "+rg+"/"+name)
	}
	put(tn.ID, tn.SubscriptionID, "", "same", "Running")
	put(tn.ID, tn.SubscriptionID, "", "b-sub", "Succeeded")
	put(tn.ID, tn.SubscriptionID, "rg1", "same", "Accepted")
	put(tn.ID, tn.SubscriptionID, "rg1", "A-first", "Failed")
	put(tn.ID, tn.SubscriptionID, "rg2", "same", "Canceled")
	put(other.ID, other.SubscriptionID, "", "theirs", "Running")
	for _, c := range []struct {
		rg   string
		want []string
	}{{"", []string{"b-sub", "same"}}, {"RG1", []string{"A-first", "same"}}, {"rg2", []string{"same"}}, {"rg3", nil}} {
		ds, err := st.ListDeployments(f.ctx, tn.SubscriptionID, c.rg)
		must(t, err, "list "+c.rg)
		if got := deploymentNames(ds); !slices.Equal(got, c.want) {
			t.Errorf("list %q = %v, want %v", c.rg, got, c.want)
		}
	}
	un, err := st.UnfinishedDeployments(f.ctx)
	must(t, err, "unfinished")
	var got []string
	for _, d := range un {
		got = append(got, d.ResourceGroup+"/"+d.Name)
	}
	slices.Sort(got)
	if want := []string{"/same", "/theirs", "rg1/same"}; !slices.Equal(got, want) {
		t.Errorf("unfinished = %v, want %v", got, want)
	}
}

// A group's deployments go with the group; the subscription's with the
// tenant.
func testDeploymentsGoWithGroupAndTenant(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	must(t, st.CreateResourceGroup(f.ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: "rg", Location: "x"}), "create group")
	for _, rg := range []string{"", "rg"} {
		must(t, st.PutDeployment(f.ctx, store.Deployment{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, ResourceGroup: rg, Name: "d", State: "Succeeded", Document: []byte(`{}`)}), "put")
	}
	must(t, st.DeleteResourceGroup(f.ctx, tn.SubscriptionID, "rg"), "delete group")
	_, err := st.GetDeployment(f.ctx, tn.SubscriptionID, "rg", "d")
	wantErr(t, err, store.ErrNotFound, "group's deployment after the group")
	_, err = st.GetDeployment(f.ctx, tn.SubscriptionID, "", "d")
	must(t, err, "subscription's deployment stays")
	must(t, st.DeleteTenant(f.ctx, tn.ID), "delete tenant")
	_, err = st.GetDeployment(f.ctx, tn.SubscriptionID, "", "d")
	wantErr(t, err, store.ErrNotFound, "subscription's deployment after the tenant")
}
