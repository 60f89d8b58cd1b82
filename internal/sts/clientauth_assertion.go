package sts

import (
	"context"
	"strings"
	"time"
)

// clientAssertionType is the one client_assertion_type Entra accepts (RFC 7523 §2.2).
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionClockSkew is how far an assertion's nbf and exp may be off our
// clock: Entra allows five minutes.
const assertionClockSkew = 5 * time.Minute

// clientAssertion is private_key_jwt (RFC 7523 §2.2): the client presents a
// JWT. Either the client signed it with a certificate registered on it
// (clientauth_certificate.go), or an external OpenID Connect issuer that
// one of its federated identity credentials trusts signed it for the
// workload (clientauth_federated.go); the assertion's issuer tells which.
type clientAssertion struct{}

func (clientAssertion) name() string { return "private_key_jwt" }
func (clientAssertion) presented(req *tokenRequest) bool {
	return req.form.get("client_assertion") != "" || req.form.get("client_assertion_type") != ""
}

// claimedClientID is "": the client_id parameter names the client. (A
// federated assertion's sub is the workload, not the client.)
func (clientAssertion) claimedClientID(*tokenRequest) string { return "" }

func (clientAssertion) authenticate(ctx context.Context, s *Service, req *tokenRequest, c *client) (string, *Error) {
	raw, typ := req.form.get("client_assertion"), req.form.get("client_assertion_type")
	switch {
	case raw == "":
		return "", aadError(codeMissingParameter, "client_assertion")
	case typ == "":
		return "", aadError(codeMissingParameter, "client_assertion_type")
	case typ != clientAssertionType:
		return "", aadError(codeInvalidRequest, "The client_assertion_type must be '"+clientAssertionType+"'.")
	}
	// WorkloadIdentityCredential sends the projected token file verbatim,
	// trailing newline included.
	a, err := parseClientAssertion(strings.TrimSpace(raw))
	if err != nil {
		return "", aadError(codeMalformedJWT)
	}
	if a.isSelfSigned() {
		return s.authenticateCertificate(ctx, req, c, a)
	}
	return s.authenticateFederated(ctx, req, c, a)
}

// checkAssertionTime enforces exp and nbf with Entra's skew, answering
// with Entra's AADSTS700024 text (an absent nbf shows as the epoch, as
// Entra shows it).
func checkAssertionTime(a *clientAssertionJWT, now time.Time) *Error {
	notBefore := a.notBefore
	if notBefore.IsZero() {
		notBefore = time.Unix(0, 0)
	}
	if now.After(a.expires.Add(assertionClockSkew)) || now.Add(assertionClockSkew).Before(notBefore) {
		return aadError(codeAssertionTime, entraInstant(now), entraInstant(notBefore), entraInstant(a.expires))
	}
	return nil
}

// entraInstant formats a time as Entra's assertion errors do:
// 2024-10-02T22:05:03.6755165Z.
func entraInstant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }
