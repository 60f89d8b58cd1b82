package directory

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Smart lockout, as Entra ID does it by default
// (https://learn.microsoft.com/entra/identity/authentication/howto-password-smart-lockout):
// "smart lockout locks an account from sign-in after 10 failed attempts
// [...] The account locks again after each subsequent failed sign-in
// attempt. The lockout period is one minute at first, and longer in
// subsequent attempts", and "Smart lockout tracks the last three bad
// password hashes to avoid incrementing the lockout counter for the same
// password". Entra does not disclose how fast the period grows; it doubles
// here. While an account is locked, a sign-in is refused before the
// password is even hashed, so a locked account costs an attacker's
// requests one store read each.
//
// What Entra leaves open is decided so:
//   - a successful sign-in resets the count of failures and the remembered
//     bad passwords, but not the number of lockouts in a row, so an
//     attacker who keeps guessing after the user signs in meets ten more
//     failures and then a longer lock, not a one-minute one again;
//   - the history (failures, lockouts in a row, bad passwords) is forgotten
//     after lockoutQuietPeriod without a failure and without a lock;
//   - a password change (the user's or an administrator's reset) clears it
//     all, as the doc says a changed password resets the duration.
//
// Familiar and unfamiliar locations are not told apart: every attempt
// counts towards one counter, the stricter choice.
const (
	LockoutThreshold    = 10
	LockoutDuration     = time.Minute
	maxLockoutDuration  = time.Hour
	lockoutQuietPeriod  = 24 * time.Hour
	recentBadPasswords  = 3
	maxPasswordLength   = 256 // Entra's limit; longer is wrong without hashing
	maxLockoutAttempts  = 64  // bounds the retries of one lockout update
	lockoutDigestLength = 16
)

// Errors of a password sign-in.
var (
	// ErrBadPassword: the password is wrong (or the user may not sign in
	// with one).
	ErrBadPassword = errors.New("directory: invalid username or password")
	// ErrAccountLocked: smart lockout holds the account; the password was
	// not checked. Entra answers AADSTS50053.
	ErrAccountLocked = errors.New("directory: account locked after too many failed sign-ins")
)

// lockoutFor is how long the n-th lockout in a row lasts (n >= 1).
func lockoutFor(n int) time.Duration {
	d := LockoutDuration
	for i := 1; i < n && d < maxLockoutDuration; i++ {
		d *= 2
	}
	return min(d, maxLockoutDuration)
}

// CheckPasswordSignIn checks a password sign-in of u under smart lockout.
// It returns nil when the password is right, ErrAccountLocked while the
// account is locked (without looking at the password), ErrBadPassword when
// the password is wrong (the failure counted, unless it repeats one of the
// last wrong passwords), ErrPasswordBusy when the password could not be
// checked in time (retryable, nothing counted), or a store error. Whether
// the account is enabled is the caller's question.
func (s *Service) CheckPasswordSignIn(ctx context.Context, u *User, password string) error {
	l, err := s.st.GetLockout(ctx, u.TenantID, u.ID)
	if err != nil {
		return err
	}
	if s.now().Before(l.LockedUntil) {
		return ErrAccountLocked
	}
	ok := false
	if len(password) <= maxPasswordLength {
		if ok, err = s.verifyPassword(ctx, u.PasswordHash, password); err != nil {
			return err
		}
	}
	if ok {
		// Guesses that were already waiting for a hashing slot when the
		// account locked must not get through: a right password found
		// while the account is locked is refused like any other attempt.
		current, err := s.st.GetLockout(ctx, u.TenantID, u.ID)
		if err != nil {
			return err
		}
		if s.now().Before(current.LockedUntil) {
			return ErrAccountLocked
		}
		return s.signInSucceeded(ctx, u, current)
	}
	return s.signInFailed(ctx, u, password)
}

// signInSucceeded forgets the failures counted before a successful sign-in
// (see the package's lockout rules), writing only when there is something
// to forget, so that the common case costs no write.
func (s *Service) signInSucceeded(ctx context.Context, u *User, l store.Lockout) error {
	if l.Failures == 0 && len(l.Recent) == 0 {
		return nil
	}
	_, err := s.updateLockout(ctx, u, func(l *store.Lockout) (bool, error) {
		if l.Failures == 0 && len(l.Recent) == 0 {
			return false, nil
		}
		l.Failures, l.Recent = 0, nil
		return true, nil
	})
	return err
}

// signInFailed counts a wrong password and locks the account at the
// threshold. It reports ErrBadPassword, or ErrAccountLocked if another
// request locked the account meanwhile.
func (s *Service) signInFailed(ctx context.Context, u *User, password string) error {
	digest := s.badPasswordDigest(u, password)
	locked := false
	_, err := s.updateLockout(ctx, u, func(l *store.Lockout) (bool, error) {
		now := s.now()
		if now.Before(l.LockedUntil) {
			locked = true
			return false, nil
		}
		if quiet := now.Sub(later(l.LastFailure, l.LockedUntil)); l.Version > 0 && quiet >= lockoutQuietPeriod {
			l.Failures, l.Lockouts, l.Recent = 0, 0, nil
		}
		if slices.Contains(l.Recent, digest) {
			return false, nil // the same wrong password again: not counted twice
		}
		l.Failures++
		l.LastFailure = now
		l.Recent = append(l.Recent, digest)
		if len(l.Recent) > recentBadPasswords {
			l.Recent = slices.Clone(l.Recent[len(l.Recent)-recentBadPasswords:])
		}
		if l.Failures >= LockoutThreshold {
			l.Lockouts++
			l.LockedUntil = now.Add(lockoutFor(l.Lockouts))
			// The first failure after the lock expires locks again.
			l.Failures = LockoutThreshold - 1
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if locked {
		return ErrAccountLocked
	}
	return ErrBadPassword
}

// clearLockout forgets an account's lockout history: its password changed.
func (s *Service) clearLockout(ctx context.Context, u *User) error {
	_, err := s.updateLockout(ctx, u, func(l *store.Lockout) (bool, error) {
		if l.Version == 0 {
			return false, nil
		}
		l.Failures, l.Lockouts, l.LockedUntil, l.LastFailure, l.Recent = 0, 0, time.Time{}, time.Time{}, nil
		return true, nil
	})
	return err
}

// updateLockout reads the account's state, lets mutate change it, and
// writes it back if nobody wrote in between; otherwise it starts over, as
// update does for directory objects, so that no failure counted by a
// concurrent request (on this server or another) is lost.
func (s *Service) updateLockout(ctx context.Context, u *User, mutate func(*store.Lockout) (bool, error)) (store.Lockout, error) {
	for attempt := 0; ; attempt++ {
		l, err := s.st.GetLockout(ctx, u.TenantID, u.ID)
		if err != nil {
			return l, err
		}
		write, err := mutate(&l)
		if err != nil || !write {
			return l, err
		}
		saved, err := s.st.PutLockout(ctx, l)
		if errors.Is(err, store.ErrPrecondition) && attempt < maxLockoutAttempts {
			time.Sleep(time.Duration(rand.IntN(500*(attempt+1))) * time.Microsecond)
			continue
		}
		if err != nil {
			return l, fmt.Errorf("directory: lockout state of %s: %w", u.ID, err)
		}
		return saved, nil
	}
}

// badPasswordDigest is what is remembered of a wrong password: an HMAC
// under the server's hash key, bound to the account, so that the store
// never holds anything a stolen database lets anyone test guesses against.
func (s *Service) badPasswordDigest(u *User, password string) string {
	m := hmac.New(sha256.New, s.hashKey)
	fmt.Fprintf(m, "lockout\x00%s\x00%s\x00", u.TenantID, u.ID)
	m.Write([]byte(password))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:lockoutDigestLength])
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
