// Package oidcfed verifies the JSON Web Tokens that workloads present as
// client_assertion under workload identity federation: a token from an
// external OpenID Connect issuer (a Kubernetes service-account issuer, a
// GitHub Actions-style issuer, or another tenant of this very server) that a
// federated identity credential trusts.
//
// The issuer's signing keys are found the way every relying party finds
// them: the issuer's OpenID discovery document names its jwks_uri, and the
// JWK Set there holds the keys. Both are fetched over HTTPS only, cached per
// issuer, fetched once for any number of concurrent verifications, and
// refetched when a token names a key the cache does not hold (the issuer has
// rotated), at most once per refresh interval so that tokens with made-up
// key ids cannot turn the verifier into a request amplifier. Issuers this
// server operates itself are resolved locally, without a round trip to
// itself.
//
// The package verifies and reports; deciding whether the issuer, subject
// and audience match a federated identity credential is the caller's job.
package oidcfed

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The kinds of failure. Every error Verify returns wraps exactly one of
// them (test with errors.Is), so that the token service can answer each with
// Entra's own AADSTS code, and is an *Error carrying the issuer and key id
// it concerns (test with errors.As).
var (
	// ErrMalformed: not a compact JWS, bad base64url or JSON, or a
	// required claim (iss, sub, aud, exp) missing or of the wrong type.
	ErrMalformed = errors.New("malformed assertion")
	// ErrAlgorithm: alg is not one of RS256, RS384, RS512, PS256, PS384,
	// PS512, ES256, ES384, ES512. In particular "none" and every HMAC
	// algorithm are refused.
	ErrAlgorithm = errors.New("unsupported signing algorithm")
	// ErrIssuerUnreachable: the issuer is not an https URL, or its
	// discovery document or JWK Set could not be fetched or did not
	// parse, or the discovery document names a different issuer.
	ErrIssuerUnreachable = errors.New("issuer keys unavailable")
	// ErrIssuerNotAllowed: VerifyFor's allow function refused the issuer.
	ErrIssuerNotAllowed = errors.New("issuer not allowed")
	// ErrKeyNotFound: the issuer publishes no key with the token's kid,
	// even after a refresh, or the key it publishes cannot verify the
	// token's alg (wrong key type, curve, size, use or alg).
	ErrKeyNotFound = errors.New("signing key not found")
	// ErrSignature: the signature does not verify with the issuer's key.
	ErrSignature = errors.New("invalid signature")
	// ErrExpired: exp is in the past, beyond the allowed clock skew.
	ErrExpired = errors.New("assertion expired")
	// ErrNotYetValid: nbf is in the future, beyond the allowed clock skew.
	ErrNotYetValid = errors.New("assertion not yet valid")
)

// Error is a verification failure. Its text holds only what is safe to log
// and to return to the client: the issuer URL and key id named by the token
// (quoted and clipped, since they are the sender's words), never the token.
type Error struct {
	Kind   error  // one of the Err… values above
	Issuer string // the asserted issuer, when it was read
	KeyID  string // the header kid, when it was read
	Detail string // what exactly was wrong
	Err    error  // the underlying cause, e.g. a network error; may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("oidcfed: ")
	b.WriteString(e.Kind.Error())
	if e.Issuer != "" {
		fmt.Fprintf(&b, ": issuer %q", clip(e.Issuer))
	}
	if e.KeyID != "" {
		fmt.Fprintf(&b, ", kid %q", clip(e.KeyID))
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// clip bounds a sender-chosen string before it goes into an error text.
func clip(s string) string {
	const max = 256
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// Assertion is a verified external token.
type Assertion struct {
	Issuer, Subject              string
	Audiences                    []string // aud may be a string or an array in the JWT
	Expires, NotBefore, IssuedAt time.Time
	ID                           string // jti, may be empty
	KeyID, Algorithm             string
}

// LocalKeys resolves issuers that this very server operates (its own
// tenants), so that a token from tenant A is verified against the server's
// own signing keys without a network round trip to itself. For a foreign
// issuer it returns issuerKnown=false, and the verifier goes to the network.
// For a known issuer without the key it returns issuerKnown=true,
// keyFound=false, and the verifier fails with ErrKeyNotFound. kid is "" when
// the token has none. key may be an *rsa.PublicKey or *ecdsa.PublicKey (or
// the private key, whose public half is used).
type LocalKeys func(issuer, kid string) (key crypto.PublicKey, issuerKnown bool, keyFound bool)

// Config configures a Verifier. Zero values take the documented defaults.
type Config struct {
	// Client fetches discovery documents and JWK Sets. Its TLS trust
	// decides which issuers are reachable. Required: without it every
	// foreign issuer fails with ErrIssuerUnreachable (local issuers still
	// work). Redirects are followed only to https URLs.
	Client *http.Client
	// Local resolves the server's own issuers; optional.
	Local LocalKeys
	// Now is the clock; default time.Now.
	Now func() time.Time
	// CacheTTL is how long an issuer's keys are used before they are
	// refetched; default 24h. A Cache-Control max-age on the discovery
	// or JWKS response shortens it, but not below 5 minutes. Keys are
	// served for up to twice the TTL while refetching fails.
	CacheTTL time.Duration
	// RefreshInterval is the minimum time between fetches of one issuer's
	// keys triggered by an unknown kid; default 5m.
	RefreshInterval time.Duration
	// ClockSkew is the tolerance for exp and nbf; default 2m. A negative
	// value means no tolerance.
	ClockSkew time.Duration
	// MaxIssuers bounds the number of issuers whose keys are cached;
	// default 1024. The least recently used is forgotten first.
	MaxIssuers int
}

// Defaults and fixed limits.
const (
	defaultCacheTTL        = 24 * time.Hour
	defaultRefreshInterval = 5 * time.Minute
	defaultClockSkew       = 2 * time.Minute
	defaultMaxIssuers      = 1024
	minMaxAge              = 5 * time.Minute // floor for a Cache-Control max-age
	maxFailureBackoff      = 30 * time.Second

	maxTokenBytes     = 16 << 10
	maxDiscoveryBytes = 64 << 10
	maxJWKSBytes      = 512 << 10
	requestTimeout    = 10 * time.Second
	maxRedirects      = 5
)

// Verifier verifies federated assertions. It is safe for concurrent use.
type Verifier struct {
	client     *http.Client // nil when Config.Client was nil
	local      LocalKeys
	now        func() time.Time
	ttl        time.Duration
	refresh    time.Duration
	skew       time.Duration
	maxIssuers int

	mu    sync.Mutex
	cache map[string]*entry // by issuer, exactly as asserted
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg Config) *Verifier {
	v := &Verifier{
		local:      cfg.Local,
		now:        cfg.Now,
		ttl:        cfg.CacheTTL,
		refresh:    cfg.RefreshInterval,
		skew:       cfg.ClockSkew,
		maxIssuers: cfg.MaxIssuers,
		cache:      make(map[string]*entry),
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.ttl <= 0 {
		v.ttl = defaultCacheTTL
	}
	if v.refresh <= 0 {
		v.refresh = defaultRefreshInterval
	}
	switch {
	case v.skew == 0:
		v.skew = defaultClockSkew
	case v.skew < 0:
		v.skew = 0
	}
	if v.maxIssuers <= 0 {
		v.maxIssuers = defaultMaxIssuers
	}
	if cfg.Client != nil {
		// A copy, so that the redirect policy is ours without changing
		// the caller's client; the transport (and its TLS trust) is shared.
		c := *cfg.Client
		next := c.CheckRedirect
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return errors.New("redirect to a non-https URL refused")
			}
			if len(via) >= maxRedirects {
				return errors.New("too many redirects")
			}
			if next != nil {
				return next(req, via)
			}
			return nil
		}
		v.client = &c
	}
	return v
}

// Verify parses raw (a compact JWS; surrounding whitespace, such as the
// trailing newline of a projected token file, is ignored), reads its issuer
// without trusting it, finds the issuer's key for the header kid, verifies
// the signature and then exp and nbf (with the clock skew), and returns the
// assertion. Header parameters that point at keys (jwk, jku, x5u, x5c) are
// ignored: keys come only from the issuer's discovery document.
func (v *Verifier) Verify(ctx context.Context, raw string) (Assertion, error) {
	return v.VerifyFor(ctx, raw, nil)
}

// VerifyFor is Verify, but consults allow with the (not yet verified)
// issuer before any key is looked up, and fails with ErrIssuerNotAllowed
// if it says no. A token service that knows which issuers the client's
// federated credentials name should use it, so that an assertion naming an
// arbitrary issuer never makes the server fetch from that issuer. A nil
// allow allows every issuer.
func (v *Verifier) VerifyFor(ctx context.Context, raw string, allow func(issuer string) bool) (Assertion, error) {
	t, err := parseToken(raw)
	if err != nil {
		return Assertion{}, err
	}
	fail := func(kind error, detail string, cause error) (Assertion, error) {
		return Assertion{}, &Error{Kind: kind, Issuer: t.Claims.Issuer, KeyID: t.KeyID, Detail: detail, Err: cause}
	}
	if allow != nil && !allow(t.Claims.Issuer) {
		return fail(ErrIssuerNotAllowed, "", nil)
	}
	if err := checkIssuerURL(t.Claims.Issuer); err != nil {
		return fail(ErrIssuerUnreachable, err.Error(), nil)
	}

	key, err := v.key(ctx, t.Claims.Issuer, t.KeyID, t.Alg)
	if err != nil {
		return Assertion{}, err
	}
	if err := verifySignature(t.Alg, key, t.SigningInput, t.Signature); err != nil {
		return fail(ErrSignature, "", nil)
	}

	now := v.now()
	if !now.Add(-v.skew).Before(t.Claims.Expires) {
		return fail(ErrExpired, "expired at "+t.Claims.Expires.UTC().Format(time.RFC3339), nil)
	}
	if !t.Claims.NotBefore.IsZero() && now.Add(v.skew).Before(t.Claims.NotBefore) {
		return fail(ErrNotYetValid, "not valid before "+t.Claims.NotBefore.UTC().Format(time.RFC3339), nil)
	}
	c := t.Claims
	return Assertion{
		Issuer: c.Issuer, Subject: c.Subject, Audiences: c.Audiences,
		Expires: c.Expires, NotBefore: c.NotBefore, IssuedAt: c.IssuedAt,
		ID: c.ID, KeyID: t.KeyID, Algorithm: t.Alg,
	}, nil
}

// key finds the public key for kid at issuer: from Local when the issuer
// is ours, from the (cached) JWK Set otherwise, checked to suit alg.
func (v *Verifier) key(ctx context.Context, issuer, kid, alg string) (crypto.PublicKey, error) {
	if v.local != nil {
		key, known, found := v.local(issuer, kid)
		if known {
			if !found || key == nil {
				return nil, &Error{Kind: ErrKeyNotFound, Issuer: issuer, KeyID: kid, Detail: "no such key at this server's own issuer"}
			}
			pub, err := suitable(alg, key)
			if err != nil {
				return nil, &Error{Kind: ErrKeyNotFound, Issuer: issuer, KeyID: kid, Detail: err.Error()}
			}
			return pub, nil
		}
	}
	if v.client == nil {
		return nil, &Error{Kind: ErrIssuerUnreachable, Issuer: issuer, KeyID: kid, Detail: "no HTTP client configured"}
	}
	return v.remoteKey(ctx, issuer, kid, alg)
}
