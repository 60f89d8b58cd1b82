package conformance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// SignedOutTests are the store.SignedOutSessions tests, in the form Run
// lists its tests.
var SignedOutTests = []struct {
	Name string
	Fn   func(t *testing.T, st store.Store)
}{
	{"SignedOutSessions", testSignedOutSessions},
	{"SignedOutSessionsPurged", testSignedOutSessionsPurged},
}

func testSignedOutSessions(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	signedOut := func(id string, at time.Time) bool {
		t.Helper()
		ok, err := st.SessionSignedOut(ctx, id, at)
		if err != nil {
			t.Fatalf("SessionSignedOut(%q): %v", id, err)
		}
		return ok
	}
	if signedOut("a", now) {
		t.Fatal("an id never signed out is signed out")
	}
	gen := st.Generation()
	if err := st.SignOutSession(ctx, "a", now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	if st.Generation() == gen {
		t.Error("a sign-out did not move the generation: cached answers would stay")
	}
	if !signedOut("a", now) || !signedOut("a", now.Add(time.Hour-time.Microsecond)) {
		t.Error("a signed-out session is not signed out before its expiry")
	}
	if signedOut("a", now.Add(time.Hour)) {
		t.Error("a signed-out session is still listed at its expiry")
	}
	// Ids are exact: another case, a prefix, another id are not it.
	for _, id := range []string{"A", "", "b", "a ", strings.Repeat("a", 129), "a\x00"} {
		if signedOut(id, now) {
			t.Errorf("%q is signed out", id)
		}
	}
	// Again: the later expiry is kept, an earlier one does not shorten it.
	if err := st.SignOutSession(ctx, "a", now.Add(2*time.Hour), now); err != nil {
		t.Fatal(err)
	}
	if err := st.SignOutSession(ctx, "a", now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if !signedOut("a", now.Add(90*time.Minute)) {
		t.Error("signing out again shortened the entry")
	}
	// Bad ids are refused, not stored.
	for _, id := range []string{"", strings.Repeat("x", 129), "bad\x00id", "\xff"} {
		if err := st.SignOutSession(ctx, id, now.Add(time.Hour), now); err == nil {
			t.Errorf("SignOutSession(%q) accepted", id)
		}
	}
	if err := st.SignOutSession(ctx, "z", time.Time{}, now); err == nil {
		t.Error("a sign-out without expiry accepted")
	}
	// In a transaction rolled back, nothing is recorded.
	rollback := context.Canceled
	err := st.InTx(ctx, func(tx store.Store) error {
		if err := tx.SignOutSession(ctx, "in-tx", now.Add(time.Hour), now); err != nil {
			return err
		}
		return rollback
	})
	if err != rollback {
		t.Fatalf("InTx: %v", err)
	}
	if signedOut("in-tx", now) {
		t.Error("a rolled-back sign-out is recorded")
	}
}

// testSignedOutSessionsPurged: a sign-out deletes the entries already
// expired, so the table holds only the sign-outs of one session lifetime.
func testSignedOutSessionsPurged(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, e := range []struct {
		id  string
		exp time.Time
	}{{"old-1", now.Add(time.Minute)}, {"old-2", now.Add(2 * time.Minute)}, {"young", now.Add(time.Hour)}} {
		if err := st.SignOutSession(ctx, e.id, e.exp, now); err != nil {
			t.Fatal(err)
		}
	}
	// A sign-out ten minutes later deletes the two expired entries: asked
	// about a time before their expiry, the store no longer knows them.
	later := now.Add(10 * time.Minute)
	if err := st.SignOutSession(ctx, "new", later.Add(time.Hour), later); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"old-1": false, "old-2": false, "young": true, "new": true} {
		got, err := st.SessionSignedOut(ctx, id, now)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s at the first sign-out's time after the purge: %v, want %v", id, got, want)
		}
	}
}
