// Package jwtparse reads untrusted JSON Web Tokens (RFC 7519) in the
// compact JWS serialization (RFC 7515 §7.1), strictly. Two places take such
// tokens from clients: the token service's client assertions (a client's
// self-signed certificate assertion, or a workload's token from an external
// issuer) and the federation verifier that checks the latter. They read
// tokens here, by one set of rules, written and fuzzed once, that keep a
// token from having more than one spelling and a header from meaning more
// than we understand:
//
//   - The token, surrounding white space removed, is at most a size the
//     caller chooses.
//   - It holds only the base64url alphabet and dots (the decoder would
//     otherwise skip \r and \n), in exactly three segments: a JWE's five
//     or the JSON serialization are refused.
//   - Each segment is unpadded base64url, decoded strictly (non-zero
//     trailing bits are refused), so that it has exactly one encoding.
//   - Header and payload are JSON objects whose member names are matched
//     exactly: encoding/json's struct decoding would also take "ISS" for
//     "iss".
//   - The header has a non-empty string alg (which the caller may
//     restrict), a string kid if any, and no crit: critical extensions
//     (RFC 7515 §4.1.11) must be understood, and we understand none, b64
//     included.
//   - The payload has non-empty string iss and sub, an aud that is a
//     string or an array of strings (none empty), and an exp; nbf and iat
//     are optional, jti is an optional string. NumericDates are JSON
//     numbers (not strings holding one), range-checked from the epoch to
//     the end of year 9999.
//   - The signature is not empty.
//
// Parse never verifies a signature. It hands out the signing input (the
// header and payload segments exactly as received) and the decoded
// signature, for the caller to verify with a key it has reason to trust;
// VerifyRSA does that for the RSA algorithms.
package jwtparse

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultMaxBytes is the size limit when Options.MaxBytes is zero.
const DefaultMaxBytes = 16 << 10

// Options are what a caller chooses; the zero value is usable.
type Options struct {
	// MaxBytes bounds the token, surrounding white space removed; zero
	// means DefaultMaxBytes.
	MaxBytes int
	// Algorithm reports whether the header's alg is acceptable. A refused
	// alg fails with ErrAlgorithm, before anything after alg is read. Nil
	// accepts every alg.
	Algorithm func(alg string) bool
	// MaxAudiences bounds the number of aud values; zero means no bound.
	MaxAudiences int
}

// Token is a parsed, not verified, compact JWS.
type Token struct {
	Raw string // the compact JWS, surrounding white space removed

	Alg    string  // header alg, never empty
	KeyID  string  // header kid; "" when absent
	Header Members // every header member

	Claims  Claims  // the registered claims
	Payload Members // every claim, for those Claims does not hold

	SigningInput []byte // header "." payload, as received
	Signature    []byte // decoded, never empty

	// The decoded header and payload, as received. Only the members are
	// handed out, so that nobody reads them with struct decoding.
	headerJSON, payloadJSON []byte
}

// Claims are the registered claims (RFC 7519 §4.1) of an assertion.
type Claims struct {
	Issuer, Subject string
	Audiences       []string  // aud may be a string or an array in the JWT
	Expires         time.Time // never zero
	NotBefore       time.Time // zero when absent
	IssuedAt        time.Time // zero when absent
	ID              string    // jti; "" when absent
}

// The kinds of failure: every error Parse returns is an *Error wrapping
// one of them.
var (
	// ErrMalformed: anything in the package comment not held.
	ErrMalformed = errors.New("malformed JWT")
	// ErrAlgorithm: Options.Algorithm refused the header's alg.
	ErrAlgorithm = errors.New("signing algorithm not accepted")
)

// Part is the part of a token an Error concerns, in the order Parse reads
// them; it fails on the first thing wrong.
type Part int

const (
	PartForm      Part = iota // size, alphabet, number of segments
	PartHeader                // header: base64url, JSON object, alg, kid, crit
	PartPayload               // payload segment: base64url
	PartClaims                // payload: JSON object, registered claims
	PartSignature             // signature: base64url, not empty
)

// Error is a reason a token does not parse. Its text never quotes the
// token; an alg that was refused is quoted, clipped.
type Error struct {
	Kind   error  // ErrMalformed or ErrAlgorithm
	Part   Part   // where Parse found it
	Detail string // what exactly was wrong
	// KeyID and Issuer are kid and iss when Parse had read them before
	// it failed. They are the sender's words: quote and clip them.
	KeyID, Issuer string
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Detail }

// Unwrap exposes the kind to errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

// maxQuoted bounds the part of an alg that an error quotes.
const maxQuoted = 256

// b64 is base64url without padding, rejecting non-zero trailing bits so
// that each segment has exactly one encoding.
var b64 = base64.RawURLEncoding.Strict()

// Parse reads raw strictly (see the package comment). The errors are
// *Error, of kind ErrMalformed or ErrAlgorithm.
func Parse(raw string, opts Options) (*Token, error) {
	t := &Token{}
	fail := func(part Part, format string, args ...any) (*Token, error) {
		return nil, &Error{Kind: ErrMalformed, Part: part, Detail: fmt.Sprintf(format, args...), KeyID: t.KeyID, Issuer: t.Claims.Issuer}
	}
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return fail(PartForm, "empty")
	}
	if len(raw) > maxBytes {
		return fail(PartForm, "longer than %d bytes", maxBytes)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fail(PartForm, "not a compact JWS: unexpected character at offset %d", i)
		}
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return fail(PartForm, "not a compact JWS: %d segments, want 3", len(parts))
	}
	t.Raw = raw

	var err error
	if t.headerJSON, err = b64.DecodeString(parts[0]); err != nil {
		return fail(PartHeader, "header is not base64url")
	}
	if t.Header, err = Object(t.headerJSON); err != nil {
		return fail(PartHeader, "header is not a JSON object")
	}
	alg, ok, err := t.Header.StringMember("alg")
	if err != nil || !ok || alg == "" {
		return fail(PartHeader, "header alg is missing or not a string")
	}
	if opts.Algorithm != nil && !opts.Algorithm(alg) {
		return nil, &Error{Kind: ErrAlgorithm, Part: PartHeader, Detail: fmt.Sprintf("alg %q", clip(alg))}
	}
	t.Alg = alg
	if t.KeyID, _, err = t.Header.StringMember("kid"); err != nil {
		return fail(PartHeader, "header kid is not a string")
	}
	if _, ok := t.Header["crit"]; ok {
		return fail(PartHeader, "header has crit extensions")
	}

	if t.payloadJSON, err = b64.DecodeString(parts[1]); err != nil {
		return fail(PartPayload, "payload is not base64url")
	}
	if t.Payload, err = Object(t.payloadJSON); err != nil {
		return fail(PartClaims, "payload is not a JSON object")
	}
	if t.Claims, err = readClaims(t.Payload, opts.MaxAudiences); err != nil {
		return fail(PartClaims, "%s", err.Error())
	}

	if t.Signature, err = b64.DecodeString(parts[2]); err != nil || len(t.Signature) == 0 {
		return fail(PartSignature, "signature is missing or not base64url")
	}
	t.SigningInput = []byte(raw[:len(parts[0])+1+len(parts[1])])
	return t, nil
}

// readClaims reads the registered claims. On error the returned claims
// hold the issuer when it was read.
func readClaims(m Members, maxAudiences int) (Claims, error) {
	var c Claims
	var ok bool
	var err error
	if c.Issuer, ok, err = m.StringMember("iss"); err != nil || !ok || c.Issuer == "" {
		return Claims{}, errors.New("iss is missing or not a string")
	}
	if c.Subject, ok, err = m.StringMember("sub"); err != nil || !ok || c.Subject == "" {
		return c, errors.New("sub is missing or not a string")
	}
	if c.Audiences, err = m.Audiences("aud", maxAudiences); err != nil {
		return c, err
	}
	if c.Expires, ok, err = m.NumericDate("exp"); err != nil || !ok {
		return c, errors.New("exp is missing or not a number")
	}
	if c.NotBefore, _, err = m.NumericDate("nbf"); err != nil {
		return c, errors.New("nbf is not a number")
	}
	if c.IssuedAt, _, err = m.NumericDate("iat"); err != nil {
		return c, errors.New("iat is not a number")
	}
	if c.ID, _, err = m.StringMember("jti"); err != nil {
		return c, errors.New("jti is not a string")
	}
	return c, nil
}
