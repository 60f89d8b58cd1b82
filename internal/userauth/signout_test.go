package userauth_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

// countingStore counts the store reads of signed-out sessions.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (c *countingStore) SessionSignedOut(ctx context.Context, id string, now time.Time) (bool, error) {
	c.reads.Add(1)
	return c.Store.SessionSignedOut(ctx, id, now)
}

// TestSignOutsCachedPerGeneration: asking again about a session costs no
// store read until the store changes; a sign-out is seen at once; session
// ids differ per session and do not reveal the anti-forgery token.
func TestSignOutsCachedPerGeneration(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	st := &countingStore{Store: storetest.SQLite(t)}
	so := userauth.NewSignOuts(st)
	a := userauth.Session{CSRF: userauth.NewID(), Expires: now.Add(time.Hour)}
	b := userauth.Session{CSRF: userauth.NewID(), Expires: now.Add(time.Hour)}
	if a.ID() == b.ID() || a.ID() == a.CSRF || len(a.ID()) != 32 {
		t.Fatalf("session ids %q and %q", a.ID(), b.ID())
	}
	for range 3 {
		if out, err := so.SignedOut(ctx, a.ID(), now); err != nil || out {
			t.Fatalf("a session never signed out: %v %v", out, err)
		}
	}
	if n := st.reads.Load(); n != 1 {
		t.Errorf("three questions under one generation read the store %d times, want 1", n)
	}
	if err := so.SignOut(ctx, a.ID(), a.Expires, now); err != nil {
		t.Fatal(err)
	}
	if out, err := so.SignedOut(ctx, a.ID(), now); err != nil || !out {
		t.Errorf("right after its sign-out: %v %v", out, err)
	}
	if out, err := so.SignedOut(ctx, b.ID(), now); err != nil || out {
		t.Errorf("another session after the sign-out: %v %v", out, err)
	}
}
