package conformance

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// document is JSON that any re-encoding would change: key order,
// whitespace, escapes and non-ASCII text.
var document = []byte("{\"z\": 1,\n  \"a\" : [true, null, 1.50],\t\"\\u00e9t\u00e9\": \"\u2603\", \"nested\":{\"b\":{},\"a\":[]}}")

func testObjectRoundTrip(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	created := time.Date(2023, 1, 2, 3, 4, 5, 999999999, time.FixedZone("UTC-7", -7*3600))
	tests := []struct {
		kind  store.ObjectKind
		appID string
		names []string
	}{
		{store.KindApplication, newID(), []string{"api://Contoso-B", "api://contoso-a", "https://contoso.example/app"}},
		{store.KindServicePrincipal, newID(), []string{"https://contoso.example/app", "Ad0eb3c5-0000-0000-0000-000000000000"}},
		{store.KindUser, "", []string{"Alice@Contoso.onmicrosoft.com"}},
		{store.KindGroup, "", nil},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			o := store.Object{
				TenantID: tn.ID, ID: newID(), Kind: tc.kind, AppID: tc.appID,
				DisplayName: "Ünïcode " + string(tc.kind), Names: tc.names, Data: document,
				Version: 42, // ignored: a new object is version 1
				Created: created, Updated: created.Add(time.Hour),
			}
			must(t, st.CreateObject(f.ctx, o), "create")
			want := o
			want.Version = 1
			want.Created, want.Updated = stored(o.Created), stored(o.Updated)
			got, err := st.GetObject(f.ctx, tn.ID, tc.kind, o.ID)
			must(t, err, "get")
			checkObject(t, got, want)

			// Lookups are by tenant, kind and id together.
			other := store.KindGroup
			if tc.kind == store.KindGroup {
				other = store.KindUser
			}
			_, err = st.GetObject(f.ctx, tn.ID, other, o.ID)
			wantErr(t, err, store.ErrNotFound, "get with the wrong kind")
			_, err = st.GetObject(f.ctx, newID(), tc.kind, o.ID)
			wantErr(t, err, store.ErrNotFound, "get in another tenant")
			_, err = st.GetObject(f.ctx, tn.ID, tc.kind, newID())
			wantErr(t, err, store.ErrNotFound, "get unknown id")
		})
	}

	// Zero times are set by the store; Updated starts equal to Created.
	before := time.Now()
	o := store.Object{TenantID: tn.ID, ID: newID(), Kind: store.KindUser, DisplayName: "No Times"}
	must(t, st.CreateObject(f.ctx, o), "create without times")
	after := time.Now()
	got, err := st.GetObject(f.ctx, tn.ID, store.KindUser, o.ID)
	must(t, err, "get")
	checkNow(t, "Created", got.Created, before, after)
	checkTime(t, "Updated of a new object", got.Updated, got.Created)
	if len(got.Names) != 0 || len(got.Data) != 0 || got.Version != 1 {
		t.Errorf("empty object came back as names %q data %q version %d", got.Names, got.Data, got.Version)
	}

	// An object needs its tenant.
	err = st.CreateObject(f.ctx, store.Object{TenantID: newID(), ID: newID(), Kind: store.KindUser, DisplayName: "orphan"})
	wantErr(t, err, store.ErrNotFound, "create in an unknown tenant")
}

func testObjectConflicts(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	a, b := f.tenant(), f.tenant()
	appID := newID()
	app := f.object(a.ID, store.KindApplication, "", func(o *store.Object) {
		o.AppID = appID
		o.Names = []string{"api://contoso"}
	})
	f.object(a.ID, store.KindServicePrincipal, "", func(o *store.Object) {
		o.AppID = appID
		o.Names = []string{"https://sp.contoso.example"}
	})
	f.object(a.ID, store.KindUser, "", func(o *store.Object) { o.Names = []string{"Alice@Contoso.com"} })

	obj := func(tenantID string, kind store.ObjectKind, id, appID string, names ...string) store.Object {
		if id == "" {
			id = newID()
		}
		return store.Object{TenantID: tenantID, ID: id, Kind: kind, AppID: appID, DisplayName: "x", Names: names}
	}
	tests := []struct {
		name     string
		o        store.Object
		conflict bool
	}{
		{"same id, same kind", obj(a.ID, store.KindApplication, app.ID, newID()), true},
		{"same id, other kind", obj(a.ID, store.KindGroup, app.ID, ""), true},
		{"application appId, same tenant", obj(a.ID, store.KindApplication, "", appID), true},
		{"application appId, other tenant (global)", obj(b.ID, store.KindApplication, "", appID), true},
		{"service principal appId, same tenant", obj(a.ID, store.KindServicePrincipal, "", appID), true},
		{"application name, other case", obj(a.ID, store.KindApplication, "", newID(), "API://CONTOSO"), true},
		{"user name, other case", obj(a.ID, store.KindUser, "", "", "alice@contoso.COM"), true},
		{"one of several names taken", obj(a.ID, store.KindUser, "", "", "bob@contoso.com", "ALICE@contoso.com"), true},

		{"service principal appId, other tenant (per tenant)", obj(b.ID, store.KindServicePrincipal, "", appID), false},
		{"same id, other tenant", obj(b.ID, store.KindApplication, app.ID, newID()), false},
		{"same name, other tenant", obj(b.ID, store.KindApplication, "", newID(), "api://contoso"), false},
		{"same name, other kind", obj(a.ID, store.KindServicePrincipal, "", newID(), "api://contoso"), false},
		{"names equal but for case, one object", obj(a.ID, store.KindUser, "", "", "Carol@contoso.com", "carol@CONTOSO.com"), false},
		{"bob's name is free after the rejected create", obj(a.ID, store.KindUser, "", "", "bob@contoso.com"), false},
	}
	for _, tc := range tests {
		err := st.CreateObject(f.ctx, tc.o)
		if !tc.conflict {
			must(t, err, tc.name)
			continue
		}
		wantErr(t, err, store.ErrConflict, tc.name)
		if tc.o.ID != app.ID {
			// A rejected create leaves nothing behind, not even some of its names.
			_, err := st.GetObject(f.ctx, tc.o.TenantID, tc.o.Kind, tc.o.ID)
			wantErr(t, err, store.ErrNotFound, tc.name+": get after rejected create")
		}
	}
	got := f.list(store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, Name: "CAROL@contoso.com"})
	if len(got) != 1 || !slices.Equal(got[0].Names, []string{"Carol@contoso.com", "carol@CONTOSO.com"}) {
		t.Errorf("carol by name: got %d objects %v", len(got), objectIDs(got))
	}
}

func testUpdateObject(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	created := time.Date(2022, 2, 2, 2, 2, 2, 0, time.UTC)
	orig := f.object(tn.ID, store.KindApplication, "", func(o *store.Object) {
		o.Names = []string{"api://one", "api://two"}
		o.Created, o.Updated = created, created
	})
	other := f.object(tn.ID, store.KindApplication, "", func(o *store.Object) { o.Names = []string{"api://other"} })

	upd := orig
	upd.DisplayName = "Renamed"
	upd.Names = []string{"API://Two", "api://three"}
	upd.Data = document
	upd.AppID = newID()           // not changed by UpdateObject
	upd.Created = time.Now()      // not changed by UpdateObject
	upd.Updated = time.Unix(0, 0) // set by the store
	before := time.Now()
	got, err := st.UpdateObject(f.ctx, upd)
	must(t, err, "update")
	after := time.Now()
	want := upd
	want.AppID, want.Created, want.Version, want.Updated = orig.AppID, orig.Created, 2, got.Updated
	checkObject(t, got, want)
	checkNow(t, "Updated", got.Updated, before, after)
	reread, err := st.GetObject(f.ctx, tn.ID, store.KindApplication, orig.ID)
	must(t, err, "get after update")
	checkObject(t, reread, got)

	// Names follow the update: the dropped one is free, the new ones taken.
	checkIDs(t, "by old name", objectIDs(f.list(store.ObjectQuery{TenantID: tn.ID, Kind: store.KindApplication, Name: "api://one"})), nil)
	checkIDs(t, "by new name", objectIDs(f.list(store.ObjectQuery{TenantID: tn.ID, Kind: store.KindApplication, Name: "API://THREE"})), keyIDs(tn.ID, orig.ID))
	f.object(tn.ID, store.KindApplication, "", func(o *store.Object) { o.Names = []string{"api://one"} })
	checkIDs(t, "display name follows", objectIDs(f.list(store.ObjectQuery{TenantID: tn.ID, Kind: store.KindApplication, DisplayName: "renamed"})), keyIDs(tn.ID, orig.ID))

	for _, v := range []int64{1, 3, 0} {
		stale := got
		stale.Version = v
		_, err = st.UpdateObject(f.ctx, stale)
		wantErr(t, err, store.ErrPrecondition, fmt.Sprintf("update from version %d when 2 is current", v))
	}

	missing := got
	missing.ID = newID()
	_, err = st.UpdateObject(f.ctx, missing)
	wantErr(t, err, store.ErrNotFound, "update unknown object")
	wrongKind := got
	wrongKind.Kind = store.KindServicePrincipal
	_, err = st.UpdateObject(f.ctx, wrongKind)
	wantErr(t, err, store.ErrNotFound, "update with the wrong kind")

	// A taken name fails the whole update.
	clash := got
	clash.DisplayName = "Clash"
	clash.Names = []string{"api://two", "API://OTHER"}
	_, err = st.UpdateObject(f.ctx, clash)
	wantErr(t, err, store.ErrConflict, "update to a taken name")
	after2, err := st.GetObject(f.ctx, tn.ID, store.KindApplication, orig.ID)
	must(t, err, "get after rejected update")
	checkObject(t, after2, got)
	checkIDs(t, "other keeps its name", objectIDs(f.list(store.ObjectQuery{TenantID: tn.ID, Kind: store.KindApplication, Name: "api://other"})), keyIDs(tn.ID, other.ID))
	checkIDs(t, "names of a rejected update stay", objectIDs(f.list(store.ObjectQuery{TenantID: tn.ID, Kind: store.KindApplication, Name: "api://three"})), keyIDs(tn.ID, orig.ID))

	// Keeping one's own names, in another case, is no conflict.
	same := got
	same.Names = []string{"api://TWO", "api://three"}
	got3, err := st.UpdateObject(f.ctx, same)
	must(t, err, "update keeping own names")
	if got3.Version != 3 || !slices.Equal(got3.Names, same.Names) {
		t.Errorf("got version %d names %q, want 3 %q", got3.Version, got3.Names, same.Names)
	}
}

func testDeleteObject(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	app := f.object(tn.ID, store.KindApplication, "", func(o *store.Object) { o.Names = []string{"api://gone"} })
	keep := f.object(tn.ID, store.KindUser, "", nil)

	wantErr(t, st.DeleteObject(f.ctx, tn.ID, store.KindServicePrincipal, app.ID), store.ErrNotFound, "delete with the wrong kind")
	wantErr(t, st.DeleteObject(f.ctx, newID(), store.KindApplication, app.ID), store.ErrNotFound, "delete in another tenant")
	must(t, st.DeleteObject(f.ctx, tn.ID, store.KindApplication, app.ID), "delete")
	_, err := st.GetObject(f.ctx, tn.ID, store.KindApplication, app.ID)
	wantErr(t, err, store.ErrNotFound, "get deleted")
	wantErr(t, st.DeleteObject(f.ctx, tn.ID, store.KindApplication, app.ID), store.ErrNotFound, "delete again")
	_, err = st.GetObject(f.ctx, tn.ID, store.KindUser, keep.ID)
	must(t, err, "other object survives")

	// Its id, appId and names are free again.
	f.object(tn.ID, store.KindApplication, app.ID, func(o *store.Object) {
		o.AppID = app.AppID
		o.Names = []string{"API://GONE"}
	})
}

func testListObjects(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	a, b := f.tenant(), f.tenant()
	ids := sortedIDs(6)
	displayNames := []string{"Alice Smith", "alice jones", "ALIBABA", "Bob", "100%_done", "100 done"}
	users := make([]store.Object, len(ids))
	for i, id := range ids {
		users[i] = f.object(a.ID, store.KindUser, id, func(o *store.Object) {
			o.DisplayName = displayNames[i]
			o.Names = []string{fmt.Sprintf("User%d@A.example", i)}
		})
	}
	// Same display names and ids in another tenant and kind: never in the results.
	for i, id := range ids {
		f.object(b.ID, store.KindUser, id, func(o *store.Object) {
			o.DisplayName = displayNames[i]
			o.Names = []string{fmt.Sprintf("User%d@A.example", i)}
		})
		f.object(a.ID, store.KindGroup, newID(), func(o *store.Object) { o.DisplayName = displayNames[i] })
	}
	appA := f.object(a.ID, store.KindApplication, "", nil)
	appB := f.object(b.ID, store.KindApplication, "", nil)
	spA := f.object(a.ID, store.KindServicePrincipal, "", func(o *store.Object) { o.AppID = appB.AppID })
	spB := f.object(b.ID, store.KindServicePrincipal, "", func(o *store.Object) { o.AppID = appB.AppID })

	// Both tenants hold a service principal of appB: across tenants they
	// come ordered by ID.
	spsOfB := []string{a.ID + "/" + spA.ID, b.ID + "/" + spB.ID}
	firstSP := spA.ID
	if spB.ID < spA.ID {
		spsOfB[0], spsOfB[1] = spsOfB[1], spsOfB[0]
		firstSP = spB.ID
	}
	user := func(i ...int) []string {
		var out []string
		for _, n := range i {
			out = append(out, a.ID+"/"+ids[n])
		}
		return out
	}
	tests := []struct {
		name string
		q    store.ObjectQuery
		want []string
	}{
		{"kind", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser}, user(0, 1, 2, 3, 4, 5)},
		{"display name, exact, other case", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, DisplayName: "ALICE smith"}, user(0)},
		{"display name is not a prefix", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, DisplayName: "alice"}, nil},
		{"display name prefix, other case", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, DisplayNamePrefix: "aLi"}, user(0, 1, 2)},
		{"prefix with % is literal", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, DisplayNamePrefix: "100%"}, user(4)},
		{"prefix with _ is literal", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, DisplayNamePrefix: "100_"}, nil},
		{"prefix matching all of a name", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, DisplayNamePrefix: "BOB"}, user(3)},
		{"name, other case", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, Name: "user2@a.EXAMPLE"}, user(2)},
		{"name of another kind", store.ObjectQuery{TenantID: a.ID, Kind: store.KindGroup, Name: "user2@a.example"}, nil},
		{"ids, any order, unknown and repeated", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, IDs: []string{ids[3], newID(), ids[1], ids[3]}}, user(1, 3)},
		{"ids with prefix", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, IDs: []string{ids[0], ids[3], ids[2]}, DisplayNamePrefix: "al"}, user(0, 2)},
		{"ids of another kind", store.ObjectQuery{TenantID: a.ID, Kind: store.KindGroup, IDs: ids}, nil},
		{"empty ids do not filter", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, IDs: []string{}}, user(0, 1, 2, 3, 4, 5)},
		{"after", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, After: ids[2]}, user(3, 4, 5)},
		{"after a non-existent id", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, After: ids[2] + "0"}, user(3, 4, 5)},
		{"limit", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, Limit: 2}, user(0, 1)},
		{"after and limit", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, After: ids[1], Limit: 2}, user(2, 3)},
		{"after, limit and ids", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, IDs: []string{ids[5], ids[0], ids[4], ids[2]}, After: ids[0], Limit: 2}, user(2, 4)},
		{"prefix and limit", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, DisplayNamePrefix: "ALI", Limit: 2}, user(0, 1)},
		{"application appId", store.ObjectQuery{TenantID: a.ID, Kind: store.KindApplication, AppID: appA.AppID}, keyIDs(a.ID, appA.ID)},
		{"application appId, other tenant", store.ObjectQuery{TenantID: a.ID, Kind: store.KindApplication, AppID: appB.AppID}, nil},
		{"application appId, any tenant", store.ObjectQuery{Kind: store.KindApplication, AppID: appB.AppID}, keyIDs(b.ID, appB.ID)},
		{"application appId, any tenant, unknown", store.ObjectQuery{Kind: store.KindApplication, AppID: newID()}, nil},
		{"service principal appId", store.ObjectQuery{TenantID: a.ID, Kind: store.KindServicePrincipal, AppID: appB.AppID}, keyIDs(a.ID, spA.ID)},
		{"service principal appId, tenant b", store.ObjectQuery{TenantID: b.ID, Kind: store.KindServicePrincipal, AppID: appB.AppID}, keyIDs(b.ID, spB.ID)},
		{"service principal appId, any tenant", store.ObjectQuery{Kind: store.KindServicePrincipal, AppID: appB.AppID}, spsOfB},
		{"service principal appId, any tenant, limit", store.ObjectQuery{Kind: store.KindServicePrincipal, AppID: appB.AppID, Limit: 1}, spsOfB[:1]},
		{"service principal appId, any tenant, after", store.ObjectQuery{Kind: store.KindServicePrincipal, AppID: appB.AppID, After: firstSP}, spsOfB[1:]},
		{"service principal appId, any tenant, unknown", store.ObjectQuery{Kind: store.KindServicePrincipal, AppID: newID()}, nil},
		{"unknown tenant", store.ObjectQuery{TenantID: newID(), Kind: store.KindUser}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkIDs(t, tc.name, objectIDs(f.list(tc.q)), tc.want)
		})
	}
	got := f.list(store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, DisplayName: "bob"})
	if len(got) == 1 {
		checkObject(t, got[0], users[3])
	}

	invalid := []struct {
		name string
		q    store.ObjectQuery
	}{
		{"no kind", store.ObjectQuery{TenantID: a.ID}},
		{"no tenant", store.ObjectQuery{Kind: store.KindUser}},
		{"no tenant, application without appId", store.ObjectQuery{Kind: store.KindApplication, DisplayName: "x"}},
		{"no tenant, service principal without appId", store.ObjectQuery{Kind: store.KindServicePrincipal, Name: "x"}},
		{"no tenant, user by appId", store.ObjectQuery{Kind: store.KindUser, AppID: appB.AppID}},
		{"negative limit", store.ObjectQuery{TenantID: a.ID, Kind: store.KindUser, Limit: -1}},
	}
	for _, tc := range invalid {
		_, err := st.ListObjects(f.ctx, tc.q)
		wantPlainErr(t, err, tc.name)
	}
}

// testListObjectsPaging pages with After and Limit as a Graph $skiptoken
// would, and filters by more ids than one statement can bind.
func testListObjectsPaging(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	const n = 23
	var want []string
	err := st.InTx(f.ctx, func(tx store.Store) error {
		for range n {
			id := newID()
			want = append(want, tn.ID+"/"+id)
			if err := tx.CreateObject(f.ctx, store.Object{TenantID: tn.ID, ID: id, Kind: store.KindGroup, DisplayName: "g"}); err != nil {
				return err
			}
		}
		return nil
	})
	must(t, err, "create groups")
	slices.Sort(want)

	for _, size := range []int{1, 5, n, n + 1} {
		var got []string
		after := ""
		for page := 0; ; page++ {
			if page > n+1 {
				t.Fatalf("page size %d: paging does not end", size)
			}
			os := f.list(store.ObjectQuery{TenantID: tn.ID, Kind: store.KindGroup, After: after, Limit: size})
			if len(os) > size {
				t.Fatalf("page size %d: got %d", size, len(os))
			}
			if len(os) == 0 {
				break
			}
			got = append(got, objectIDs(os)...)
			after = os[len(os)-1].ID
		}
		checkIDs(t, fmt.Sprintf("all pages of size %d", size), got, want)
	}

	// 1200 ids, nearly all unknown: more than any one IN list should bind.
	var many []string
	for _, k := range want {
		many = append(many, k[len(tn.ID)+1:])
	}
	for range 1200 - n {
		many = append(many, newID())
	}
	slices.Reverse(many)
	checkIDs(t, "many ids", objectIDs(f.list(store.ObjectQuery{TenantID: tn.ID, Kind: store.KindGroup, IDs: many})), want)
	checkIDs(t, "many ids, limit", objectIDs(f.list(store.ObjectQuery{TenantID: tn.ID, Kind: store.KindGroup, IDs: many, Limit: 3})), want[:3])
	// A limit that the first chunks of ids cannot fill.
	checkIDs(t, "many ids, limit across chunks", objectIDs(f.list(store.ObjectQuery{TenantID: tn.ID, Kind: store.KindGroup, IDs: many, Limit: n - 2})), want[:n-2])
	checkIDs(t, "many ids, after", objectIDs(f.list(store.ObjectQuery{TenantID: tn.ID, Kind: store.KindGroup, IDs: many, After: want[19][len(tn.ID)+1:]})), want[20:])
}
