package graph

import (
	"crypto/x509"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// addKey and removeKey take a proof of possession, as Graph's pages
// describe it (https://learn.microsoft.com/graph/api/application-addkey,
// application-removekey): "A self-signed JWT token used as a proof of
// possession of the existing keys. This JWT token must be signed using
// the private key of one of the application's existing valid
// certificates. The token should contain the following claims: aud -
// Audience needs to be 00000002-0000-0000-c000-000000000000. iss - Issuer
// needs to be the id of the application that is making the call. nbf -
// Not before time. exp - Expiration time should be nbf + 10 mins." And:
// "Applications that don't have any existing valid certificates (no
// certificates have been added yet, or all certificates have expired),
// won't be able to use this service action. You can use the Update
// application operation to perform an update instead." The id in iss is
// the application's object id (Graph's sample proof token,
// https://learn.microsoft.com/graph/application-rollkey-prooftoken).

const (
	// proofAudience is Azure AD Graph's application id, the audience
	// Graph's addKey demands.
	proofAudience = "00000002-0000-0000-c000-000000000000"
	// maxProofLifetime is the longest exp - nbf accepted.
	maxProofLifetime = 10 * time.Minute
	// proofSkew is the clock difference tolerated on nbf and exp.
	proofSkew      = 5 * time.Minute
	maxProofLength = 16 << 10
)

// proofAlgorithms are the signatures a proof may carry: what a
// certificate's key signs with (RSA PKCS#1 v1.5 as in Graph's sample, or
// RSA-PSS, or ECDSA).
var proofAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512}

func invalidProof(reason string) *graphError {
	return badRequest("The proof of possession token is not valid: %s.", reason)
}

// verifyProof checks an addKey or removeKey proof against the
// application's currently valid certificates.
func verifyProof(raw *string, app *directory.Application, now time.Time) error {
	var valid []directory.KeyCredential
	for _, k := range app.KeyCredentials {
		if !now.Before(k.StartDateTime) && now.Before(k.EndDateTime) {
			valid = append(valid, k)
		}
	}
	if len(valid) == 0 {
		return badRequest("The application has no valid certificate to prove possession of. Use Update application (PATCH keyCredentials) to add its first certificate.")
	}
	if raw == nil || strings.TrimSpace(*raw) == "" {
		return badRequest("Property 'proof' is required.")
	}
	if len(*raw) > maxProofLength {
		return invalidProof("it is too long")
	}
	tok, err := jwt.ParseSigned(strings.TrimSpace(*raw), proofAlgorithms)
	if err != nil {
		return invalidProof("it is not a signed JWT")
	}
	var claims jwt.Claims
	signed := false
	for _, k := range valid {
		cert, err := x509.ParseCertificate(k.Key)
		if err != nil {
			continue
		}
		if err := tok.Claims(cert.PublicKey, &claims); err == nil {
			signed = true
			break
		}
	}
	switch {
	case !signed:
		return invalidProof("it is not signed by a valid certificate of the application")
	case !claims.Audience.Contains(proofAudience):
		return invalidProof("aud must be " + proofAudience)
	case !strings.EqualFold(claims.Issuer, app.ID):
		return invalidProof("iss must be the application's id")
	case claims.NotBefore == nil || claims.Expiry == nil:
		return invalidProof("nbf and exp are required")
	}
	nbf, exp := claims.NotBefore.Time(), claims.Expiry.Time()
	switch {
	case exp.Sub(nbf) > maxProofLifetime || !exp.After(nbf):
		return invalidProof("exp must be at most 10 minutes after nbf")
	case now.Add(proofSkew).Before(nbf):
		return invalidProof("it is not valid yet")
	case !now.Before(exp.Add(proofSkew)):
		return invalidProof("it has expired")
	}
	return nil
}
