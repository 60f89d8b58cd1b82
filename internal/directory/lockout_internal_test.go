package directory

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

func testKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// With every hashing slot taken, a password check waits for its deadline
// and gives up with ErrPasswordBusy, counting nothing; a locked account is
// refused without waiting for a slot at all, because its password is
// never hashed.
func TestPasswordHashingBounded(t *testing.T) {
	st := storetest.SQLite(t)
	now := time.Now()
	d, u := oneSlotUser(t, st, 20*time.Millisecond, WithClock(func() time.Time { return now }))
	ctx := context.Background()

	d.hashing.slots <- struct{}{} // every slot busy
	if err := d.CheckPasswordSignIn(ctx, u, "Correct-Horse-9"); !errors.Is(err, ErrPasswordBusy) {
		t.Fatalf("sign-in with no free slot: %v", err)
	}
	if err := d.CheckPasswordSignIn(ctx, u, "wrong"); !errors.Is(err, ErrPasswordBusy) {
		t.Fatalf("wrong password with no free slot: %v", err)
	}
	if l, err := st.GetLockout(ctx, u.TenantID, u.ID); err != nil || l.Version != 0 {
		t.Fatalf("a check that never ran was counted: %+v %v", l, err)
	}
	if _, err := d.CreateUser(ctx, u.TenantID, NewUser{UserPrincipalName: "bob@busy.onmicrosoft.com", DisplayName: "Bob",
		Password: "Correct-Horse-9", AccountEnabled: true}); !errors.Is(err, ErrPasswordBusy) {
		t.Fatalf("create user with no free slot: %v", err)
	}
	pw := "Battery-Staple-7"
	if _, err := d.UpdateUser(ctx, u.TenantID, u.ID, UserChanges{Password: &pw}); !errors.Is(err, ErrPasswordBusy) {
		t.Fatalf("password change with no free slot: %v", err)
	}
	<-d.hashing.slots

	// A request's own deadline ends its wait before the limiter's does.
	d.hashing = newHashLimiter(1, time.Hour)
	d.hashing.slots <- struct{}{}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := d.CheckPasswordSignIn(short, u, "Correct-Horse-9"); !errors.Is(err, ErrPasswordBusy) {
		t.Fatalf("request deadline while queued: %v", err)
	}
	<-d.hashing.slots

	for i := range LockoutThreshold {
		if err := d.CheckPasswordSignIn(ctx, u, "wrong-"+string(rune('a'+i))); !errors.Is(err, ErrBadPassword) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	d.hashing.slots <- struct{}{}
	if err := d.CheckPasswordSignIn(ctx, u, "Correct-Horse-9"); !errors.Is(err, ErrAccountLocked) {
		t.Fatalf("locked account with no free slot: %v", err)
	}
	<-d.hashing.slots
}

func TestLockoutDurations(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 7: time.Hour, 100: time.Hour} {
		if got := lockoutFor(n); got != want {
			t.Errorf("lockout %d lasts %v, want %v", n, got, want)
		}
	}
}

// A right password that was waiting for a hashing slot when the account
// locked is refused: guesses in flight at the lock cannot get through it.
func TestLockedWhileWaitingForHash(t *testing.T) {
	st := storetest.SQLite(t)
	d, u := oneSlotUser(t, st, 10*time.Second)
	ctx := context.Background()
	d.hashing.slots <- struct{}{} // the one slot is busy
	done := make(chan error, 1)
	go func() { done <- d.CheckPasswordSignIn(ctx, u, "Correct-Horse-9") }()
	// Give the check time to read the (unlocked) state and queue for the
	// slot (were it later, it would see the lock at once: the answer is
	// the same), then lock the account as ten other guesses would.
	time.Sleep(100 * time.Millisecond)
	l, err := st.GetLockout(ctx, u.TenantID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	l.TenantID, l.UserID, l.Lockouts, l.LockedUntil = u.TenantID, u.ID, 1, time.Now().Add(time.Minute)
	if _, err := st.PutLockout(ctx, l); err != nil {
		t.Fatal(err)
	}
	<-d.hashing.slots // the slot frees
	if err := <-done; !errors.Is(err, ErrAccountLocked) {
		t.Fatalf("right password finished hashing after the lock: %v, want ErrAccountLocked", err)
	}
}

// oneSlotUser is a directory with one password-hashing slot (callers wait
// at most wait for it) and a user of a fresh tenant whose password is
// Correct-Horse-9.
func oneSlotUser(t *testing.T, st store.Store, wait time.Duration, opts ...Option) (*Service, *User) {
	t.Helper()
	d, err := New(st, testKey(t), testKey(t), append([]Option{WithPasswordHashing(1, wait)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.EnsureFirstParty(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := d.CreateTenant(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	u, err := d.CreateUser(ctx, b.Tenant.ID, NewUser{UserPrincipalName: "ada@" + b.Tenant.Domain, DisplayName: "Ada",
		Password: "Correct-Horse-9", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return d, u
}
