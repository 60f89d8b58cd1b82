package conformance

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// LockoutTests are the store.Lockouts tests, in the form Run lists its tests.
var LockoutTests = []struct {
	Name string
	Fn   func(t *testing.T, st store.Store)
}{
	{"LockoutRoundTrip", testLockoutRoundTrip},
	{"LockoutConcurrentFailures", testLockoutConcurrentFailures},
	{"LockoutGoesWithUser", testLockoutGoesWithUser},
}

func checkLockout(t testing.TB, what string, got, want store.Lockout) {
	t.Helper()
	if got.TenantID != want.TenantID || got.UserID != want.UserID || got.Failures != want.Failures || got.Lockouts != want.Lockouts ||
		got.Version != want.Version || !slices.Equal(got.Recent, want.Recent) {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
	for _, tm := range []struct {
		name      string
		got, want time.Time
	}{{"LockedUntil", got.LockedUntil, want.LockedUntil}, {"LastFailure", got.LastFailure, want.LastFailure}} {
		if want := tm.want; want.IsZero() {
			if !tm.got.IsZero() {
				t.Errorf("%s: %s = %v, want zero", what, tm.name, tm.got)
			}
		} else {
			checkTime(t, what+" "+tm.name, tm.got, stored(want))
		}
	}
}

func testLockoutRoundTrip(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	user := f.object(tn.ID, store.KindUser, "", nil)

	got, err := st.GetLockout(f.ctx, tn.ID, user.ID)
	must(t, err, "get with nothing stored")
	checkLockout(t, "nothing stored", got, store.Lockout{TenantID: tn.ID, UserID: user.ID})

	at := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("UTC-3", -3*3600))
	first := store.Lockout{TenantID: tn.ID, UserID: user.ID, Failures: 3, LastFailure: at, Recent: []string{"digest-a", "digest-b"}}
	saved, err := st.PutLockout(f.ctx, first)
	must(t, err, "first put")
	want := first
	want.Version = 1
	checkLockout(t, "put's answer", saved, want)
	got, err = st.GetLockout(f.ctx, tn.ID, user.ID)
	must(t, err, "get")
	checkLockout(t, "stored", got, want)

	// A second first write, or a write based on an old version, loses.
	_, err = st.PutLockout(f.ctx, first)
	wantErr(t, err, store.ErrPrecondition, "insert over an existing state")
	locked := got
	locked.Failures, locked.Lockouts, locked.LockedUntil, locked.Recent = 0, 1, at.Add(time.Minute), nil
	saved, err = st.PutLockout(f.ctx, locked)
	must(t, err, "update")
	want = locked
	want.Version = 2
	checkLockout(t, "updated", saved, want)
	_, err = st.PutLockout(f.ctx, locked)
	wantErr(t, err, store.ErrPrecondition, "update based on version 1 after version 2")
	got, err = st.GetLockout(f.ctx, tn.ID, user.ID)
	must(t, err, "get after update")
	checkLockout(t, "stored after update", got, want)

	// Clearing the times stores never again.
	cleared := got
	cleared.LockedUntil, cleared.LastFailure = time.Time{}, time.Time{}
	_, err = st.PutLockout(f.ctx, cleared)
	must(t, err, "clear times")
	got, err = st.GetLockout(f.ctx, tn.ID, user.ID)
	must(t, err, "get after clearing")
	cleared.Version = 3
	checkLockout(t, "cleared", got, cleared)

	// A missing user has no state to keep; bad input is a plain error.
	_, err = st.PutLockout(f.ctx, store.Lockout{TenantID: tn.ID, UserID: newID(), Failures: 1})
	wantErr(t, err, store.ErrNotFound, "put for a missing user")
	_, err = st.PutLockout(f.ctx, store.Lockout{TenantID: tn.ID, UserID: user.ID, Recent: []string{"two words"}, Version: 3})
	wantPlainErr(t, err, "a digest with a space")
	_, err = st.PutLockout(f.ctx, store.Lockout{TenantID: tn.ID, UserID: user.ID, Recent: []string{""}, Version: 3})
	wantPlainErr(t, err, "an empty digest")
	_, err = st.PutLockout(f.ctx, store.Lockout{TenantID: tn.ID, Version: 3})
	wantPlainErr(t, err, "no user id")
	_, err = st.PutLockout(f.ctx, store.Lockout{TenantID: tn.ID, UserID: user.ID, Failures: -1, Version: 3})
	wantPlainErr(t, err, "a negative count")
	got, err = st.GetLockout(f.ctx, tn.ID, "bad\x00id")
	must(t, err, "get by a key that cannot be stored")
	if got.Version != 0 {
		t.Errorf("get by a bad key: %+v", got)
	}
}

// testLockoutConcurrentFailures counts failures from many writers at once,
// each reading and writing back as the directory does: no increment may be
// lost, the first insert included.
func testLockoutConcurrentFailures(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	user := f.object(tn.ID, store.KindUser, "", nil)
	const writers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range each {
				for {
					l, err := st.GetLockout(f.ctx, tn.ID, user.ID)
					if err != nil {
						errs <- err
						return
					}
					l.Failures++
					_, err = st.PutLockout(f.ctx, l)
					if errors.Is(err, store.ErrPrecondition) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent failure: %v", err)
	}
	got, err := st.GetLockout(f.ctx, tn.ID, user.ID)
	must(t, err, "get")
	if got.Failures != writers*each || got.Version != writers*each {
		t.Fatalf("after %d increments: failures %d, version %d", writers*each, got.Failures, got.Version)
	}
}

func testLockoutGoesWithUser(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	gone := f.object(tn.ID, store.KindUser, "", nil)
	kept := f.object(tn.ID, store.KindUser, "", nil)
	for _, u := range []store.Object{gone, kept} {
		_, err := st.PutLockout(f.ctx, store.Lockout{TenantID: tn.ID, UserID: u.ID, Failures: 2})
		must(t, err, "put")
	}
	must(t, st.DeleteObject(f.ctx, tn.ID, store.KindUser, gone.ID), "delete user")
	got, err := st.GetLockout(f.ctx, tn.ID, gone.ID)
	must(t, err, "get deleted user's state")
	if got.Version != 0 || got.Failures != 0 {
		t.Fatalf("a deleted user's state survived: %+v", got)
	}
	got, err = st.GetLockout(f.ctx, tn.ID, kept.ID)
	must(t, err, "get kept user's state")
	if got.Failures != 2 {
		t.Fatalf("another user's state changed: %+v", got)
	}
	// A user of the same id in another tenant is another account.
	other := f.tenant()
	f.object(other.ID, store.KindUser, kept.ID, nil)
	got, err = st.GetLockout(f.ctx, other.ID, kept.ID)
	must(t, err, "get in another tenant")
	if got.Version != 0 {
		t.Fatalf("state leaked across tenants: %+v", got)
	}
	must(t, st.DeleteTenant(f.ctx, tn.ID), "delete tenant")
	got, err = st.GetLockout(f.ctx, tn.ID, kept.ID)
	must(t, err, "get after the tenant is gone")
	if got.Version != 0 {
		t.Fatalf("state outlived its tenant: %+v", got)
	}
}
