package rbac_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/postgres"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// lastDecision records whether the engine's last decision came from its
// cache (rbac.Observer, as the operator's metrics see it).
type lastDecision struct {
	mu     sync.Mutex
	cached bool
}

func (l *lastDecision) RBACDecision(_, cached bool, _ error) {
	l.mu.Lock()
	l.cached = cached
	l.mu.Unlock()
}

func (l *lastDecision) wasCached() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cached
}

// TestDecisionCacheIsPerTenant: a decision stays cached while other
// tenants are written to, and every write it depends on, in the scope's
// tenant, in a guest's home tenant, or to the subscription's owners, is
// seen by the very next decision.
func TestDecisionCacheIsPerTenant(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		obs := &lastDecision{}
		eng := rbac.New(st, e.dir, rbac.WithObserver(obs))
		A, B := e.a.ID, e.b.ID
		c := e.tenant("northwind")
		sub := "/subscriptions/" + e.a.SubscriptionID
		q := sub + "/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/bus/queues/commands"
		decide := func(principal, home string) (rbac.Decision, error) {
			return eng.Decide(e.ctx, rbac.Request{PrincipalID: principal, PrincipalTenantID: home, Action: sendData, DataAction: true, Scope: q})
		}
		expect := func(what, principal, home string, allowed, cached bool) {
			t.Helper()
			d, err := decide(principal, home)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if d.Allowed != allowed || obs.wasCached() != cached {
				t.Fatalf("%s: allowed %v (cached %v), want %v (cached %v): %s", what, d.Allowed, obs.wasCached(), allowed, cached, d.Because)
			}
		}

		// A local principal of A.
		local := e.sp(A)
		grant := e.assign(A, q, rbac.RoleServiceBusDataSender, local, store.PrincipalServicePrincipal, "")
		expect("first decision", local, "", true, false)
		expect("again", local, "", true, true)
		// Writes to other tenants leave it cached.
		other := e.sp(B)
		e.group(c.ID, e.sp(c.ID))
		e.assign(B, "/subscriptions/"+e.b.SubscriptionID, rbac.RoleOwner, other, store.PrincipalServicePrincipal, "")
		expect("after writes to B and C", local, "", true, true)
		// Revoking in A is seen at once.
		must(t, st.DeleteRoleAssignment(e.ctx, A, grant))
		expect("after the revocation", local, "", false, false)

		// A guest: B's service principal, granted in A through a group of
		// its home tenant B. Its groups are B's rows.
		guest := e.sp(B)
		bGroup := e.group(B, guest)
		e.assign(A, q, rbac.RoleServiceBusDataSender, bGroup, store.PrincipalGroup, B)
		expect("guest", guest, B, true, false)
		e.group(c.ID)
		expect("guest after a write to C", guest, B, true, true)
		// Leaving the group in B revokes it in A.
		must(t, e.dir.RemoveMember(e.ctx, B, bGroup, guest))
		expect("guest after leaving its home group", guest, B, false, false)
		must(t, e.dir.AddMember(e.ctx, B, bGroup, guest))
		expect("guest back in its group", guest, B, true, false)
		expect("again", guest, B, true, true)

		// A deny assignment in A wins at once over the cached grant.
		deny := e.deny(store.DenyAssignment{TenantID: A, Name: "lock", Scope: sub,
			Permissions: []store.Permission{{DataActions: []string{"*"}}},
			Principals:  []store.DenyPrincipal{{ID: store.EveryonePrincipalID, Type: store.PrincipalSystemDefined}}})
		expect("after a deny assignment", guest, B, false, false)
		must(t, st.DeleteDenyAssignment(e.ctx, A, deny))
		expect("deny removed", guest, B, true, false)

		// A custom role narrowed in A takes effect at once.
		roleID := uuid.NewString()
		role := store.RoleDefinition{TenantID: A, ID: roleID, Name: "sender", Permissions: []store.Permission{{DataActions: []string{sendData}}}}
		must(t, st.CreateRoleDefinition(e.ctx, role))
		custom := e.sp(A)
		e.assign(A, q, roleID, custom, store.PrincipalServicePrincipal, "")
		expect("custom role", custom, "", true, false)
		expect("custom role again", custom, "", true, true)
		role.Permissions = []store.Permission{{DataActions: []string{receiveData}}}
		must(t, st.UpdateRoleDefinition(e.ctx, role))
		expect("custom role narrowed", custom, "", false, false)

		// A second tenant claiming A's subscription makes the scope's owner
		// unknown at once: no cached grant survives it.
		expect("guest once more (A was written to)", guest, B, true, false)
		expect("and again", guest, B, true, true)
		must(t, st.CreateTenant(e.ctx, store.Tenant{ID: uuid.NewString(), Name: "claimant", Domain: "claimant.onmicrosoft.com", SubscriptionID: e.a.SubscriptionID}))
		if d, err := decide(guest, B); !errors.Is(err, rbac.ErrUnknownScope) {
			t.Fatalf("after a second tenant took A's subscription: %v, %v", d.Allowed, err)
		}
	})
}

// TestDecisionCacheAcrossNodes: on PostgreSQL a node's cached decision
// does not outlive another node's revocation by more than the change
// notification, and the guest case too (its home tenant written on the
// other node).
func TestDecisionCacheAcrossNodes(t *testing.T) {
	dsn := storetest.PostgresSchemaDSN(t)
	open := func() store.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := postgres.Open(ctx, dsn)
		must(t, err)
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	st1 := open()
	st2 := open()
	e := newEnv(t, st1)
	obs := &lastDecision{}
	eng := rbac.New(st1, e.dir, rbac.WithObserver(obs))
	dir2, err := directory.New(st2, make([]byte, 32), make([]byte, 32))
	must(t, err)
	A, B := e.a.ID, e.b.ID
	q := "/subscriptions/" + e.a.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/bus/queues/status"
	guest := e.sp(B)
	bGroup := e.group(B, guest)
	local := e.sp(A)
	grant := e.assign(A, q, rbac.RoleServiceBusDataReceiver, local, store.PrincipalServicePrincipal, "")
	e.assign(A, q, rbac.RoleServiceBusDataReceiver, bGroup, store.PrincipalGroup, B)
	decide := func(principal, home string) bool {
		d, err := eng.Decide(e.ctx, rbac.Request{PrincipalID: principal, PrincipalTenantID: home, Action: receiveData, DataAction: true, Scope: q})
		must(t, err)
		return d.Allowed
	}
	// waitDenied polls node 1 until it refuses; the notification takes
	// milliseconds, the bound is generous for a loaded machine.
	waitDenied := func(what, principal, home string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); decide(principal, home); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: node 1 still allows after 10 s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !decide(local, "") || !decide(guest, B) {
		t.Fatal("not allowed before the revocations")
	}
	if decide(local, ""); !obs.wasCached() {
		t.Fatal("the decision was not cached")
	}
	must(t, st2.DeleteRoleAssignment(e.ctx, A, grant))
	waitDenied("revocation on node 2", local, "")
	must(t, dir2.RemoveMember(e.ctx, B, bGroup, guest))
	waitDenied("guest leaving its group on node 2", guest, B)
}
