package arm

import (
	"errors"
	"net/http"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// A tenant runs at most perTenant deployments here at once (429 for one
// more, other tenants unaffected), and a deployment already running here
// is not registered twice (DeploymentActive): two PUTs of one name that
// raced past the record's check would otherwise both run, the first no
// longer cancellable.
func TestDeploymentRunsBounded(t *testing.T) {
	rs := &deploymentRuns{perTenant: 2}
	mk := func(tenant, name string) *run {
		return &run{rec: store.Deployment{TenantID: tenant}, doc: &deploymentDoc{ID: "/x/" + name, Name: name}}
	}
	wantStatus := func(err error, status int, code string) {
		t.Helper()
		var re *rp.Error
		if !errors.As(err, &re) || re.Status != status || re.Code != code {
			t.Fatalf("got %v, want %d %s", err, status, code)
		}
	}
	a1, a2 := mk("A", "one"), mk("A", "two")
	if err := rs.add("/x/one", a1); err != nil {
		t.Fatal(err)
	}
	wantStatus(rs.add("/X/ONE", mk("A", "one")), http.StatusConflict, "DeploymentActive")
	if err := rs.add("/x/two", a2); err != nil {
		t.Fatal(err)
	}
	wantStatus(rs.add("/x/three", mk("a", "three")), http.StatusTooManyRequests, "TooManyRequests")
	if err := rs.add("/x/b", mk("B", "b")); err != nil {
		t.Fatalf("another tenant: %v", err)
	}
	rs.remove("/x/one", a1)
	if err := rs.add("/x/three", mk("A", "three")); err != nil {
		t.Fatalf("after one finished: %v", err)
	}
}
