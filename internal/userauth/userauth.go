// Package userauth holds what the sign-in pages (package signin) hand to
// the token service (package sts) when a user signs in: the authorization
// code and the browser session, both sealed under the key-encryption key
// so that neither needs a database row, and PKCE.
//
// An authorization code is opaque to the client, like Entra's. It carries
// everything the token endpoint needs to issue the user's tokens, sealed
// (AES-256-GCM) with additional data that says what it is, so a session
// cookie can never be redeemed as a code or the other way round. A code is
// redeemed once: the token endpoint records its ID as used
// (store.OneTimeUse) until it expires.
package userauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/sealed"
)

// CodeLifetime is how long an authorization code can be redeemed; Entra's
// codes live about ten minutes.
const CodeLifetime = 10 * time.Minute

// Errors of OpenCode and OpenSession.
var (
	ErrInvalid = errors.New("userauth: not a valid sealed value")
	ErrExpired = errors.New("userauth: expired")
)

// Code is what an authorization code stands for.
type Code struct {
	ID          string `json:"id"`  // random; the one-time-use key
	TenantID    string `json:"tid"` // the tenant the user signed in to (resolved from common/organizations)
	ClientID    string `json:"cid"` // the client's appId
	RedirectURI string `json:"ru"`  // as sent to authorize; the token request must repeat it exactly
	// SPA says RedirectURI is one of the application's single-page
	// application (spa) redirect URIs: the code is then redeemed only by
	// a cross-origin request with PKCE and no client credential, as Entra
	// requires (see sts's authorization code grant).
	SPA    bool   `json:"spa,omitempty"`
	UserID string `json:"oid"` // the signed-in user's object id
	// Scopes are the scopes the client asked for, as it asked (v2:
	// "https://graph.microsoft.com/User.Read", "openid", "offline_access";
	// v1: empty, see Resource).
	Scopes   []string `json:"scp,omitempty"`
	Resource string   `json:"res,omitempty"` // v1 authorize's resource parameter
	// Version is the endpoint the code came from: 1 (/oauth2/authorize)
	// or 2 (/oauth2/v2.0/authorize).
	Version             int       `json:"v"`
	Nonce               string    `json:"nonce,omitempty"`
	CodeChallenge       string    `json:"cc,omitempty"`
	CodeChallengeMethod string    `json:"ccm,omitempty"` // "S256" (plain is refused at authorize)
	AuthTime            time.Time `json:"at"`
	AMR                 []string  `json:"amr,omitempty"` // "pwd", "mfa"
	Expires             time.Time `json:"exp"`
}

// Session is a signed-in browser: who, in which tenant, since when, how.
// It lives in a cookie, sealed.
type Session struct {
	TenantID string    `json:"tid"`
	UserID   string    `json:"oid"`
	UPN      string    `json:"upn"`
	AuthTime time.Time `json:"at"`
	AMR      []string  `json:"amr,omitempty"`
	Expires  time.Time `json:"exp"`
	// CSRF is the session's anti-forgery token, echoed by every form.
	CSRF string `json:"csrf"`
}

// What each sealed kind is bound to (the AEAD's additional data).
var (
	codeAAD    = []byte("tenantbridge authorization code v1")
	sessionAAD = []byte("tenantbridge browser session v1")
)

// NewID returns 128 random bits, base64url: code ids, CSRF tokens.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SealCode returns the code's opaque text. It sets ID when empty.
func SealCode(kek []byte, c Code) (string, error) {
	if c.ID == "" {
		c.ID = NewID()
	}
	return seal(kek, c, codeAAD)
}

// OpenCode returns the code behind s if it is one of ours and has not
// expired at now. It does not check one-time use: the caller does.
func OpenCode(kek []byte, s string, now time.Time) (Code, error) {
	var c Code
	if err := open(kek, s, codeAAD, &c); err != nil {
		return Code{}, err
	}
	if !now.Before(c.Expires) {
		return Code{}, ErrExpired
	}
	return c, nil
}

// SealSession returns the cookie value of a session.
func SealSession(kek []byte, s Session) (string, error) { return seal(kek, s, sessionAAD) }

// OpenSession returns the session behind a cookie value, if unexpired.
func OpenSession(kek []byte, v string, now time.Time) (Session, error) {
	var s Session
	if err := open(kek, v, sessionAAD, &s); err != nil {
		return Session{}, err
	}
	if !now.Before(s.Expires) {
		return Session{}, ErrExpired
	}
	return s, nil
}

// SealJSON seals v (as JSON) under kek, bound to aad, the way codes and
// sessions are sealed: for other short-lived browser state, such as the
// console's operator session. aad must name what the value is, and differ
// from every other kind's.
func SealJSON(kek []byte, v any, aad []byte) (string, error) { return seal(kek, v, aad) }

// OpenJSON opens into v what SealJSON sealed with the same kek and aad.
// It does not look at any expiry inside: the caller does.
func OpenJSON(kek []byte, s string, aad []byte, v any) error { return open(kek, s, aad, v) }

// maxSealed bounds what open accepts, before any work.
const maxSealed = 8 << 10

func seal(kek []byte, v any, aad []byte) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	box, err := sealed.Seal(kek, plain, aad)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(box), nil
}

func open(kek []byte, s string, aad []byte, v any) error {
	if s == "" || len(s) > maxSealed {
		return ErrInvalid
	}
	box, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return ErrInvalid
	}
	plain, err := sealed.Open(kek, box, aad)
	if err != nil {
		return ErrInvalid
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// VerifyPKCE checks a code_verifier against the challenge sent to
// authorize (RFC 7636). Only S256 is accepted: "plain" offers nothing
// over no PKCE, and Entra recommends S256. The verifier must be 43 to 128
// characters of the unreserved set.
func VerifyPKCE(challenge, method, verifier string) bool {
	if method != "S256" || len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// ValidChallenge reports whether a code_challenge is a base64url SHA-256
// (43 characters), as S256 makes.
func ValidChallenge(challenge string) bool {
	if len(challenge) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(challenge)
	return err == nil
}
