package directory_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

const lockoutPassword = "Correct-Horse-9"

// lockoutUser is a directory on a settable clock and one user of it.
func lockoutUser(t *testing.T, st store.Store) (*directory.Service, *clock, *directory.User) {
	t.Helper()
	c := &clock{t: time.Now().UTC()}
	d, err := directory.New(st, key(1), key(2), directory.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.EnsureFirstParty(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := d.CreateTenant(ctx, "locks")
	if err != nil {
		t.Fatal(err)
	}
	u, err := d.CreateUser(ctx, b.Tenant.ID, directory.NewUser{UserPrincipalName: "ada@" + b.Tenant.Domain, DisplayName: "Ada",
		Password: lockoutPassword, AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return d, c, u
}

func wantSignIn(t *testing.T, d *directory.Service, u *directory.User, password string, want error, what string) {
	t.Helper()
	if err := d.CheckPasswordSignIn(context.Background(), u, password); !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

// failTimes signs in with n different wrong passwords, each expected to
// be refused as wrong.
func failTimes(t *testing.T, d *directory.Service, u *directory.User, n int, tag string) {
	t.Helper()
	for i := range n {
		wantSignIn(t, d, u, fmt.Sprintf("wrong-%s-%d", tag, i), directory.ErrBadPassword, fmt.Sprintf("wrong password %s %d", tag, i))
	}
}

func TestSmartLockout(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		d, c, u := lockoutUser(t, st)

		// Nine failures, then the right password: no lock, and the count
		// starts over.
		failTimes(t, d, u, directory.LockoutThreshold-1, "a")
		wantSignIn(t, d, u, lockoutPassword, nil, "right password below the threshold")
		failTimes(t, d, u, directory.LockoutThreshold-1, "b")
		wantSignIn(t, d, u, lockoutPassword, nil, "right password after the count was reset")

		// The tenth failure locks: the right password is refused for the
		// lockout's minute, and accepted after.
		failTimes(t, d, u, directory.LockoutThreshold, "c")
		wantSignIn(t, d, u, lockoutPassword, directory.ErrAccountLocked, "right password while locked")
		wantSignIn(t, d, u, "wrong-while-locked", directory.ErrAccountLocked, "wrong password while locked")
		c.add(directory.LockoutDuration - time.Second)
		wantSignIn(t, d, u, lockoutPassword, directory.ErrAccountLocked, "right password a second before the lock ends")
		c.add(2 * time.Second)
		wantSignIn(t, d, u, lockoutPassword, nil, "right password after the lock")

		// The next lockout lasts twice as long; after it, the first
		// failure locks again, for longer still.
		failTimes(t, d, u, directory.LockoutThreshold, "d")
		c.add(2*directory.LockoutDuration - time.Second)
		wantSignIn(t, d, u, lockoutPassword, directory.ErrAccountLocked, "second lock before its two minutes")
		c.add(2 * time.Second)
		failTimes(t, d, u, 1, "e")
		wantSignIn(t, d, u, lockoutPassword, directory.ErrAccountLocked, "locked again by the first failure after a lock")
		c.add(4*directory.LockoutDuration - 2*time.Second)
		wantSignIn(t, d, u, lockoutPassword, directory.ErrAccountLocked, "third lock before its four minutes")
		c.add(3 * time.Second)
		wantSignIn(t, d, u, lockoutPassword, nil, "right password after the third lock")

		// A password change clears the history: nine failures later the
		// account is still open, and no lock is a doubled one.
		ctx := context.Background()
		newPassword := "Battery-Staple-7"
		_, err := d.UpdateUser(ctx, u.TenantID, u.ID, directory.UserChanges{Password: &newPassword})
		if err != nil {
			t.Fatal(err)
		}
		u, err = d.GetUser(ctx, u.TenantID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		failTimes(t, d, u, directory.LockoutThreshold, "f")
		c.add(directory.LockoutDuration + time.Second)
		wantSignIn(t, d, u, newPassword, nil, "after a first lock since the password change")
	})
}

func TestSmartLockoutRepeatedPassword(t *testing.T) {
	d, _, u := lockoutUser(t, storetest.SQLite(t))
	// The same wrong password, however often, counts once.
	for i := range 3 * directory.LockoutThreshold {
		wantSignIn(t, d, u, "the-same-typo", directory.ErrBadPassword, fmt.Sprintf("repeat %d", i))
	}
	failTimes(t, d, u, directory.LockoutThreshold-2, "g")
	wantSignIn(t, d, u, lockoutPassword, nil, "nine distinct failures, one of them repeated")

	// Only the last three wrong passwords are remembered: a fourth one
	// back counts again.
	for _, p := range []string{"w1", "w2", "w3", "w4", "w1", "w1"} {
		wantSignIn(t, d, u, p, directory.ErrBadPassword, p)
	}
	failTimes(t, d, u, directory.LockoutThreshold-6, "h") // 5 counted above + 4 = 9
	wantSignIn(t, d, u, lockoutPassword, nil, "nine counted failures")
	for _, p := range []string{"w1", "w2", "w3", "w4", "w1"} {
		wantSignIn(t, d, u, p, directory.ErrBadPassword, p)
	}
	failTimes(t, d, u, directory.LockoutThreshold-5, "i") // 5 + 5 = 10
	wantSignIn(t, d, u, lockoutPassword, directory.ErrAccountLocked, "ten counted failures")
}

func TestSmartLockoutQuietPeriod(t *testing.T) {
	d, c, u := lockoutUser(t, storetest.SQLite(t))
	failTimes(t, d, u, directory.LockoutThreshold-1, "a")
	c.add(24 * time.Hour)
	// The old failures are forgotten: nine more do not lock.
	failTimes(t, d, u, directory.LockoutThreshold-1, "b")
	wantSignIn(t, d, u, lockoutPassword, nil, "after a quiet day")
}

// Concurrent wrong passwords, on a store every server shares: exactly the
// threshold's worth are counted and answered as wrong; every other one,
// whether it arrived after the lock or raced it, is answered as locked.
func TestSmartLockoutConcurrent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		d, _, u := lockoutUser(t, st)
		const attempts = 3 * directory.LockoutThreshold
		results := make(chan error, attempts)
		var wg sync.WaitGroup
		for i := range attempts {
			wg.Go(func() { results <- d.CheckPasswordSignIn(context.Background(), u, fmt.Sprintf("guess-%d", i)) })
		}
		wg.Wait()
		close(results)
		var wrong, locked int
		for err := range results {
			switch {
			case errors.Is(err, directory.ErrBadPassword):
				wrong++
			case errors.Is(err, directory.ErrAccountLocked):
				locked++
			default:
				t.Fatalf("concurrent sign-in: %v", err)
			}
		}
		if wrong != directory.LockoutThreshold || locked != attempts-directory.LockoutThreshold {
			t.Fatalf("%d answered wrong, %d locked; want %d and %d", wrong, locked, directory.LockoutThreshold, attempts-directory.LockoutThreshold)
		}
		l, err := st.GetLockout(context.Background(), u.TenantID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if l.Lockouts != 1 {
			t.Fatalf("lockouts = %d, want 1", l.Lockouts)
		}
		wantSignIn(t, d, u, lockoutPassword, directory.ErrAccountLocked, "right password after the burst")
	})
}
