package arm

import (
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/managedidentity"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/servicebus"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// FuzzParsePath: the router never panics, and what it accepts names a
// scope that is canonical (parses again to itself) and, for an extension
// resource, lies at the start of the path.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/subscriptions", "/subscriptions/", "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590",
		"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups",
		"/SUBSCRIPTIONS/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg",
		"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/x",
		"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/providers/Microsoft.Authorization/roleAssignments",
		"/providers/Microsoft.Authorization/roleDefinitions/a", "/providers/TenantBridge.Authorization/explain",
		"/providers/Microsoft.Management/managementGroups/mg/providers/Microsoft.Authorization/denyAssignments",
		"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/providers/Microsoft.KeyVault/deletedVaults",
		"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/kv/purge",
		"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/providers/Microsoft.KeyVault/locations//deletedVaults/",
		"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/secrets",
		"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/secrets/db-password",
		"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/secrets/",
		"//", "/subscriptions//resourceGroups", "/providers/Microsoft.Authorization", "",
	} {
		f.Add(s)
	}
	h := &Handler{}
	h.register(append(h.ownProviders(), vault.Provider(nil), managedidentity.Provider(), servicebus.Provider(nil)))
	f.Fuzz(func(t *testing.T, p string) {
		ap, _, err := h.parsePath(p)
		if err != nil {
			if ap.Target != 0 {
				t.Fatalf("%q: error %v with target %d", p, err, ap.Target)
			}
			return
		}
		if ap.Target == targetSubscriptions {
			return
		}
		again, err := rbac.ParseScope(ap.Scope.String())
		if err != nil || again.String() != ap.Scope.String() {
			t.Fatalf("%q: scope %q does not parse to itself: %v", p, ap.Scope.String(), err)
		}
		if ap.Target == targetRoleAssignments || ap.Target == targetRoleDefinitions || ap.Target == targetDenyAssignments {
			s := ap.Scope.Key()
			if s != "/" && !strings.HasPrefix(strings.ToLower(p), s+"/providers/") {
				t.Fatalf("%q: scope %q is not the path's start", p, s)
			}
		}
		if ap.Sub != ap.Scope.SubscriptionID() {
			t.Fatalf("%q: subscription %q, scope's %q", p, ap.Sub, ap.Scope.SubscriptionID())
		}
	})
}
