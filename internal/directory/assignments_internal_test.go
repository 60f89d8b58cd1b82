package directory

import (
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// TestRolesKey checks that GrantedRoles' keys are as many as the lookups
// they stand for: any two that differ in kind, principal, resource or
// version (ids in another case or form included) differ, and the common
// ones are compact.
func TestRolesKey(t *testing.T) {
	const p, r = "5c3b4ae2-6f0e-4c2a-9d1b-7e8a1f2c4b90", "80369ed6-5f11-4dd9-bef3-692475845e77"
	sp := func(id string, version int64) *ServicePrincipal { return &ServicePrincipal{ID: id, Version: version} }
	type lookup struct {
		kind      store.ObjectKind
		principal string
		resource  *ServicePrincipal
	}
	lookups := []lookup{
		{store.KindServicePrincipal, p, sp(r, 1)},
		{store.KindServicePrincipal, p, sp(r, 2)},
		{store.KindServicePrincipal, p, sp(r, -1)},
		{store.KindServicePrincipal, p, sp(r, 1<<40)},
		{store.KindUser, p, sp(r, 1)},
		{store.KindGroup, p, sp(r, 1)},
		{store.KindApplication, p, sp(r, 1)},
		{store.KindServicePrincipal, r, sp(p, 1)},
		{store.KindServicePrincipal, strings.ToUpper(p), sp(r, 1)},
		{store.KindServicePrincipal, p, sp(strings.ToUpper(r), 1)},
		{store.KindServicePrincipal, "{" + p + "}", sp(r, 1)},
		{store.KindServicePrincipal, strings.ReplaceAll(p, "-", ""), sp(r, 1)},
		{store.KindServicePrincipal, "not an id", sp(r, 1)},
		{"", p, sp(r, 1)},
	}
	seen := map[string]lookup{}
	for _, l := range lookups {
		k := rolesKey(l.kind, l.principal, l.resource)
		if other, ok := seen[k]; ok {
			t.Errorf("%+v and %+v share the key %q", l, other, k)
		}
		seen[k] = l
		if again := rolesKey(l.kind, strings.Clone(l.principal), sp(strings.Clone(l.resource.ID), l.resource.Version)); again != k {
			t.Errorf("%+v: key %q, then %q", l, k, again)
		}
	}
	if k := rolesKey(store.KindServicePrincipal, p, sp(r, 1)); len(k) > 48 {
		t.Errorf("a service principal's key is %d bytes", len(k))
	}
}
