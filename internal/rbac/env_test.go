package rbac_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// env is a real store and directory with two tenants.
type env struct {
	t    testing.TB
	ctx  context.Context
	st   store.Store
	dir  *directory.Service
	eng  *rbac.Engine
	a, b store.Tenant
	n    int
}

func newEnv(t testing.TB, st store.Store) *env {
	t.Helper()
	ctx := context.Background()
	key := func() []byte { b := make([]byte, 32); _, _ = rand.Read(b); return b }
	dir, err := directory.New(st, key(), key())
	must(t, err)
	must(t, dir.EnsureFirstParty(ctx))
	e := &env{t: t, ctx: ctx, st: st, dir: dir, eng: rbac.New(st, dir)}
	e.a = e.tenant("contoso")
	e.b = e.tenant("fabrikam")
	return e
}

func (e *env) tenant(name string) store.Tenant {
	e.t.Helper()
	tb, err := e.dir.CreateTenant(e.ctx, name)
	must(e.t, err)
	return tb.Tenant
}

// sp creates a service principal (a user-assigned identity) in tenantID.
func (e *env) sp(tenantID string) string {
	e.t.Helper()
	e.n++
	sp, err := e.dir.CreateUserAssignedIdentity(e.ctx, tenantID, "identities", fmt.Sprintf("id%d", e.n))
	must(e.t, err)
	return sp.ID
}

// group creates a group in tenantID with the given members.
func (e *env) group(tenantID string, members ...string) string {
	e.t.Helper()
	e.n++
	g, err := e.dir.CreateGroup(e.ctx, tenantID, directory.Group{DisplayName: fmt.Sprintf("group %d", e.n)})
	must(e.t, err)
	for _, m := range members {
		must(e.t, e.dir.AddMember(e.ctx, tenantID, g.ID, m))
	}
	return g.ID
}

func (e *env) assign(tenantID, scope, role, principal string, ptype store.PrincipalType, principalTenant string) string {
	e.t.Helper()
	id := uuid.NewString()
	must(e.t, e.st.CreateRoleAssignment(e.ctx, store.RoleAssignment{TenantID: tenantID, ID: id, Scope: scope, RoleDefinitionID: role,
		PrincipalID: principal, PrincipalType: ptype, PrincipalTenantID: principalTenant, CreatedBy: "test"}))
	return id
}

func (e *env) deny(d store.DenyAssignment) string {
	e.t.Helper()
	d.ID = uuid.NewString()
	must(e.t, e.st.CreateDenyAssignment(e.ctx, d))
	return d.ID
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
