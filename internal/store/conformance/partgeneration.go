package conformance

import (
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// testPartGeneration: a committed write moves the generation of every
// part whose rows it changed (store.Store.PartGeneration) and may leave
// other tenants' alone; a write that cannot name its parts, and a
// transaction with such a write or with no write at all, moves every
// part. A part read by a cache that a write failed to move would let the
// cache serve a revoked grant, so each kind of write the RBAC decisions
// and directory lookups depend on is checked here.
func testPartGeneration(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	a, b, c := f.tenant(), f.tenant(), f.tenant()
	A, B, C := store.TenantPart(a.ID), store.TenantPart(b.ID), store.TenantPart(c.ID)
	// effect runs fn and checks that each of moved has a generation past
	// the one read before, and that none of still has.
	effect := func(what string, moved, still []string, fn func()) {
		t.Helper()
		before := st.Generation()
		fn()
		if st.Generation() <= before {
			t.Errorf("%s: the generation did not move", what)
		}
		for _, p := range moved {
			if st.PartGeneration(p) <= before {
				t.Errorf("%s: part %s did not move", what, p)
			}
		}
		for _, p := range still {
			if g := st.PartGeneration(p); g > before {
				t.Errorf("%s: part %s moved (%d > %d)", what, p, g, before)
			}
		}
	}
	both := []string{A, B}
	onlyA := []string{A}
	others := []string{B, C, store.SubscriptionPart(a.SubscriptionID)}

	var grp, sp store.Object
	effect("creating an object", onlyA, others, func() { grp = f.object(a.ID, store.KindGroup, "", nil) })
	effect("creating another", onlyA, others, func() { sp = f.object(a.ID, store.KindServicePrincipal, "", nil) })
	if st.PartGeneration(strings.ToUpper(A)) != st.PartGeneration(A) {
		t.Error("a tenant's part depends on the letter case of its id")
	}
	effect("updating an object", onlyA, others, func() {
		grp.DisplayName = "renamed"
		_, err := st.UpdateObject(f.ctx, grp)
		must(t, err, "update")
	})
	effect("adding a link", onlyA, others, func() { f.link(a.ID, store.LinkMember, grp.ID, sp) })
	effect("removing a link", onlyA, others, func() {
		must(t, st.RemoveLink(f.ctx, a.ID, store.LinkMember, grp.ID, sp.ID), "remove link")
	})
	var ara store.AppRoleAssignment
	effect("assigning an app role", onlyA, others, func() { ara = f.assign(a.ID, grp, sp, newID()) })
	effect("removing an app role assignment", onlyA, others, func() {
		must(t, st.DeleteAppRoleAssignment(f.ctx, a.ID, ara.ID), "delete app role assignment")
	})

	role := store.RoleDefinition{TenantID: a.ID, ID: newID(), Name: "part role", Permissions: []store.Permission{{Actions: []string{"A.B/c/read"}}}}
	effect("creating a role definition", onlyA, others, func() { must(t, st.CreateRoleDefinition(f.ctx, role), "create role") })
	effect("updating a role definition", onlyA, others, func() {
		role.Permissions = []store.Permission{{Actions: []string{"A.B/c/write"}}}
		must(t, st.UpdateRoleDefinition(f.ctx, role), "update role")
	})
	scope := "/subscriptions/" + a.SubscriptionID
	// A role assignment of a guest (a principal of B) in A is A's row; it
	// moves B too, the principal's home, whose deletion removes it.
	guest := store.RoleAssignment{TenantID: a.ID, ID: newID(), Scope: scope, RoleDefinitionID: role.ID,
		PrincipalID: newID(), PrincipalType: store.PrincipalServicePrincipal, PrincipalTenantID: b.ID, CreatedBy: "t"}
	effect("assigning a role to a guest", both, []string{C}, func() { must(t, st.CreateRoleAssignment(f.ctx, guest), "assign") })
	effect("removing the guest's assignment", onlyA, others, func() {
		must(t, st.DeleteRoleAssignment(f.ctx, a.ID, guest.ID), "unassign")
	})
	deny := store.DenyAssignment{TenantID: a.ID, ID: newID(), Name: "part deny", Scope: scope,
		Permissions: []store.Permission{{Actions: []string{"*"}}},
		Principals:  []store.DenyPrincipal{{ID: store.EveryonePrincipalID, Type: store.PrincipalSystemDefined}}}
	effect("creating a deny assignment", onlyA, others, func() { must(t, st.CreateDenyAssignment(f.ctx, deny), "deny") })
	effect("removing it", onlyA, others, func() { must(t, st.DeleteDenyAssignment(f.ctx, a.ID, deny.ID), "undeny") })
	effect("deleting a role definition", onlyA, others, func() {
		must(t, st.DeleteRoleDefinition(f.ctx, a.ID, role.ID), "delete role")
	})

	rgID := scope + "/resourceGroups/parts"
	effect("creating a resource group", onlyA, []string{B, C}, func() {
		must(t, st.CreateResourceGroup(f.ctx, store.ResourceGroup{TenantID: a.ID, SubscriptionID: a.SubscriptionID, Name: "parts", Location: "x"}), "create group")
	})
	effect("creating a resource", onlyA, []string{B, C}, func() {
		must(t, st.CreateResource(f.ctx, store.Resource{TenantID: a.ID, ID: rgID + "/providers/A.B/c/d", Type: "A.B/c", Name: "d"}), "create resource")
	})

	// A new tenant moves itself and its subscription: the subscription's
	// tenants (RBAC's scope owner) are read by every decision under it.
	before := st.Generation()
	var d store.Tenant
	effect("creating a tenant", nil, []string{A, B, C}, func() { d = f.tenant() })
	if st.PartGeneration(store.TenantPart(d.ID)) <= before {
		t.Error("creating a tenant did not move its part")
	}
	if st.PartGeneration(store.SubscriptionPart(strings.ToUpper(d.SubscriptionID))) <= before {
		t.Error("creating a tenant did not move its subscription's part")
	}
	if st.PartGeneration(store.TenantRefPart(d.ID)) <= before || st.PartGeneration(store.TenantRefPart(strings.ToUpper(d.Domain))) <= before {
		t.Error("creating a tenant did not move the parts of its id and domain")
	}
	before = st.Generation()
	claim := store.Tenant{ID: newID(), Name: "claim" + newID()[:8], Domain: "claim" + newID()[:8] + ".onmicrosoft.com", SubscriptionID: a.SubscriptionID}
	must(t, st.CreateTenant(f.ctx, claim), "second tenant on A's subscription")
	if st.PartGeneration(store.SubscriptionPart(a.SubscriptionID)) <= before {
		t.Error("a second tenant holding A's subscription did not move the subscription's part")
	}

	// Transactions: the union of their writes' parts, after the commit.
	effect("a transaction writing to A", onlyA, others, func() {
		must(t, st.InTx(f.ctx, func(tx store.Store) error {
			g := st.PartGeneration(A)
			o := store.Object{TenantID: a.ID, ID: newID(), Kind: store.KindGroup, DisplayName: "in tx", Data: []byte(`{}`)}
			if err := tx.CreateObject(f.ctx, o); err != nil {
				return err
			}
			if st.PartGeneration(A) != g {
				t.Error("a part moved before its transaction committed")
			}
			return nil
		}), "tx")
	})
	effect("a transaction writing to A and B", both, []string{C}, func() {
		must(t, st.InTx(f.ctx, func(tx store.Store) error {
			if err := tx.CreateObject(f.ctx, store.Object{TenantID: a.ID, ID: newID(), Kind: store.KindGroup, DisplayName: "x", Data: []byte(`{}`)}); err != nil {
				return err
			}
			return tx.InTx(f.ctx, func(tx store.Store) error {
				return tx.CreateObject(f.ctx, store.Object{TenantID: b.ID, ID: newID(), Kind: store.KindGroup, DisplayName: "y", Data: []byte(`{}`)})
			})
		}), "tx")
	})
	effect("a transaction without writes", []string{A, B, C}, nil, func() {
		must(t, st.InTx(f.ctx, func(tx store.Store) error {
			_, err := tx.GetObject(f.ctx, a.ID, store.KindGroup, grp.ID)
			return err
		}), "read-only tx")
	})
	effect("a transaction with a write that names no tenant", []string{A, B, C}, nil, func() {
		must(t, st.InTx(f.ctx, func(tx store.Store) error {
			if err := tx.CreateObject(f.ctx, store.Object{TenantID: a.ID, ID: newID(), Kind: store.KindGroup, DisplayName: "z", Data: []byte(`{}`)}); err != nil {
				return err
			}
			return tx.DeleteTenant(f.ctx, claim.ID)
		}), "tx")
	})
	effect("a write that names no tenant", []string{A, B, C}, nil, func() {
		must(t, st.DeleteTenant(f.ctx, d.ID), "delete tenant")
	})
	still := func(what string, fn func()) {
		t.Helper()
		before := st.Generation()
		fn()
		for _, p := range []string{A, B, C} {
			if st.PartGeneration(p) > before {
				t.Errorf("%s moved part %s", what, p)
			}
		}
	}
	still("reading", func() {
		_, err := st.ListRoleAssignments(f.ctx, store.RoleAssignmentQuery{TenantID: a.ID})
		must(t, err, "list")
		_, err = st.TenantsBySubscription(f.ctx, a.SubscriptionID)
		must(t, err, "tenants by subscription")
	})
}
