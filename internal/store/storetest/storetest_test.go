package storetest_test

import (
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestForEach: each backend's store is fresh and isolated, even when the
// same keys are used in both.
func TestForEach(t *testing.T) {
	var ran []string
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ran = append(ran, t.Name())
		ts, err := st.ListTenants(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 0 {
			t.Fatalf("fresh store has %d tenants", len(ts))
		}
		if err := st.CreateTenant(t.Context(), store.Tenant{ID: "t", Name: "t", Domain: "t.example"}); err != nil {
			t.Fatal(err)
		}
	})
	if len(ran) == 0 {
		t.Fatal("ForEach ran nothing")
	}
}
