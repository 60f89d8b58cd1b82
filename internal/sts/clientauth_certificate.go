package sts

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/jwtparse"
)

// Certificate credentials: a client signs its own assertion (iss = sub =
// client_id) with the private key of a certificate registered on it as a
// keyCredential, as MSAL's WithCertificate and azidentity's
// ClientCertificateCredential do.
//
// What is accepted, and why:
//
//   - alg PS256 (MSAL since 1.4.2) or RS256 (older MSAL, ADFS-style
//     clients, hand-built assertions); nothing else, so never "none" and
//     never an HMAC keyed with a public certificate.
//   - The certificate is named by x5t#S256 (SHA-256 thumbprint; standard
//     base64 with padding as MSAL sends it, or base64url as Entra's docs
//     write it), x5t (SHA-1, base64url or base64, or hex), or x5c (leaf
//     first). With x5c the leaf itself must be the registered certificate
//     (byte for byte); a thumbprint sent beside it must name that leaf.
//   - The keyCredential must be of type AsymmetricX509Cert, usage Verify,
//     within its start and end dates, and hold an RSA key of at least 2048
//     bits.
//   - aud must be this tenant's token endpoint on the base URL the request
//     came in on: {base}/{tenant}/oauth2/v2.0/token or
//     {base}/{tenant}/oauth2/token, where {tenant} is the tenant as the
//     request path names it (id, domain or short name) or its id, compared
//     case-insensitively. (MSAL uses the token_endpoint of discovery, which
//     names the tenant by id.) A JSON array aud is accepted when one of its
//     values is such an endpoint.
//   - exp and nbf hold within five minutes of skew.
//   - Each assertion is accepted once: its jti is recorded until exp plus
//     the skew (store.OneTimeUse, key "assertion:<client id>:<jti>"). An
//     assertion without jti is accepted, as Entra accepts it, and is then
//     recorded by its signature, so that the same bytes still cannot be
//     replayed.
//
// It earns appidacr/azpacr "2".

// minAssertionRSABits is the smallest RSA key accepted for a client assertion.
const minAssertionRSABits = 2048

// authenticateCertificate checks a self-signed client assertion.
func (s *Service) authenticateCertificate(ctx context.Context, req *tokenRequest, c *client, a *clientAssertionJWT) (string, *Error) {
	if a.subject != a.issuer {
		return "", aadError(codeSubjectMismatchIssuer)
	}
	if !strings.EqualFold(a.issuer, c.appID) {
		return "", aadError(codeAssertionClientID)
	}
	kc, e := verifyCertificateAssertion(a, c.appID, c.keyCredentials(), req.now)
	if e != nil {
		return "", e
	}
	if !audienceIsTokenEndpoint(a.audiences, tokenEndpoints(req)) {
		return "", aadError(codeAssertionAudience)
	}
	if e := checkAssertionTime(a, req.now); e != nil {
		return "", e
	}
	// A valid assertion is accepted again within its lifetime, as Entra
	// accepts it: Microsoft's MSALs sign one and send it for every token
	// until it nears expiry (MSAL Node's ClientAssertion.getJwt keeps it for
	// its 10 minutes; MSAL.NET "caches it alongside the certificate.
	// Subsequent calls use the cached assertion for the next 5 minutes",
	// microsoft-authentication-library-for-dotnet#2288), so @azure/identity's
	// ClientCertificateCredential presents the same jti for its second scope.
	// The assertion's lifetime is what bounds a replay (checkAssertionTime).
	req.audit.credential = "certificate:" + kc.KeyID
	return "2", nil
}

// tokenEndpoints are the aud values a certificate assertion may carry for
// this request (see the list above).
func tokenEndpoints(req *tokenRequest) []string {
	names := []string{req.tenantRef}
	if req.tenant.ID != "" && !strings.EqualFold(req.tenant.ID, req.tenantRef) {
		names = append(names, req.tenant.ID)
	}
	var out []string
	for _, n := range names {
		out = append(out, req.baseURL+"/"+n+"/oauth2/v2.0/token", req.baseURL+"/"+n+"/oauth2/token")
	}
	return out
}

// audienceIsTokenEndpoint reports whether one of the assertion's audiences
// is one of the endpoints.
func audienceIsTokenEndpoint(audiences, endpoints []string) bool {
	for _, aud := range audiences {
		for _, ep := range endpoints {
			if strings.EqualFold(aud, ep) {
				return true
			}
		}
	}
	return false
}

// presentedCertificate is how an assertion names its certificate.
type presentedCertificate struct {
	sha1, sha256 []byte // thumbprints, as decoded (nil when not sent)
	leafDER      []byte // x5c[0], nil when not sent
}

// thumbprint is how error messages show the certificate: the uppercase hex
// thumbprint Entra shows, SHA-1 when known.
func (p presentedCertificate) thumbprint() string {
	switch {
	case p.sha1 != nil:
		return strings.ToUpper(hex.EncodeToString(p.sha1))
	case p.sha256 != nil:
		return strings.ToUpper(hex.EncodeToString(p.sha256))
	}
	return ""
}

// matches reports whether a registered certificate is the one presented.
func (p presentedCertificate) matches(der []byte) bool {
	if p.leafDER != nil {
		return bytes.Equal(p.leafDER, der)
	}
	if p.sha256 != nil {
		sum := sha256.Sum256(der)
		return bytes.Equal(sum[:], p.sha256)
	}
	if p.sha1 != nil {
		sum := sha1.Sum(der)
		return bytes.Equal(sum[:], p.sha1)
	}
	return false
}

// verifyCertificateAssertion finds the registered certificate an assertion
// names and checks the signature with it, at now. It is pure, so that it
// can be fuzzed; claims other than the header's are checked by the caller.
func verifyCertificateAssertion(a *clientAssertionJWT, appID string, creds []directory.KeyCredential, now time.Time) (directory.KeyCredential, *Error) {
	if a.alg != "PS256" && a.alg != "RS256" {
		return directory.KeyCredential{}, invalidAssertionSignature(fmt.Sprintf("The signing algorithm '%s' is not supported; sign with PS256 or RS256.", clip(a.alg, 32)), "", nil)
	}
	p, e := presented(a)
	if e != nil {
		return directory.KeyCredential{}, e
	}
	var kc *directory.KeyCredential
	for i := range creds {
		if creds[i].Type == "AsymmetricX509Cert" && strings.EqualFold(creds[i].Usage, "Verify") && p.matches(creds[i].Key) {
			kc = &creds[i]
			break
		}
	}
	if kc == nil {
		return directory.KeyCredential{}, certificateNotRegistered(p.thumbprint(), appID)
	}
	switch {
	case !kc.StartDateTime.IsZero() && now.Before(kc.StartDateTime):
		return *kc, invalidAssertionSignature("The key used is not yet valid.", p.thumbprint(), kc)
	case !kc.EndDateTime.IsZero() && now.After(kc.EndDateTime):
		return *kc, invalidAssertionSignature("The key used is expired.", p.thumbprint(), kc)
	}
	cert, err := x509.ParseCertificate(kc.Key)
	if err != nil {
		return *kc, invalidAssertionSignature("The registered certificate cannot be read.", p.thumbprint(), kc)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < minAssertionRSABits {
		return *kc, invalidAssertionSignature(fmt.Sprintf("The key used is not an RSA key of at least %d bits.", minAssertionRSABits), p.thumbprint(), kc)
	}
	if err := jwtparse.VerifyRSA(a.alg, pub, a.signingInput, a.signature); err != nil {
		return *kc, invalidAssertionSignature("The provided signature value did not match the expected signature value.", p.thumbprint(), kc)
	}
	return *kc, nil
}

// presented reads the certificate identifiers of an assertion's header.
func presented(a *clientAssertionJWT) (presentedCertificate, *Error) {
	var p presentedCertificate
	var ok bool
	if a.x5tS256 != "" {
		if p.sha256, ok = decodeThumbprint(a.x5tS256, sha256.Size); !ok {
			return p, aadError(codeMalformedJWT)
		}
	}
	if a.x5t != "" {
		if p.sha1, ok = decodeThumbprint(a.x5t, sha1.Size); !ok {
			return p, aadError(codeMalformedJWT)
		}
	}
	if len(a.x5c) > 0 {
		der, err := base64.StdEncoding.DecodeString(a.x5c[0])
		if err != nil {
			return p, aadError(codeMalformedJWT)
		}
		if _, err := x509.ParseCertificate(der); err != nil {
			return p, aadError(codeMalformedJWT)
		}
		s1, s256 := sha1.Sum(der), sha256.Sum256(der)
		mismatch := (p.sha1 != nil && !bytes.Equal(p.sha1, s1[:])) || (p.sha256 != nil && !bytes.Equal(p.sha256, s256[:]))
		if mismatch {
			return p, invalidAssertionSignature("The thumbprint in the header does not match the certificate in x5c.", strings.ToUpper(hex.EncodeToString(s1[:])), nil)
		}
		p.leafDER, p.sha1, p.sha256 = der, s1[:], s256[:]
	}
	if p.sha1 == nil && p.sha256 == nil {
		return p, certificateNotRegistered("", "")
	}
	return p, nil
}

// decodeThumbprint reads a thumbprint of n bytes: base64 or base64url,
// with or without padding (MSAL sends standard base64 with padding, Entra's
// docs say base64url), or hex.
func decodeThumbprint(s string, n int) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == n {
			return b, true
		}
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == n {
		return b, true
	}
	return nil, false
}

// certificateNotRegistered is Entra's AADSTS700027 for an unknown certificate.
func certificateNotRegistered(thumbprint, appID string) *Error {
	return aadError(codeAssertionSignature, fmt.Sprintf("The certificate with identifier used to sign the client assertion is not registered on application. "+
		"[Reason - The key was not found., Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'.]",
		clip(thumbprint, 128), appID))
}

// invalidAssertionSignature is Entra's AADSTS700027 for a certificate that
// was found but does not verify the assertion.
func invalidAssertionSignature(reason, thumbprint string, kc *directory.KeyCredential) *Error {
	text := "Client assertion contains an invalid signature. [Reason - " + reason
	if thumbprint != "" {
		text += ", Thumbprint of key used by client: '" + clip(thumbprint, 128) + "'"
	}
	if kc != nil {
		const layout = "01/02/2006 15:04:05"
		text += fmt.Sprintf(", Found key 'Start=%s, End=%s'", kc.StartDateTime.UTC().Format(layout), kc.EndDateTime.UTC().Format(layout))
	}
	return aadError(codeAssertionSignature, text+"]")
}
