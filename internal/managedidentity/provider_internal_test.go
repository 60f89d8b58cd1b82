package managedidentity

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
)

// TestOneFICWriterPerIdentity: a second federated-credential write under an
// identity whose write is under way is refused with Managed Identity's
// 409; another identity's write is not held up; once the first ends, the
// next goes through.
func TestOneFICWriterPerIdentity(t *testing.T) {
	h := &provider{}
	rq := func(name string) *rp.Request {
		return &rp.Request{Path: rp.Path{Sub: "8d2b4ea3-0c39-4c7e-9c6e-0f1f5d6f1e2a", RG: "Apps", Name: name}}
	}
	done, err := h.oneFICWriter(rq("ci-Deployer"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.oneFICWriter(rq("ci-deployer")) // the same identity, another case
	var ae *rp.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity" ||
		!strings.Contains(ae.Message, "'/subscriptions/8d2b4ea3-0c39-4c7e-9c6e-0f1f5d6f1e2a/resourcegroups/apps/providers/microsoft.managedidentity/userassignedidentities/ci-deployer'") {
		t.Fatalf("concurrent write: %v", err)
	}
	other, err := h.oneFICWriter(rq("another"))
	if err != nil {
		t.Fatalf("another identity's write: %v", err)
	}
	other()
	done()
	again, err := h.oneFICWriter(rq("ci-deployer"))
	if err != nil {
		t.Fatalf("a write after the first ended: %v", err)
	}
	again()
}
