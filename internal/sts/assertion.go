package sts

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// A client assertion (RFC 7523) is a JWT in the client_assertion
// parameter. Two kinds arrive: one the client signed itself with a
// certificate registered on it (iss = sub = client_id, Entra's
// "certificate credential"), and one an external OpenID Connect issuer
// signed for a workload (iss = that issuer's URL, Entra's "federated
// identity credential"). This file reads either, strictly and without
// trusting it; clientauth_certificate.go and clientauth_federated.go
// decide.

// maxAssertionBytes bounds an assertion. A certificate assertion with a
// three-certificate chain in x5c stays under 16 KiB.
const maxAssertionBytes = 32 << 10

// maxX5C is the most certificates an x5c header may carry.
const maxX5C = 10

// clientAssertionJWT is a parsed, unverified client assertion.
type clientAssertionJWT struct {
	raw string // the compact JWS, surrounding whitespace removed

	// Header.
	alg     string
	kid     string
	x5t     string   // SHA-1 thumbprint, as sent
	x5tS256 string   // SHA-256 thumbprint, as sent
	x5c     []string // certificate chain, leaf first, as sent

	// Claims.
	issuer    string
	subject   string
	audiences []string // aud is a string or an array
	expires   time.Time
	notBefore time.Time // zero when absent
	id        string    // jti; may be empty
	identType string    // idtyp, which our own tokens carry

	signingInput []byte // header "." payload, as received
	signature    []byte
}

// errMalformedAssertion is every reason an assertion does not parse; its
// text is for logs, the client gets Entra's AADSTS50027.
var errMalformedAssertion = errors.New("client assertion is malformed")

// b64url is base64url without padding, rejecting non-zero trailing bits so
// that each segment has exactly one encoding.
var b64url = base64.RawURLEncoding.Strict()

// parseClientAssertion reads a compact JWS strictly: only the base64url
// alphabet and two dots, a JSON object header with a string alg and no
// crit, a JSON object payload with string iss and sub, an aud string or
// array of strings, a numeric exp, and a non-empty signature. Member names
// are matched exactly. It verifies nothing and is pure, so that it can be
// fuzzed.
func parseClientAssertion(raw string) (*clientAssertionJWT, error) {
	bad := func(format string, args ...any) (*clientAssertionJWT, error) {
		return nil, fmt.Errorf("%w: %s", errMalformedAssertion, fmt.Sprintf(format, args...))
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return bad("empty")
	}
	if len(raw) > maxAssertionBytes {
		return bad("longer than %d bytes", maxAssertionBytes)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return bad("unexpected character at offset %d", i)
		}
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return bad("%d segments, want 3", len(parts))
	}
	a := &clientAssertionJWT{raw: raw}

	hdrJSON, err := b64url.DecodeString(parts[0])
	if err != nil {
		return bad("header is not base64url")
	}
	hdr, err := jsonMembers(hdrJSON)
	if err != nil {
		return bad("header is not a JSON object")
	}
	var ok bool
	if a.alg, ok, err = jsonString(hdr, "alg"); err != nil || !ok || a.alg == "" {
		return bad("header alg is missing or not a string")
	}
	if _, crit := hdr["crit"]; crit {
		return bad("header has crit extensions")
	}
	for name, dst := range map[string]*string{"kid": &a.kid, "x5t": &a.x5t, "x5t#S256": &a.x5tS256} {
		if *dst, _, err = jsonString(hdr, name); err != nil {
			return bad("header %s is not a string", name)
		}
	}
	if rawX5C, present := hdr["x5c"]; present && string(rawX5C) != "null" {
		if err := json.Unmarshal(rawX5C, &a.x5c); err != nil || len(a.x5c) == 0 || len(a.x5c) > maxX5C {
			return bad("header x5c is not an array of 1 to %d strings", maxX5C)
		}
	}

	payload, err := b64url.DecodeString(parts[1])
	if err != nil {
		return bad("payload is not base64url")
	}
	claims, err := jsonMembers(payload)
	if err != nil {
		return bad("payload is not a JSON object")
	}
	if a.issuer, ok, err = jsonString(claims, "iss"); err != nil || !ok || a.issuer == "" {
		return bad("iss is missing or not a string")
	}
	if a.subject, ok, err = jsonString(claims, "sub"); err != nil || !ok || a.subject == "" {
		return bad("sub is missing or not a string")
	}
	if a.audiences, err = jsonAudiences(claims["aud"]); err != nil {
		return bad("%v", err)
	}
	if a.expires, ok, err = jsonNumericDate(claims, "exp"); err != nil || !ok {
		return bad("exp is missing or not a number")
	}
	if a.notBefore, _, err = jsonNumericDate(claims, "nbf"); err != nil {
		return bad("nbf is not a number")
	}
	if _, _, err = jsonNumericDate(claims, "iat"); err != nil {
		return bad("iat is not a number")
	}
	if a.id, _, err = jsonString(claims, "jti"); err != nil {
		return bad("jti is not a string")
	}
	if a.identType, _, err = jsonString(claims, "idtyp"); err != nil {
		return bad("idtyp is not a string")
	}

	if a.signature, err = b64url.DecodeString(parts[2]); err != nil || len(a.signature) == 0 {
		return bad("signature is missing or not base64url")
	}
	a.signingInput = []byte(raw[:len(parts[0])+1+len(parts[1])])
	return a, nil
}

// isSelfSigned reports whether the assertion is one a client signed with
// its own certificate: its issuer is a client id, not an issuer URL.
func (a *clientAssertionJWT) isSelfSigned() bool {
	return !strings.Contains(a.issuer, "://")
}

// replayKey is the one-time-use key of a certificate assertion: its jti,
// scoped to the client, or (for an assertion without jti) its signature,
// hashed where it would be too long for the store.
func (a *clientAssertionJWT) replayKey(clientID string) string {
	prefix := "assertion:" + strings.ToLower(clientID) + ":"
	if a.id == "" {
		sum := sha256.Sum256(a.signature)
		return prefix + "sig-sha256:" + base64.RawURLEncoding.EncodeToString(sum[:])
	}
	key := prefix + a.id
	if len(key) > 256 || strings.ContainsRune(a.id, 0) || strings.ContainsRune(a.id, '\uFFFD') {
		sum := sha256.Sum256([]byte(a.id))
		return prefix + "jti-sha256:" + base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return key
}

// verifyRSASignature checks an RS256 or PS256 signature. PS256 accepts any
// salt length (MSAL uses the hash length; other signers the maximum),
// which costs no security.
func verifyRSASignature(alg string, pub *rsa.PublicKey, input, sig []byte) error {
	digest := sha256.Sum256(input)
	switch alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	}
	return fmt.Errorf("alg %q is not RS256 or PS256", clip(alg, 32))
}

// jsonMembers decodes a JSON object into its members, names matched
// exactly (struct decoding would also take "ISS" for "iss").
func jsonMembers(data []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not an object")
	}
	return m, nil
}

// jsonString reads m[name] as a string: absent or null is ok=false, any
// other type an error.
func jsonString(m map[string]json.RawMessage, name string) (s string, ok bool, err error) {
	raw, present := m[name]
	if !present || string(raw) == "null" {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", false, fmt.Errorf("%s is not a string", name)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, err
	}
	return s, true, nil
}

// jsonAudiences reads aud: a non-empty string or array of non-empty strings.
func jsonAudiences(raw json.RawMessage) ([]string, error) {
	bad := errors.New("aud is missing or not a string or array of strings")
	if len(raw) == 0 {
		return nil, bad
	}
	var out []string
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, bad
		}
		out = []string{s}
	case '[':
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, bad
		}
	default:
		return nil, bad
	}
	if len(out) == 0 || len(out) > 16 {
		return nil, bad
	}
	for _, s := range out {
		if s == "" {
			return nil, bad
		}
	}
	return out, nil
}

// jsonNumericDate reads m[name] as an RFC 7519 NumericDate: a JSON number
// of seconds (fractions allowed) up to the end of year 9999.
func jsonNumericDate(m map[string]json.RawMessage, name string) (t time.Time, ok bool, err error) {
	raw, present := m[name]
	if !present || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return time.Time{}, false, fmt.Errorf("%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 253402300799 {
		return time.Time{}, false, fmt.Errorf("%s is out of range", name)
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)).UTC(), true, nil
}
