package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// newID returns a random GUID, as the services use for every id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// sortedIDs returns n random ids in ascending order, for tests that need to
// know the order the store must return things in.
func sortedIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newID()
	}
	slices.Sort(ids)
	return ids
}

func must(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr fails unless err is (wraps) target.
func wantErr(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// wantPlainErr fails unless err is an error that is none of the store's
// sentinels: an invalid request, not a missing or taken record.
func wantPlainErr(t testing.TB, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want one", what)
	}
	for _, s := range []error{store.ErrNotFound, store.ErrConflict, store.ErrPrecondition} {
		if errors.Is(err, s) {
			t.Fatalf("%s: got %v, want an error that is not %v", what, err, s)
		}
	}
}

// stored is how the store must give back a timestamp it was given: UTC,
// truncated to the microsecond.
func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// checkTime fails unless got is exactly want, in UTC.
func checkTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s: got %v (%v), want %v (UTC)", what, got.Format(time.RFC3339Nano), got.Location(), want.Format(time.RFC3339Nano))
	}
}

// checkNow fails unless a time the store set itself is plausible: UTC,
// microsecond precision, within the window of the call.
func checkNow(t testing.TB, what string, got, before, after time.Time) {
	t.Helper()
	if got.Location() != time.UTC || got.Nanosecond()%1000 != 0 {
		t.Errorf("%s: %v is not UTC with microsecond precision", what, got.Format(time.RFC3339Nano))
	}
	if got.Before(before.Add(-time.Second)) || got.After(after.Add(time.Second)) {
		t.Errorf("%s: %v is not between %v and %v", what, got, before, after)
	}
}

func checkTenant(t testing.TB, got, want store.Tenant) {
	t.Helper()
	checkTime(t, "tenant "+want.ID+" Created", got.Created, want.Created)
	got.Created, want.Created = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("tenant: got %+v, want %+v", got, want)
	}
}

// checkObject compares every field; nil and empty Names and Data are the same.
func checkObject(t testing.TB, got, want store.Object) {
	t.Helper()
	what := fmt.Sprintf("object %s %s", want.Kind, want.ID)
	if got.TenantID != want.TenantID || got.ID != want.ID || got.Kind != want.Kind || got.AppID != want.AppID ||
		got.DisplayName != want.DisplayName || got.Version != want.Version {
		t.Errorf("%s: got {tenant %q id %q kind %q appId %q displayName %q version %d}, want {tenant %q id %q kind %q appId %q displayName %q version %d}",
			what, got.TenantID, got.ID, got.Kind, got.AppID, got.DisplayName, got.Version,
			want.TenantID, want.ID, want.Kind, want.AppID, want.DisplayName, want.Version)
	}
	if !slices.Equal(got.Names, want.Names) {
		t.Errorf("%s: Names: got %q, want %q", what, got.Names, want.Names)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Errorf("%s: Data: got %q, want %q (byte for byte)", what, got.Data, want.Data)
	}
	checkTime(t, what+" Created", got.Created, want.Created)
	checkTime(t, what+" Updated", got.Updated, want.Updated)
}

// objectIDs lists the "tenant/id" of objects, for comparing result sets.
func objectIDs(os []store.Object) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.TenantID + "/" + o.ID
	}
	return out
}

func keyIDs(tenantID string, ids ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tenantID + "/" + id
	}
	return out
}

func checkIDs(t testing.TB, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", what, strings.Join(got, " "), strings.Join(want, " "))
	}
}

// fixture creates records with unique keys, so tests never collide.
type fixture struct {
	t   testing.TB
	ctx context.Context
	st  store.Store
}

func newFixture(t testing.TB, st store.Store) *fixture {
	return &fixture{t: t, ctx: t.Context(), st: st}
}

func (f *fixture) tenant() store.Tenant {
	f.t.Helper()
	id := newID()
	tn := store.Tenant{ID: id, Name: "t" + id[:8], Domain: "t" + id[:8] + ".onmicrosoft.com", SubscriptionID: newID()}
	must(f.t, f.st.CreateTenant(f.ctx, tn), "create tenant")
	got, err := f.st.GetTenant(f.ctx, id)
	must(f.t, err, "get tenant")
	return got
}

// object creates an object of kind in tenant with the given id (a new one
// if empty), letting mod set other fields, and returns it as stored.
func (f *fixture) object(tenantID string, kind store.ObjectKind, id string, mod func(o *store.Object)) store.Object {
	f.t.Helper()
	if id == "" {
		id = newID()
	}
	o := store.Object{TenantID: tenantID, ID: id, Kind: kind, DisplayName: string(kind) + " " + id[:8], Data: []byte(`{"id":"` + id + `"}`)}
	if kind == store.KindApplication || kind == store.KindServicePrincipal {
		o.AppID = newID()
	}
	if mod != nil {
		mod(&o)
	}
	must(f.t, f.st.CreateObject(f.ctx, o), fmt.Sprintf("create %s %s", kind, id))
	got, err := f.st.GetObject(f.ctx, tenantID, kind, id)
	must(f.t, err, "get created object")
	return got
}

func (f *fixture) link(tenantID string, kind store.LinkKind, from string, to store.Object) {
	f.t.Helper()
	must(f.t, f.st.AddLink(f.ctx, store.Link{TenantID: tenantID, Kind: kind, From: from, To: to.ID, ToKind: to.Kind}),
		fmt.Sprintf("add %s link %s -> %s", kind, from, to.ID))
}

func (f *fixture) assign(tenantID string, principal, resource store.Object, role string) store.AppRoleAssignment {
	f.t.Helper()
	a := store.AppRoleAssignment{TenantID: tenantID, ID: newID(), PrincipalID: principal.ID, PrincipalType: principal.Kind,
		ResourceID: resource.ID, AppRoleID: role}
	must(f.t, f.st.CreateAppRoleAssignment(f.ctx, a), "create app role assignment")
	got, err := f.st.GetAppRoleAssignment(f.ctx, tenantID, a.ID)
	must(f.t, err, "get app role assignment")
	return got
}

func (f *fixture) list(q store.ObjectQuery) []store.Object {
	f.t.Helper()
	got, err := f.st.ListObjects(f.ctx, q)
	must(f.t, err, fmt.Sprintf("list objects %+v", q))
	return got
}

func linkEnds(ls []store.Link, from bool) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		if from {
			out[i] = l.From
		} else {
			out[i] = l.To
		}
	}
	return out
}

func assignmentIDs(as []store.AppRoleAssignment) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func sortedCopy(ss ...string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}
