package userauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func key(t *testing.T) []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

func TestCodeRoundTripAndExpiry(t *testing.T) {
	kek := key(t)
	now := time.Now()
	s, err := SealCode(kek, Code{TenantID: "t", ClientID: "c", UserID: "u", Scopes: []string{"openid"}, Version: 2, Expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCode(kek, s, now)
	if err != nil || c.ID == "" || c.UserID != "u" || c.Scopes[0] != "openid" {
		t.Fatalf("open: %+v %v", c, err)
	}
	if _, err := OpenCode(kek, s, now.Add(2*time.Minute)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired code: %v", err)
	}
	if _, err := OpenCode(key(t), s, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("another key: %v", err)
	}
	bad := []byte(s)
	bad[10] ^= 1
	if _, err := OpenCode(kek, string(bad), now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("tampered code: %v", err)
	}
	if _, err := OpenCode(kek, strings.Repeat("A", maxSealed+1), now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("oversized: %v", err)
	}
}

// A session cookie is not a code, and a code is not a session.
func TestKindsDoNotMix(t *testing.T) {
	kek := key(t)
	now := time.Now()
	sess, _ := SealSession(kek, Session{UserID: "u", Expires: now.Add(time.Hour)})
	if _, err := OpenCode(kek, sess, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("session opened as a code: %v", err)
	}
	code, _ := SealCode(kek, Code{UserID: "u", Expires: now.Add(time.Hour)})
	if _, err := OpenSession(kek, code, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("code opened as a session: %v", err)
	}
	if s, err := OpenSession(kek, sess, now); err != nil || s.UserID != "u" {
		t.Fatalf("session: %+v %v", s, err)
	}
}

func TestPKCE(t *testing.T) {
	verifier := strings.Repeat("a1-._~", 8) // 48 characters
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	if !ValidChallenge(challenge) || !VerifyPKCE(challenge, "S256", verifier) {
		t.Fatal("the RFC 7636 S256 pair is refused")
	}
	// RFC 7636 appendix B's example.
	if !VerifyPKCE("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") {
		t.Fatal("RFC 7636 appendix B example refused")
	}
	for name, tc := range map[string][3]string{
		"plain":          {verifier, "plain", verifier},
		"wrong verifier": {challenge, "S256", verifier + "x"},
		"short verifier": {challenge, "S256", "abc"},
		"bad characters": {challenge, "S256", strings.Repeat("a", 42) + "!"},
	} {
		if VerifyPKCE(tc[0], tc[1], tc[2]) {
			t.Errorf("%s accepted", name)
		}
	}
}

// FuzzOpen: no input opens as a code or a session except what was sealed,
// and none panics.
func FuzzOpen(f *testing.F) {
	kek := make([]byte, 32)
	good, _ := SealCode(kek, Code{UserID: "u", Expires: time.Now().Add(time.Hour)})
	f.Add(good)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		now := time.Now()
		// Only what this key sealed opens (the seed); anything else is a
		// forgery, which the AEAD refuses.
		if c, err := OpenCode(kek, s, now); err == nil && c.UserID != "u" {
			t.Fatalf("%q opened as a code: %+v", s, c)
		}
		if _, err := OpenSession(kek, s, now); err == nil {
			t.Fatalf("%q opened as a session", s)
		}
	})
}
