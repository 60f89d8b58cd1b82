package rbac_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

const (
	sendData    = "Microsoft.ServiceBus/namespaces/messages/send/action"
	receiveData = "Microsoft.ServiceBus/namespaces/messages/receive/action"
	getSecret   = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
)

func TestDecide(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		A := e.a.ID
		sub := "/subscriptions/" + e.a.SubscriptionID
		rg := sub + "/resourceGroups/shared"
		rg2 := sub + "/resourceGroups/other"
		ns := rg + "/providers/Microsoft.ServiceBus/namespaces/bus"
		q := ns + "/queues/commands"
		kv := rg + "/providers/Microsoft.KeyVault/vaults/kv"
		kv2 := rg + "/providers/Microsoft.KeyVault/vaults/kv2"
		bSub := "/subscriptions/" + e.b.SubscriptionID

		owner, contrib, sender := e.sp(A), e.sp(A), e.sp(A)
		member := e.sp(A)
		inner := e.group(A, member)
		outer := e.group(A, inner)
		denied, kvUser, excluded, child, custom := e.sp(A), e.sp(A), e.sp(A), e.sp(A), e.sp(A)
		exclGroup := e.group(A, excluded)
		spB := e.sp(e.b.ID)
		SP, G := store.PrincipalServicePrincipal, store.PrincipalGroup

		e.assign(A, sub, rbac.RoleOwner, owner, SP, "")
		e.assign(A, strings.ToUpper(sub), rbac.RoleContributor, contrib, SP, "")
		senderAssignment := e.assign(A, ns, rbac.RoleServiceBusDataSender, sender, SP, "")
		receiverAssignment := e.assign(A, rg, rbac.RoleServiceBusDataReceiver, outer, G, "")
		e.assign(A, sub, rbac.RoleOwner, denied, SP, "")
		e.assign(A, rg, rbac.RoleKeyVaultSecretsUser, kvUser, SP, "")
		e.assign(A, rg, rbac.RoleKeyVaultSecretsUser, exclGroup, G, "")
		e.assign(A, rg, rbac.RoleKeyVaultSecretsUser, child, SP, "")
		e.assign(A, q, rbac.RoleServiceBusDataSender, spB, SP, e.b.ID)
		peeker := uuid.NewString()
		must(t, st.CreateRoleDefinition(e.ctx, store.RoleDefinition{TenantID: A, ID: peeker, Name: "Queue Peeker",
			Permissions: []store.Permission{{
				Actions:     []string{"Microsoft.ServiceBus/namespaces/queues/read"},
				DataActions: []string{"Microsoft.ServiceBus/*"}, NotDataActions: []string{"Microsoft.ServiceBus/*/send/action"},
			}}}))
		e.assign(A, ns, peeker, custom, SP, "")

		blockWrites := e.deny(store.DenyAssignment{TenantID: A, Name: "managed app lock", Scope: rg,
			Permissions: []store.Permission{{Actions: []string{"*"}, NotActions: []string{"*/read"}}},
			Principals:  []store.DenyPrincipal{{ID: denied, Type: SP}}})
		everyone := e.deny(store.DenyAssignment{TenantID: A, Name: "vault lock", Scope: kv,
			Permissions:       []store.Permission{{DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}}},
			Principals:        []store.DenyPrincipal{{ID: store.EveryonePrincipalID, Type: store.PrincipalSystemDefined}},
			ExcludePrincipals: []store.DenyPrincipal{{ID: exclGroup, Type: G}}})
		e.deny(store.DenyAssignment{TenantID: A, Name: "rg only", Scope: rg, DoNotApplyToChildScopes: true,
			Permissions: []store.Permission{{DataActions: []string{getSecret}}},
			Principals:  []store.DenyPrincipal{{ID: child, Type: SP}}})

		tests := []struct {
			name      string
			req       rbac.Request
			allowed   bool
			because   string // substring of the explanation
			denyID    string
			grantedBy string
			path      []string
		}{
			{"owner inherits to a queue", rbac.Request{PrincipalID: owner, Action: "Microsoft.Authorization/roleAssignments/delete", Scope: q}, true, `"Owner"`, "", "", []string{owner}},
			{"contributor's NotActions */Delete matches delete", rbac.Request{PrincipalID: contrib, Action: "Microsoft.Authorization/roleAssignments/delete", Scope: rg}, false, "no assignment grants action Microsoft.Authorization/roleAssignments/delete at " + rg, "", "", nil},
			{"contributor's NotActions */Write", rbac.Request{PrincipalID: contrib, Action: "Microsoft.Authorization/roleAssignments/write", Scope: rg}, false, "no assignment", "", "", nil},
			{"contributor writes queues", rbac.Request{PrincipalID: contrib, Action: "Microsoft.ServiceBus/namespaces/queues/write", Scope: q}, true, `"Contributor"`, "", "", nil},
			{"actions never grant data actions", rbac.Request{PrincipalID: owner, Action: sendData, DataAction: true, Scope: q}, false, "no assignment grants data action", "", "", nil},
			{"sender's */send/action spans segments", rbac.Request{PrincipalID: sender, Action: sendData, DataAction: true, Scope: q}, true, `"Azure Service Bus Data Sender"`, "", senderAssignment, []string{sender}},
			{"wildcards are case-insensitive", rbac.Request{PrincipalID: sender, Action: strings.ToUpper(sendData), DataAction: true, Scope: q}, true, "", "", senderAssignment, nil},
			{"sender cannot receive", rbac.Request{PrincipalID: sender, Action: receiveData, DataAction: true, Scope: q}, false, "no assignment", "", "", nil},
			{"nothing flows up the hierarchy", rbac.Request{PrincipalID: sender, Action: sendData, DataAction: true, Scope: rg}, false, "no assignment", "", "", nil},
			{"sender reads queues (an action)", rbac.Request{PrincipalID: sender, Action: "Microsoft.ServiceBus/namespaces/queues/read", Scope: q}, true, "", "", senderAssignment, nil},
			{"nested groups, with the path", rbac.Request{PrincipalID: member, Action: receiveData, DataAction: true, Scope: q}, true, member + " → " + inner + " → " + outer, "", receiverAssignment, []string{member, inner, outer}},
			{"deny beats Owner", rbac.Request{PrincipalID: denied, Action: "Microsoft.ServiceBus/namespaces/write", Scope: ns}, false, `deny assignment "managed app lock"`, blockWrites, "", nil},
			{"deny's NotActions leave reads", rbac.Request{PrincipalID: denied, Action: "Microsoft.ServiceBus/namespaces/read", Scope: ns}, true, "", "", "", nil},
			{"deny ends at its scope", rbac.Request{PrincipalID: denied, Action: "Microsoft.Storage/storageAccounts/write", Scope: rg2}, true, "", "", "", nil},
			{"everyone deny", rbac.Request{PrincipalID: kvUser, Action: getSecret, DataAction: true, Scope: kv}, false, "for everyone", everyone, "", nil},
			{"everyone deny does not touch a sibling", rbac.Request{PrincipalID: kvUser, Action: getSecret, DataAction: true, Scope: kv2}, true, "", "", "", nil},
			{"excludePrincipals through a group", rbac.Request{PrincipalID: excluded, Action: getSecret, DataAction: true, Scope: kv}, true, excluded + " → " + exclGroup, "", "", []string{excluded, exclGroup}},
			{"doNotApplyToChildScopes: at the scope", rbac.Request{PrincipalID: child, Action: getSecret, DataAction: true, Scope: rg}, false, `"rg only"`, "", "", nil},
			{"doNotApplyToChildScopes: below it", rbac.Request{PrincipalID: child, Action: getSecret, DataAction: true, Scope: kv2}, true, "", "", "", nil},
			{"cross-tenant principal in the tenant that assigned it", rbac.Request{PrincipalID: spB, PrincipalTenantID: e.b.ID, Action: sendData, DataAction: true, Scope: q}, true, "", "", "", nil},
			{"cross-tenant principal claimed as local", rbac.Request{PrincipalID: spB, Action: sendData, DataAction: true, Scope: q}, false, "no assignment", "", "", nil},
			{"cross-tenant assignment counts only for the assigning tenant", rbac.Request{PrincipalID: spB, PrincipalTenantID: e.b.ID, Action: "Microsoft.ServiceBus/namespaces/queues/read", Scope: bSub + "/resourceGroups/shared/providers/Microsoft.ServiceBus/namespaces/bus/queues/commands"}, false, "no assignment", "", "", nil},
			{"custom role: DataActions", rbac.Request{PrincipalID: custom, Action: receiveData, DataAction: true, Scope: q}, true, `"Queue Peeker"`, "", "", nil},
			{"custom role: NotDataActions", rbac.Request{PrincipalID: custom, Action: sendData, DataAction: true, Scope: q}, false, "no assignment", "", "", nil},
			{"scope in another case", rbac.Request{PrincipalID: sender, Action: sendData, DataAction: true, Scope: strings.ToUpper(q)}, true, "", "", senderAssignment, nil},
			{"scope with the tenant named", rbac.Request{PrincipalID: sender, TenantID: A, Action: sendData, DataAction: true, Scope: q}, true, "", "", "", nil},
		}
		for _, tc := range tests {
			d, err := e.eng.Decide(e.ctx, tc.req)
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			why := d.Because.String()
			if d.Allowed != tc.allowed {
				t.Errorf("%s: allowed %v, want %v (%s)", tc.name, d.Allowed, tc.allowed, why)
			}
			if !strings.Contains(why, tc.because) {
				t.Errorf("%s: explanation %q does not mention %q", tc.name, why, tc.because)
			}
			if tc.denyID != "" && (d.Because.Deny == nil || d.Because.Deny.ID != tc.denyID) {
				t.Errorf("%s: blocked by %+v, want deny %s", tc.name, d.Because.Deny, tc.denyID)
			}
			if tc.grantedBy != "" && (d.Because.Assignment == nil || d.Because.Assignment.ID != tc.grantedBy) {
				t.Errorf("%s: granted by %+v, want %s", tc.name, d.Because.Assignment, tc.grantedBy)
			}
			if tc.path != nil && !slices.Equal(d.Because.Path, tc.path) {
				t.Errorf("%s: path %v, want %v", tc.name, d.Because.Path, tc.path)
			}
			if cached, err := e.eng.Decide(e.ctx, tc.req); err != nil || !reflect.DeepEqual(cached, d) {
				t.Errorf("%s: the cache answered %+v, %v; computed %+v", tc.name, cached, err, d)
			}
			t.Logf("%s: %s", tc.name, why)
		}

		// Errors: no decision, and the caller refuses.
		for _, tc := range []struct {
			name string
			req  rbac.Request
			want error
		}{
			{"malformed scope", rbac.Request{PrincipalID: owner, Action: "x/read", Scope: sub + "//resourceGroups/x"}, rbac.ErrInvalidScope},
			{"unknown subscription", rbac.Request{PrincipalID: owner, Action: "x/read", Scope: "/subscriptions/" + uuid.NewString()}, rbac.ErrUnknownScope},
			{"subscription of another tenant", rbac.Request{PrincipalID: owner, TenantID: e.b.ID, Action: "x/read", Scope: sub}, rbac.ErrUnknownScope},
			{"root without a tenant", rbac.Request{PrincipalID: owner, Action: "x/read", Scope: "/"}, rbac.ErrUnknownScope},
			{"wildcard operation", rbac.Request{PrincipalID: owner, Action: "Microsoft.KeyVault/*", Scope: sub}, rbac.ErrInvalidRequest},
			{"no principal", rbac.Request{Action: "x/read", Scope: sub}, rbac.ErrInvalidRequest},
		} {
			if _, err := e.eng.Decide(e.ctx, tc.req); !errors.Is(err, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			}
		}

		// An assignment takes effect on the next request, and so does its removal.
		late := e.sp(A)
		req := rbac.Request{PrincipalID: late, Action: getSecret, DataAction: true, Scope: kv2}
		if d, _ := e.eng.Decide(e.ctx, req); d.Allowed {
			t.Fatal("allowed before any assignment")
		}
		id := e.assign(A, rg, rbac.RoleKeyVaultSecretsUser, late, SP, "")
		if d, err := e.eng.Decide(e.ctx, req); err != nil || !d.Allowed {
			t.Errorf("right after the assignment: %v %v", d.Allowed, err)
		}
		must(t, st.DeleteRoleAssignment(e.ctx, A, id))
		if d, _ := e.eng.Decide(e.ctx, req); d.Allowed {
			t.Error("allowed after the assignment was deleted")
		}
		// And group membership changes too.
		g := e.group(A)
		e.assign(A, rg, rbac.RoleKeyVaultSecretsUser, g, G, "")
		must(t, e.dir.AddMember(e.ctx, A, g, late))
		if d, _ := e.eng.Decide(e.ctx, req); !d.Allowed {
			t.Error("not allowed right after joining the group")
		}
		must(t, e.dir.RemoveMember(e.ctx, A, g, late))
		if d, _ := e.eng.Decide(e.ctx, req); d.Allowed {
			t.Error("allowed after leaving the group")
		}
	})
}

func TestBuiltInRoles(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rbac.BuiltInRoles() {
		if seen[r.ID] || seen[r.Name] {
			t.Errorf("duplicate %s %s", r.ID, r.Name)
		}
		seen[r.ID], seen[r.Name] = true, true
		if _, err := uuid.Parse(r.ID); err != nil || strings.ToLower(r.ID) != r.ID {
			t.Errorf("%s: id %q", r.Name, r.ID)
		}
	}
	if r, ok := rbac.BuiltInRole("key vault SECRETS user"); !ok || r.ID != rbac.RoleKeyVaultSecretsUser {
		t.Errorf("by name: %+v %v", r, ok)
	}
	r, _ := rbac.BuiltInRole(strings.ToUpper(rbac.RoleReader))
	r.Permissions[0].Actions[0] = "*"
	if again, _ := rbac.BuiltInRole(rbac.RoleReader); again.Permissions[0].Actions[0] != "*/read" {
		t.Error("BuiltInRole hands out the shared definition")
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, op string
		want        bool
	}{
		{"*", "anything/at/all", true},
		{"*/read", "Microsoft.KeyVault/vaults/read", true},
		{"*/read", "Microsoft.KeyVault/vaults/write", false},
		{"Microsoft.ServiceBus/*/send/action", "Microsoft.ServiceBus/namespaces/messages/send/action", true},
		{"Microsoft.ServiceBus/*/send/action", "Microsoft.ServiceBus/send/action", false},
		{"Microsoft.Authorization/*/Delete", "microsoft.authorization/roleassignments/delete", true},
		{"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/roleAssignments/deleted", false},
		{"Microsoft.KeyVault/vaults/*", "Microsoft.KeyVault/vaults", false},
		{"Microsoft.KeyVault/vaults/*", "Microsoft.KeyVault/vaults/", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"Microsoft.KeyVault/locations/*/read", "Microsoft.KeyVault/locations/deletedVaults/read", true},
		{"exact", "EXACT", true},
		{"", "", true},
		{"", "x", false},
	}
	for _, tc := range tests {
		if got := rbac.Match(tc.pattern, tc.op); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.op, got, tc.want)
		}
	}
}

// TestExplanationSharesBuiltInRole: decisions granted by the same
// built-in role name one shared copy of it, not a clone each (a cached
// decision kept its own copy of the role's permission lists: issue 16),
// and that copy is not the engine's table, whose content it equals.
func TestExplanationSharesBuiltInRole(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		A := e.a.ID
		ns := "/subscriptions/" + e.a.SubscriptionID + "/resourceGroups/shared/providers/Microsoft.ServiceBus/namespaces/bus"
		one, two := e.sp(A), e.sp(A)
		e.assign(A, ns+"/queues/commands", rbac.RoleServiceBusDataSender, one, store.PrincipalServicePrincipal, "")
		e.assign(A, ns, rbac.RoleServiceBusDataSender, two, store.PrincipalServicePrincipal, "")
		var roles []*store.RoleDefinition
		for _, req := range []rbac.Request{
			{PrincipalID: one, Action: sendData, DataAction: true, Scope: ns + "/queues/commands"},
			{PrincipalID: two, Action: sendData, DataAction: true, Scope: ns + "/queues/status"},
			{PrincipalID: two, Action: "Microsoft.ServiceBus/namespaces/queues/read", Scope: ns + "/queues/status"},
		} {
			d, err := e.eng.Decide(e.ctx, req)
			if err != nil || !d.Allowed || d.Because.Role == nil || d.Because.Assignment == nil {
				t.Fatalf("%+v: %+v, %v", req, d, err)
			}
			if d.Because.Assignment.PrincipalID != req.PrincipalID {
				t.Errorf("%+v: granted by %+v", req, d.Because.Assignment)
			}
			roles = append(roles, d.Because.Role)
		}
		if roles[0] != roles[1] || roles[1] != roles[2] {
			t.Errorf("the decisions name %p, %p and %p: want one shared role", roles[0], roles[1], roles[2])
		}
		// A scope asked in its canonical form is named with the request's
		// own string, not a copy of it.
		req := rbac.Request{PrincipalID: one, Action: "Microsoft.ServiceBus/namespaces/queues/read", Scope: ns + "/queues/commands"}
		d, err := e.eng.Decide(e.ctx, req)
		if err != nil || d.Because.Scope != req.Scope || unsafe.StringData(d.Because.Scope) != unsafe.StringData(req.Scope) {
			t.Errorf("explained scope %q (%p), want the request's %q (%p); %v", d.Because.Scope, unsafe.StringData(d.Because.Scope), req.Scope, unsafe.StringData(req.Scope), err)
		}
		want, _ := rbac.BuiltInRole(rbac.RoleServiceBusDataSender)
		if !reflect.DeepEqual(*roles[0], want) {
			t.Errorf("explained role %+v, want %+v", *roles[0], want)
		}
	})
}
