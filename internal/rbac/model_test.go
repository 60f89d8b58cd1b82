package rbac_test

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// model is an independent, brute-force evaluator: it keeps its own copy of
// memberships and assignments, walks groups by recursion, decides ancestry
// by string prefixes and matches permissions with regular expressions.
type model struct {
	memberOf    map[string][]string // member -> groups it is directly in (tenant A)
	assignments []store.RoleAssignment
	denies      []store.DenyAssignment
	roles       map[string][]store.Permission // lower-case role id -> permissions
}

func (m *model) closure(id string, into map[string]bool) {
	if into[id] {
		return
	}
	into[id] = true
	for _, g := range m.memberOf[id] {
		m.closure(g, into)
	}
}

func wildcard(p string) *regexp.Regexp {
	return regexp.MustCompile("(?is)^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$")
}

func anyMatches(ps []string, op string) bool {
	for _, p := range ps {
		if wildcard(p).MatchString(op) {
			return true
		}
	}
	return false
}

func modelPermits(perms []store.Permission, op string, data bool) bool {
	for _, p := range perms {
		yes, no := p.Actions, p.NotActions
		if data {
			yes, no = p.DataActions, p.NotDataActions
		}
		if anyMatches(yes, op) && !anyMatches(no, op) {
			return true
		}
	}
	return false
}

func covers(scope, target string) bool {
	s, t := strings.ToLower(scope), strings.ToLower(target)
	return s == "/" || s == t || strings.HasPrefix(t, s+"/")
}

func (m *model) allowed(tenantA, principal, home, op string, data bool, target string) bool {
	ids := map[string]bool{}
	if home == tenantA {
		m.closure(principal, ids)
	} else {
		ids[principal] = true // the model's other tenant has no groups
	}
	for _, d := range m.denies {
		if !covers(d.Scope, target) || (d.DoNotApplyToChildScopes && !strings.EqualFold(d.Scope, target)) {
			continue
		}
		excluded := false
		for _, x := range d.ExcludePrincipals {
			excluded = excluded || ids[x.ID]
		}
		hit := false
		for _, p := range d.Principals {
			hit = hit || ids[p.ID] || (p.ID == store.EveryonePrincipalID && p.Type == store.PrincipalSystemDefined)
		}
		if !excluded && hit && modelPermits(d.Permissions, op, data) {
			return false
		}
	}
	for _, a := range m.assignments {
		pt := a.PrincipalTenantID
		if pt == "" {
			pt = tenantA
		}
		if pt == home && ids[a.PrincipalID] && covers(a.Scope, target) && modelPermits(m.roles[strings.ToLower(a.RoleDefinitionID)], op, data) {
			return true
		}
	}
	return false
}

// randomCase changes the case of a scope's letters at random.
func randomCase(r *rand.Rand, s string) string {
	switch r.IntN(3) {
	case 0:
		return strings.ToUpper(s)
	case 1:
		return strings.ToLower(s)
	}
	return s
}

// TestDecideAgainstModel checks Decide against the model on random
// assignments, deny assignments, group graphs and requests: the seed of
// "isolation, proved".
func TestDecideAgainstModel(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		r := rand.New(rand.NewPCG(seed, 4))
		e := newEnv(t, st)
		A, B := e.a.ID, e.b.ID
		m := &model{memberOf: map[string][]string{}, roles: map[string][]store.Permission{}}

		sub := "/subscriptions/" + e.a.SubscriptionID
		rg1, rg2 := sub+"/resourceGroups/one", sub+"/resourceGroups/two"
		ns := rg1 + "/providers/Microsoft.ServiceBus/namespaces/bus"
		scopes := []string{sub, rg1, rg2, ns, ns + "/queues/q1", ns + "/queues/q2", ns + "/topics/t/subscriptions/s",
			rg2 + "/providers/Microsoft.KeyVault/vaults/kv", rg1 + "/providers/Microsoft.KeyVault/vaults/kv1"}
		bScopes := []string{"/subscriptions/" + e.b.SubscriptionID, "/subscriptions/" + e.b.SubscriptionID + "/resourceGroups/one"}
		ops := []struct {
			op   string
			data bool
		}{
			{"Microsoft.ServiceBus/namespaces/queues/read", false}, {"Microsoft.ServiceBus/namespaces/queues/write", false},
			{"Microsoft.ServiceBus/namespaces/messages/send/action", true}, {"Microsoft.ServiceBus/namespaces/messages/receive/action", true},
			{"Microsoft.KeyVault/vaults/secrets/getSecret/action", true}, {"Microsoft.KeyVault/vaults/secrets/setSecret/action", true},
			{"Microsoft.KeyVault/vaults/read", false}, {"Microsoft.Authorization/roleAssignments/write", false},
			{"Microsoft.Authorization/roleAssignments/delete", false}, {"Microsoft.Resources/subscriptions/resourceGroups/read", false},
			{"Microsoft.Solutions/applications/refreshPermissions/action", false}, {"Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", false},
		}
		roleIDs := []string{rbac.RoleOwner, rbac.RoleContributor, rbac.RoleReader, rbac.RoleUserAccessAdministrator,
			rbac.RoleKeyVaultAdministrator, rbac.RoleKeyVaultSecretsOfficer, rbac.RoleKeyVaultSecretsUser,
			rbac.RoleServiceBusDataOwner, rbac.RoleServiceBusDataSender, rbac.RoleServiceBusDataReceiver,
			rbac.RoleManagedIdentityOperator, rbac.RoleManagedApplicationOperator}
		for _, id := range roleIDs {
			role, _ := rbac.BuiltInRole(id)
			m.roles[id] = role.Permissions
		}
		custom := uuid.NewString()
		customPerms := []store.Permission{{Actions: []string{"*/read"}, NotActions: []string{"Microsoft.KeyVault/*"},
			DataActions: []string{"Microsoft.ServiceBus/*", "Microsoft.KeyVault/vaults/secrets/*"}, NotDataActions: []string{"*/send/action"}}}
		must(t, st.CreateRoleDefinition(e.ctx, store.RoleDefinition{TenantID: A, ID: custom, Name: "custom", Permissions: customPerms}))
		m.roles[custom] = customPerms
		roleIDs = append(roleIDs, custom, uuid.NewString()) // and one that does not exist

		// Principals: service principals and a group graph without cycles
		// (group j may join group i only when j < i).
		var sps, groups []string
		for range 6 {
			sps = append(sps, e.sp(A))
		}
		for i := range 5 {
			g := e.group(A)
			for j := range i {
				if r.IntN(3) == 0 {
					must(t, e.dir.AddMember(e.ctx, A, g, groups[j]))
					m.memberOf[groups[j]] = append(m.memberOf[groups[j]], g)
				}
			}
			for _, sp := range sps {
				if r.IntN(4) == 0 {
					must(t, e.dir.AddMember(e.ctx, A, g, sp))
					m.memberOf[sp] = append(m.memberOf[sp], g)
				}
			}
			groups = append(groups, g)
		}
		foreign := e.sp(B)
		principals := append(append([]string{}, sps...), groups...)

		for range 40 {
			a := store.RoleAssignment{TenantID: A, ID: uuid.NewString(), Scope: randomCase(r, scopes[r.IntN(len(scopes))]),
				RoleDefinitionID: roleIDs[r.IntN(len(roleIDs))], PrincipalType: store.PrincipalServicePrincipal}
			if r.IntN(8) == 0 {
				a.PrincipalID, a.PrincipalTenantID = foreign, B
			} else {
				a.PrincipalID = principals[r.IntN(len(principals))]
			}
			if err := st.CreateRoleAssignment(e.ctx, a); errors.Is(err, store.ErrConflict) {
				continue
			} else {
				must(t, err)
			}
			m.assignments = append(m.assignments, a)
		}
		// Assignments in tenant B, which must never count for A's scopes.
		for range 5 {
			err := st.CreateRoleAssignment(e.ctx, store.RoleAssignment{TenantID: B, ID: uuid.NewString(), Scope: bScopes[r.IntN(2)],
				RoleDefinitionID: rbac.RoleOwner, PrincipalID: principals[r.IntN(len(principals))], PrincipalType: store.PrincipalServicePrincipal,
				PrincipalTenantID: A})
			if !errors.Is(err, store.ErrConflict) {
				must(t, err)
			}
		}
		denyPerms := [][]store.Permission{
			{{Actions: []string{"*"}, NotActions: []string{"*/read"}}},
			{{DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}}},
			{{DataActions: []string{"*/receive/action"}, Actions: []string{"Microsoft.Authorization/*"}}},
		}
		for i := range 4 {
			d := store.DenyAssignment{TenantID: A, ID: uuid.NewString(), Name: "deny " + string(rune('a'+i)), Scope: randomCase(r, scopes[r.IntN(len(scopes))]),
				Permissions: denyPerms[r.IntN(len(denyPerms))], DoNotApplyToChildScopes: r.IntN(3) == 0}
			if r.IntN(3) == 0 {
				d.Principals = []store.DenyPrincipal{{ID: store.EveryonePrincipalID, Type: store.PrincipalSystemDefined}}
			} else {
				d.Principals = []store.DenyPrincipal{{ID: principals[r.IntN(len(principals))], Type: store.PrincipalServicePrincipal}}
			}
			if r.IntN(2) == 0 {
				d.ExcludePrincipals = []store.DenyPrincipal{{ID: principals[r.IntN(len(principals))], Type: store.PrincipalGroup}}
			}
			must(t, st.CreateDenyAssignment(e.ctx, d))
			m.denies = append(m.denies, d)
		}

		n := 3000
		if testing.Short() {
			n = 300
		}
		allowed := 0
		for i := range n {
			req := rbac.Request{Scope: randomCase(r, scopes[r.IntN(len(scopes))])}
			o := ops[r.IntN(len(ops))]
			req.Action, req.DataAction = o.op, o.data
			home := A
			switch k := r.IntN(10); {
			case k == 0:
				req.PrincipalID, req.PrincipalTenantID, home = foreign, B, B
			case k == 1:
				req.PrincipalID = foreign // claimed as A's: must get nothing
			default:
				req.PrincipalID = sps[r.IntN(len(sps))]
			}
			d, err := e.eng.Decide(e.ctx, req)
			if err != nil {
				t.Fatalf("request %d %+v: %v", i, req, err)
			}
			want := m.allowed(A, req.PrincipalID, home, req.Action, req.DataAction, req.Scope)
			if d.Allowed != want {
				t.Fatalf("request %d %+v: Decide says %v (%s), the model %v", i, req, d.Allowed, d.Because, want)
			}
			if d.Allowed {
				allowed++
				if a := d.Because.Assignment; a == nil || a.TenantID != A || !covers(a.Scope, req.Scope) {
					t.Fatalf("request %d: granted by %+v", i, a)
				}
			}
		}
		t.Logf("%d requests, %d allowed", n, allowed)
		if allowed == 0 || allowed == n {
			t.Errorf("degenerate run: %d of %d allowed", allowed, n)
		}
	})
}

func BenchmarkDecide(b *testing.B) {
	st := storetest.SQLite(b)
	e := newEnv(b, st)
	A := e.a.ID
	sub := "/subscriptions/" + e.a.SubscriptionID
	q := sub + "/resourceGroups/shared/providers/Microsoft.ServiceBus/namespaces/bus/queues/commands"
	sp := e.sp(A)
	g1 := e.group(A, sp)
	g2 := e.group(A, g1)
	e.group(A, g2)
	for range 50 {
		e.assign(A, sub, rbac.RoleReader, uuid.NewString(), store.PrincipalUser, "")
	}
	e.assign(A, sub+"/resourceGroups/shared", rbac.RoleServiceBusDataSender, g2, store.PrincipalGroup, "")
	e.deny(store.DenyAssignment{TenantID: A, Name: "lock", Scope: sub, Permissions: []store.Permission{{Actions: []string{"*/delete"}}},
		Principals: []store.DenyPrincipal{{ID: store.EveryonePrincipalID, Type: store.PrincipalSystemDefined}}})
	req := rbac.Request{PrincipalID: sp, Action: sendData, DataAction: true, Scope: q}
	b.ReportAllocs()
	for b.Loop() {
		d, err := e.eng.Decide(e.ctx, req)
		if err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}
