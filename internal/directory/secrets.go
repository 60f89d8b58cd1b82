package directory

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/argon2"
)

// secretAlphabet is the character set of Entra client secrets.
const secretAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.~"

// newClientSecret returns a secret in Entra's shape: a three-character hint,
// a digit and "Q~", then 34 random characters — about 220 bits of entropy,
// enough that a fast keyed hash is the right way to store it.
func newClientSecret() string {
	var b strings.Builder
	b.WriteString(randomString(3, secretAlphabet[:62]))
	b.WriteString(randomString(1, "0123456789"))
	b.WriteString("Q~")
	b.WriteString(randomString(34, secretAlphabet))
	return b.String()
}

func randomString(n int, alphabet string) string {
	out := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range out {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("directory: crypto/rand failed: " + err.Error())
		}
		out[i] = alphabet[v.Int64()]
	}
	return string(out)
}

// hashSecret is the keyed hash stored in place of a client secret. HMAC
// under a server key means a stolen database alone does not let anyone test
// guesses offline.
func (s *Service) hashSecret(secret string) []byte {
	m := hmac.New(sha256.New, s.hashKey)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// checkSecret finds the credential that matches secret, in constant time
// with respect to the secret, and reports ErrInvalidSecret when none does,
// ErrSecretExpired when the only match is outside its validity window, and
// ErrNoSecret when there is nothing to compare with.
func (s *Service) checkSecret(creds []PasswordCredential, secret string) (PasswordCredential, error) {
	if len(creds) == 0 {
		return PasswordCredential{}, ErrNoSecret
	}
	h := s.hashSecret(secret)
	now := s.now()
	var match *PasswordCredential
	for i := range creds {
		if subtle.ConstantTimeCompare(h, creds[i].Hash) == 1 {
			match = &creds[i]
		}
	}
	switch {
	case match == nil:
		return PasswordCredential{}, ErrInvalidSecret
	case now.After(match.EndDateTime) || now.Before(match.StartDateTime.Add(-5*time.Minute)):
		return *match, ErrSecretExpired
	}
	return *match, nil
}

// newPasswordCredential makes a fresh secret valid from start to end
// (default: now, and two years later, as the Entra portal offers).
func (s *Service) newPasswordCredential(displayName string, start, end time.Time) (PasswordCredential, error) {
	now := s.Now()
	if start.IsZero() {
		start = now
	}
	if end.IsZero() {
		end = start.AddDate(2, 0, 0)
	}
	if !end.After(start) {
		return PasswordCredential{}, invalidf("endDateTime must be later than startDateTime.")
	}
	secret := newClientSecret()
	return PasswordCredential{
		KeyID:         newID(),
		DisplayName:   displayName,
		Hint:          secret[:3],
		StartDateTime: start.UTC(),
		EndDateTime:   end.UTC(),
		Hash:          s.hashSecret(secret),
		SecretText:    secret,
	}, nil
}

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// Password hashing is bounded: each argon2id call takes argonMemory (19
// MiB) for as long as it runs, so unbounded concurrency (a burst of wrong
// passwords) would grow the process by 19 MiB per request and starve every
// other request of CPU. At most one hash per core but one runs at a time
// (at least one), which keeps memory flat and leaves a core to everything
// else: on two cores, one slot instead of two kept the token endpoint's
// p99 at 43 ms instead of 98 ms under 64 parallel wrong passwords, for
// about the same guesses per second (docs/benchmarks.md). The others
// queue, each until its
// request's deadline or DefaultHashWait, whichever comes first, and then
// give up with ErrPasswordBusy, which the surfaces answer as a retryable
// "try again" (the token endpoint: Entra's temporarily_unavailable).
const DefaultHashWait = 5 * time.Second

// ErrPasswordBusy means a password could not be hashed in time because
// every hashing slot stayed busy: the caller may retry. Nothing was
// counted against the account.
var ErrPasswordBusy = errors.New("directory: too many password checks at once; try again")

// hashLimiter is a counting semaphore over password hashing.
type hashLimiter struct {
	slots chan struct{}
	wait  time.Duration
}

// newHashLimiter allows slots hashes at once (runtime.GOMAXPROCS less one,
// at least one, when 0) and makes a caller wait at most wait for one
// (DefaultHashWait when 0).
func newHashLimiter(slots int, wait time.Duration) *hashLimiter {
	if slots <= 0 {
		slots = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if wait <= 0 {
		wait = DefaultHashWait
	}
	return &hashLimiter{slots: make(chan struct{}, slots), wait: wait}
}

// WithPasswordHashing sets how many password hashes run at once (0: one
// per core but one) and how long a caller waits for a slot (0: DefaultHashWait).
func WithPasswordHashing(slots int, wait time.Duration) Option {
	return func(s *Service) { s.hashing = newHashLimiter(slots, wait) }
}

// do runs fn in a slot, waiting for one until ctx ends or the limiter's
// wait passes.
func (h *hashLimiter) do(ctx context.Context, fn func()) error {
	select {
	case h.slots <- struct{}{}: // a free slot: no timer needed
	default:
		ctx, cancel := context.WithTimeout(ctx, h.wait)
		defer cancel()
		select {
		case h.slots <- struct{}{}:
		case <-ctx.Done():
			return ErrPasswordBusy
		}
	}
	defer func() { <-h.slots }()
	fn()
	return nil
}

// verifyPassword checks a password against its stored hash in a hashing slot.
func (s *Service) verifyPassword(ctx context.Context, encoded, password string) (bool, error) {
	var ok bool
	err := s.hashing.do(ctx, func() { ok = checkPassword(encoded, password) })
	return ok, err
}

// newPasswordHash hashes a new password in a hashing slot.
func (s *Service) newPasswordHash(ctx context.Context, password string) (string, error) {
	var h string
	err := s.hashing.do(ctx, func() { h = hashPassword(password) })
	return h, err
}

// hashPassword returns the argon2id hash of a user's password in the PHC
// string format. Call it through newPasswordHash, which bounds how many run.
func hashPassword(password string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic("directory: crypto/rand failed: " + err.Error())
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// checkPassword verifies a password against a PHC argon2id hash in
// constant time. Call it through verifyPassword, which bounds how many run.
func checkPassword(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil || threads == 0 || iters == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, iters, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// checkPasswordPolicy applies Entra's default rules: 8 to 256 characters,
// and three of the four classes upper, lower, digit, symbol.
func checkPasswordPolicy(p string) error {
	if len(p) < 8 || len(p) > 256 {
		return invalidf("The specified password does not comply with password complexity requirements. Please provide a different password.")
	}
	var upper, lower, digit, other int
	for _, r := range p {
		switch {
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			other = 1
		}
	}
	if upper+lower+digit+other < 3 {
		return invalidf("The specified password does not comply with password complexity requirements. Please provide a different password.")
	}
	return nil
}

// TOTP (RFC 6238): SHA-1, 30-second steps, 6 digits, as every authenticator app does.
const totpStep = 30 * time.Second

func totpCode(secret []byte, counter uint64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1_000_000)
}

// totpValid accepts the code for the current step and one step either side,
// for clock drift between the server and the phone.
func totpValid(secret []byte, code string, now time.Time) bool {
	if len(code) != 6 {
		return false
	}
	step := uint64(now.Unix() / int64(totpStep/time.Second))
	ok := 0
	for _, c := range []uint64{step - 1, step, step + 1} {
		ok |= subtle.ConstantTimeCompare([]byte(totpCode(secret, c)), []byte(code))
	}
	return ok == 1
}

// TOTPCode returns the current code for a base32 secret; tools and tests use
// it to answer the MFA step as an authenticator app would.
func TOTPCode(base32Secret string, now time.Time) (string, error) {
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(base32Secret))
	if err != nil {
		return "", fmt.Errorf("directory: bad TOTP secret: %w", err)
	}
	return totpCode(secret, uint64(now.Unix()/int64(totpStep/time.Second))), nil
}
