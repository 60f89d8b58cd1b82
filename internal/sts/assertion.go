package sts

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/jwtparse"
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

// maxAssertionAudiences is the most aud values an assertion may carry.
const maxAssertionAudiences = 16

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

// parseClientAssertion reads a compact JWS strictly: jwtparse's rules (only
// the base64url alphabet and two dots, a JSON object header with a string
// alg and no crit, a JSON object payload with string iss and sub, an aud
// string or array of strings, a numeric exp, and a non-empty signature;
// member names matched exactly), and then the header members that name a
// certificate and the idtyp claim. Any alg is read; the verifiers decide.
// It verifies nothing and is pure, so that it can be fuzzed.
func parseClientAssertion(raw string) (*clientAssertionJWT, error) {
	bad := func(format string, args ...any) (*clientAssertionJWT, error) {
		return nil, fmt.Errorf("%w: %s", errMalformedAssertion, fmt.Sprintf(format, args...))
	}
	t, err := jwtparse.Parse(raw, jwtparse.Options{MaxBytes: maxAssertionBytes, MaxAudiences: maxAssertionAudiences})
	if err != nil {
		var pe *jwtparse.Error
		if errors.As(err, &pe) {
			return bad("%s", pe.Detail)
		}
		return bad("%v", err)
	}
	a := &clientAssertionJWT{
		raw: t.Raw, alg: t.Alg, kid: t.KeyID,
		issuer: t.Claims.Issuer, subject: t.Claims.Subject, audiences: t.Claims.Audiences,
		expires: t.Claims.Expires, notBefore: t.Claims.NotBefore, id: t.Claims.ID,
		signingInput: t.SigningInput, signature: t.Signature,
	}
	for _, m := range []struct {
		name string
		dst  *string
	}{{"x5t", &a.x5t}, {"x5t#S256", &a.x5tS256}} {
		if *m.dst, _, err = t.Header.StringMember(m.name); err != nil {
			return bad("header %s is not a string", m.name)
		}
	}
	if rawX5C, present := t.Header["x5c"]; present && string(rawX5C) != "null" {
		if err := json.Unmarshal(rawX5C, &a.x5c); err != nil || len(a.x5c) == 0 || len(a.x5c) > maxX5C {
			return bad("header x5c is not an array of 1 to %d strings", maxX5C)
		}
	}
	if a.identType, _, err = t.Payload.StringMember("idtyp"); err != nil {
		return bad("idtyp is not a string")
	}
	return a, nil
}

// isSelfSigned reports whether the assertion is one a client signed with
// its own certificate: its issuer is a client id, not an issuer URL.
func (a *clientAssertionJWT) isSelfSigned() bool {
	return !strings.Contains(a.issuer, "://")
}
