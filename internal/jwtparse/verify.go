package jwtparse

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
)

// Digest hashes a token's signing input with the SHA-2 function of alg,
// one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 and ES512.
func Digest(alg string, signingInput []byte) (crypto.Hash, []byte, error) {
	switch alg {
	case "RS256", "PS256", "ES256":
		sum := sha256.Sum256(signingInput)
		return crypto.SHA256, sum[:], nil
	case "RS384", "PS384", "ES384":
		sum := sha512.Sum384(signingInput)
		return crypto.SHA384, sum[:], nil
	case "RS512", "PS512", "ES512":
		sum := sha512.Sum512(signingInput)
		return crypto.SHA512, sum[:], nil
	}
	return 0, nil, fmt.Errorf("alg %q is not supported", clip(alg))
}

// VerifyRSA checks sig, a signature over a token's signing input, with pub:
// RSASSA-PKCS1-v1_5 for RS256, RS384 and RS512, RSASSA-PSS for PS256, PS384
// and PS512. RFC 7518 §3.5 has the PSS salt as long as the hash (MSAL signs
// so); other signers use the longest salt. Like go-jose, VerifyRSA accepts
// any salt length, which costs no security. Which algorithms and key sizes
// a caller accepts is the caller's to decide before calling.
func VerifyRSA(alg string, pub *rsa.PublicKey, signingInput, sig []byte) error {
	if pub == nil {
		return fmt.Errorf("alg %s needs an RSA key", clip(alg))
	}
	h, digest, err := Digest(alg, signingInput)
	if err != nil {
		return err
	}
	switch alg[:2] {
	case "RS":
		return rsa.VerifyPKCS1v15(pub, h, digest, sig)
	case "PS":
		return rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	}
	return fmt.Errorf("alg %q is not an RSA algorithm", alg)
}

// clip bounds a sender-chosen alg before an error quotes it.
func clip(s string) string {
	if len(s) > maxQuoted {
		return s[:maxQuoted] + "…"
	}
	return s
}
