package conformance

import (
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

func testLinks(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	a, b := f.tenant(), f.tenant()
	ids := sortedIDs(5)
	// Ids chosen so the expected orders are known.
	u1 := f.object(a.ID, store.KindUser, ids[0], nil)
	sp := f.object(a.ID, store.KindServicePrincipal, ids[1], nil)
	g := f.object(a.ID, store.KindGroup, ids[2], nil)
	u2 := f.object(a.ID, store.KindUser, ids[3], nil)
	app := f.object(a.ID, store.KindApplication, ids[4], nil)

	created := time.Date(2021, 12, 31, 23, 59, 59, 500000001, time.FixedZone("UTC+1", 3600))
	must(t, st.AddLink(f.ctx, store.Link{TenantID: a.ID, Kind: store.LinkMember, From: g.ID, To: u2.ID, ToKind: store.KindUser, Created: created}), "add")
	before := time.Now()
	f.link(a.ID, store.LinkMember, g.ID, u1)
	after := time.Now()
	f.link(a.ID, store.LinkMember, g.ID, sp)
	f.link(a.ID, store.LinkOwner, app.ID, u1)
	f.link(a.ID, store.LinkOwner, g.ID, u1) // same ends as a membership, other kind

	members, err := st.ListLinksFrom(f.ctx, a.ID, store.LinkMember, g.ID)
	must(t, err, "list members")
	checkIDs(t, "members of g, by To", linkEnds(members, false), []string{u1.ID, sp.ID, u2.ID})
	if len(members) == 3 {
		m := members[2]
		if m.TenantID != a.ID || m.Kind != store.LinkMember || m.From != g.ID || m.To != u2.ID || m.ToKind != store.KindUser {
			t.Errorf("link round trip: got %+v", m)
		}
		checkTime(t, "link Created", m.Created, stored(created))
		checkNow(t, "zero link Created", members[0].Created, before, after)
		if members[1].ToKind != store.KindServicePrincipal {
			t.Errorf("ToKind: got %q", members[1].ToKind)
		}
	}
	owners, err := st.ListLinksTo(f.ctx, a.ID, store.LinkOwner, u1.ID)
	must(t, err, "list owned")
	checkIDs(t, "what u1 owns, by From", linkEnds(owners, true), []string{g.ID, app.ID})
	memberOf, err := st.ListLinksTo(f.ctx, a.ID, store.LinkMember, u1.ID)
	must(t, err, "list member of")
	checkIDs(t, "groups of u1", linkEnds(memberOf, true), []string{g.ID})
	none, err := st.ListLinksFrom(f.ctx, b.ID, store.LinkMember, g.ID)
	must(t, err, "list in other tenant")
	checkIDs(t, "links in another tenant", linkEnds(none, false), nil)

	wantErr(t, st.AddLink(f.ctx, store.Link{TenantID: a.ID, Kind: store.LinkMember, From: g.ID, To: u1.ID, ToKind: store.KindUser}),
		store.ErrConflict, "add an existing link")
	wantErr(t, st.AddLink(f.ctx, store.Link{TenantID: a.ID, Kind: store.LinkMember, From: g.ID, To: newID(), ToKind: store.KindUser}),
		store.ErrNotFound, "add a link to a missing object")
	wantErr(t, st.AddLink(f.ctx, store.Link{TenantID: a.ID, Kind: store.LinkMember, From: newID(), To: u1.ID, ToKind: store.KindUser}),
		store.ErrNotFound, "add a link from a missing object")
	wantErr(t, st.AddLink(f.ctx, store.Link{TenantID: b.ID, Kind: store.LinkMember, From: g.ID, To: u1.ID, ToKind: store.KindUser}),
		store.ErrNotFound, "add a link between objects of another tenant")

	wantErr(t, st.RemoveLink(f.ctx, a.ID, store.LinkOwner, g.ID, u2.ID), store.ErrNotFound, "remove a link of the wrong kind")
	must(t, st.RemoveLink(f.ctx, a.ID, store.LinkMember, g.ID, u1.ID), "remove")
	wantErr(t, st.RemoveLink(f.ctx, a.ID, store.LinkMember, g.ID, u1.ID), store.ErrNotFound, "remove again")
	members, err = st.ListLinksFrom(f.ctx, a.ID, store.LinkMember, g.ID)
	must(t, err, "list members")
	checkIDs(t, "members after remove", linkEnds(members, false), []string{sp.ID, u2.ID})
	owners, err = st.ListLinksTo(f.ctx, a.ID, store.LinkOwner, u1.ID)
	must(t, err, "list owned")
	checkIDs(t, "the ownership of the same ends stays", linkEnds(owners, true), []string{g.ID, app.ID})
	f.link(a.ID, store.LinkMember, g.ID, u1) // can be added again
}

func testAppRoleAssignments(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	a, b := f.tenant(), f.tenant()
	u := f.object(a.ID, store.KindUser, "", nil)
	g := f.object(a.ID, store.KindGroup, "", nil)
	r1 := f.object(a.ID, store.KindServicePrincipal, "", nil)
	r2 := f.object(a.ID, store.KindServicePrincipal, "", nil)
	role, defaultRole := newID(), "00000000-0000-0000-0000-000000000000"

	created := time.Date(2020, 2, 29, 12, 0, 0, 1999, time.FixedZone("UTC-3", -3*3600))
	a1 := store.AppRoleAssignment{TenantID: a.ID, ID: newID(), PrincipalID: u.ID, PrincipalType: store.KindUser,
		ResourceID: r1.ID, AppRoleID: role, Created: created}
	must(t, st.CreateAppRoleAssignment(f.ctx, a1), "create")
	got, err := st.GetAppRoleAssignment(f.ctx, a.ID, a1.ID)
	must(t, err, "get")
	checkTime(t, "assignment Created", got.Created, stored(created))
	want := a1
	want.Created, got.Created = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("assignment: got %+v, want %+v", got, want)
	}
	before := time.Now()
	a2 := f.assign(a.ID, u, r1, defaultRole)
	checkNow(t, "zero assignment Created", a2.Created, before, time.Now())
	a3 := f.assign(a.ID, g, r1, role)
	a4 := f.assign(a.ID, u, r2, role)

	byPrincipal, err := st.ListAppRoleAssignmentsByPrincipal(f.ctx, a.ID, u.ID)
	must(t, err, "by principal")
	checkIDs(t, "held by u, by ID", assignmentIDs(byPrincipal), sortedCopy(a1.ID, a2.ID, a4.ID))
	byResource, err := st.ListAppRoleAssignmentsByResource(f.ctx, a.ID, r1.ID)
	must(t, err, "by resource")
	checkIDs(t, "granted by r1, by ID", assignmentIDs(byResource), sortedCopy(a1.ID, a2.ID, a3.ID))
	other, err := st.ListAppRoleAssignmentsByPrincipal(f.ctx, b.ID, u.ID)
	must(t, err, "by principal in another tenant")
	checkIDs(t, "another tenant", assignmentIDs(other), nil)

	dup := a1
	dup.ID = newID()
	wantErr(t, st.CreateAppRoleAssignment(f.ctx, dup), store.ErrConflict, "same principal, resource and role")
	sameID := a1
	sameID.AppRoleID = newID()
	wantErr(t, st.CreateAppRoleAssignment(f.ctx, sameID), store.ErrConflict, "same id")
	missing := a1
	missing.ID, missing.PrincipalID = newID(), newID()
	wantErr(t, st.CreateAppRoleAssignment(f.ctx, missing), store.ErrNotFound, "missing principal")
	missing.PrincipalID, missing.ResourceID = u.ID, newID()
	wantErr(t, st.CreateAppRoleAssignment(f.ctx, missing), store.ErrNotFound, "missing resource")

	_, err = st.GetAppRoleAssignment(f.ctx, b.ID, a1.ID)
	wantErr(t, err, store.ErrNotFound, "get in another tenant")
	_, err = st.GetAppRoleAssignment(f.ctx, a.ID, newID())
	wantErr(t, err, store.ErrNotFound, "get unknown")
	wantErr(t, st.DeleteAppRoleAssignment(f.ctx, b.ID, a2.ID), store.ErrNotFound, "delete in another tenant")
	must(t, st.DeleteAppRoleAssignment(f.ctx, a.ID, a2.ID), "delete")
	_, err = st.GetAppRoleAssignment(f.ctx, a.ID, a2.ID)
	wantErr(t, err, store.ErrNotFound, "get deleted")
	wantErr(t, st.DeleteAppRoleAssignment(f.ctx, a.ID, a2.ID), store.ErrNotFound, "delete again")
	byPrincipal, err = st.ListAppRoleAssignmentsByPrincipal(f.ctx, a.ID, u.ID)
	must(t, err, "by principal")
	checkIDs(t, "held by u after delete", assignmentIDs(byPrincipal), sortedCopy(a1.ID, a4.ID))
	// The grant can be made again once revoked.
	f.assign(a.ID, u, r1, defaultRole)
}

// testDeleteObjectCascades deletes objects that are at either end of links
// and assignments, next to an identical graph in another tenant that must
// not be touched.
func testDeleteObjectCascades(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	type graph struct {
		tenant             string
		u, g, parent, app  store.Object
		resource, holder   store.Object
		uRole, gRole, hold store.AppRoleAssignment
	}
	ids := map[string]string{}
	for _, k := range []string{"u", "g", "parent", "app", "resource", "holder"} {
		ids[k] = newID()
	}
	build := func() graph {
		tn := f.tenant()
		var gr graph
		gr.tenant = tn.ID
		gr.u = f.object(tn.ID, store.KindUser, ids["u"], nil)
		gr.g = f.object(tn.ID, store.KindGroup, ids["g"], nil)
		gr.parent = f.object(tn.ID, store.KindGroup, ids["parent"], nil)
		gr.app = f.object(tn.ID, store.KindApplication, ids["app"], nil)
		gr.resource = f.object(tn.ID, store.KindServicePrincipal, ids["resource"], nil)
		gr.holder = f.object(tn.ID, store.KindServicePrincipal, ids["holder"], nil)
		f.link(tn.ID, store.LinkMember, gr.g.ID, gr.u)      // g -> u
		f.link(tn.ID, store.LinkMember, gr.parent.ID, gr.g) // parent -> g
		f.link(tn.ID, store.LinkOwner, gr.app.ID, gr.u)     // app owned by u
		f.link(tn.ID, store.LinkOwner, gr.g.ID, gr.u)       // g owned by u
		gr.uRole = f.assign(tn.ID, gr.u, gr.resource, newID())
		gr.gRole = f.assign(tn.ID, gr.g, gr.resource, newID())
		gr.hold = f.assign(tn.ID, gr.holder, gr.resource, newID())
		return gr
	}
	x, y := build(), build()

	links := func(gr graph, kind store.LinkKind, from bool, id string) []string {
		t.Helper()
		var ls []store.Link
		var err error
		if from {
			ls, err = st.ListLinksFrom(f.ctx, gr.tenant, kind, id)
		} else {
			ls, err = st.ListLinksTo(f.ctx, gr.tenant, kind, id)
		}
		must(t, err, "list links")
		return linkEnds(ls, !from)
	}
	held := func(gr graph, principal string) []string {
		t.Helper()
		as, err := st.ListAppRoleAssignmentsByPrincipal(f.ctx, gr.tenant, principal)
		must(t, err, "list assignments")
		return assignmentIDs(as)
	}
	granted := func(gr graph, resource string) []string {
		t.Helper()
		as, err := st.ListAppRoleAssignmentsByResource(f.ctx, gr.tenant, resource)
		must(t, err, "list assignments")
		return assignmentIDs(as)
	}

	// Deleting g removes links from it (its members, its owners) and to it
	// (its membership of parent), and the assignment it holds.
	must(t, st.DeleteObject(f.ctx, x.tenant, store.KindGroup, x.g.ID), "delete g")
	checkIDs(t, "members of deleted g", links(x, store.LinkMember, true, x.g.ID), nil)
	checkIDs(t, "owners of deleted g", links(x, store.LinkOwner, true, x.g.ID), nil)
	checkIDs(t, "members of parent", links(x, store.LinkMember, true, x.parent.ID), nil)
	checkIDs(t, "groups of u", links(x, store.LinkMember, false, x.u.ID), nil)
	checkIDs(t, "what u owns", links(x, store.LinkOwner, false, x.u.ID), []string{x.app.ID})
	checkIDs(t, "held by deleted g", held(x, x.g.ID), nil)
	_, err := st.GetAppRoleAssignment(f.ctx, x.tenant, x.gRole.ID)
	wantErr(t, err, store.ErrNotFound, "assignment held by deleted g")
	checkIDs(t, "granted by resource", granted(x, x.resource.ID), sortedCopy(x.uRole.ID, x.hold.ID))

	// Deleting u removes its ownerships and what it holds.
	must(t, st.DeleteObject(f.ctx, x.tenant, store.KindUser, x.u.ID), "delete u")
	checkIDs(t, "owners of app", links(x, store.LinkOwner, true, x.app.ID), nil)
	checkIDs(t, "granted by resource", granted(x, x.resource.ID), []string{x.hold.ID})

	// Deleting the resource removes what it granted.
	must(t, st.DeleteObject(f.ctx, x.tenant, store.KindServicePrincipal, x.resource.ID), "delete resource")
	checkIDs(t, "held by holder", held(x, x.holder.ID), nil)

	// The same ids in the other tenant are untouched.
	checkIDs(t, "other tenant: members of g", links(y, store.LinkMember, true, y.g.ID), []string{y.u.ID})
	checkIDs(t, "other tenant: members of parent", links(y, store.LinkMember, true, y.parent.ID), []string{y.g.ID})
	checkIDs(t, "other tenant: what u owns", links(y, store.LinkOwner, false, y.u.ID), sortedCopy(y.app.ID, y.g.ID))
	checkIDs(t, "other tenant: granted by resource", granted(y, y.resource.ID), sortedCopy(y.uRole.ID, y.gRole.ID, y.hold.ID))
}

func testDeleteTenant(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	populate := func(tn store.Tenant, appID string, ids []string) {
		u := f.object(tn.ID, store.KindUser, ids[0], func(o *store.Object) { o.Names = []string{"alice@" + tn.Domain} })
		g := f.object(tn.ID, store.KindGroup, ids[1], nil)
		app := f.object(tn.ID, store.KindApplication, ids[2], func(o *store.Object) {
			o.AppID = appID
			o.Names = []string{"api://shared"}
		})
		sp := f.object(tn.ID, store.KindServicePrincipal, ids[3], func(o *store.Object) { o.AppID = appID })
		f.link(tn.ID, store.LinkMember, g.ID, u)
		f.link(tn.ID, store.LinkOwner, app.ID, u)
		f.assign(tn.ID, u, sp, newID())
	}
	a := store.Tenant{ID: newID(), Name: "doomed", Domain: "doomed.example", SubscriptionID: newID()}
	must(t, st.CreateTenant(f.ctx, a), "create tenant")
	b := f.tenant()
	idsA, idsB := sortedIDs(4), sortedIDs(4)
	appA := newID()
	populate(a, appA, idsA)
	populate(b, newID(), idsB)
	for _, r := range []store.AuditRecord{
		{Actor: "operator", ActorTenant: a.ID, TargetTenant: a.ID, Action: "tenant.create"},
		{Actor: "x", ActorTenant: b.ID, TargetTenant: a.ID, Action: "token.issue"},
		{Actor: "y", ActorTenant: b.ID, TargetTenant: b.ID, Action: "token.issue"},
	} {
		_, err := st.AppendAudit(f.ctx, r)
		must(t, err, "append audit")
	}

	must(t, st.DeleteTenant(f.ctx, a.ID), "delete tenant")
	for _, key := range []string{a.ID, a.Domain} {
		_, err := st.GetTenant(f.ctx, key)
		wantErr(t, err, store.ErrNotFound, "get deleted tenant by "+key)
	}
	for _, kind := range []store.ObjectKind{store.KindUser, store.KindGroup, store.KindApplication, store.KindServicePrincipal} {
		checkIDs(t, "objects of deleted tenant", objectIDs(f.list(store.ObjectQuery{TenantID: a.ID, Kind: kind})), nil)
	}
	checkIDs(t, "global appId lookup", objectIDs(f.list(store.ObjectQuery{Kind: store.KindApplication, AppID: appA})), nil)
	ls, err := st.ListLinksTo(f.ctx, a.ID, store.LinkMember, idsA[0])
	must(t, err, "links")
	checkIDs(t, "links of deleted tenant", linkEnds(ls, true), nil)
	as, err := st.ListAppRoleAssignmentsByPrincipal(f.ctx, a.ID, idsA[0])
	must(t, err, "assignments")
	checkIDs(t, "assignments of deleted tenant", assignmentIDs(as), nil)

	// The other tenant keeps everything.
	for i, kind := range []store.ObjectKind{store.KindUser, store.KindGroup, store.KindApplication, store.KindServicePrincipal} {
		checkIDs(t, "remaining tenant "+string(kind), objectIDs(f.list(store.ObjectQuery{TenantID: b.ID, Kind: kind})), keyIDs(b.ID, idsB[i]))
	}
	ls, err = st.ListLinksTo(f.ctx, b.ID, store.LinkMember, idsB[0])
	must(t, err, "links")
	checkIDs(t, "links of remaining tenant", linkEnds(ls, true), []string{idsB[1]})
	as, err = st.ListAppRoleAssignmentsByPrincipal(f.ctx, b.ID, idsB[0])
	must(t, err, "assignments")
	if len(as) != 1 {
		t.Errorf("remaining tenant has %d assignments, want 1", len(as))
	}

	// Audit records are evidence: they outlive the tenant.
	recs, err := st.ListAudit(f.ctx, store.AuditQuery{TenantID: a.ID})
	must(t, err, "list audit")
	if len(recs) != 2 {
		t.Errorf("audit of deleted tenant: %d records, want 2", len(recs))
	}

	// Every key of the deleted tenant is free again.
	must(t, st.CreateTenant(f.ctx, a), "recreate tenant")
	populate(a, appA, idsA)
	wantErr(t, st.DeleteTenant(f.ctx, newID()), store.ErrNotFound, "delete unknown tenant")
}
