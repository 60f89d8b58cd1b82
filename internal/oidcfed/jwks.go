package oidcfed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/tenantbridge/tenantbridge/internal/jwtparse"
)

// allowedAlg reports whether alg is one of the asymmetric signature
// algorithms accepted. "none" and the HMAC algorithms are not: with them
// a public key would serve as a shared secret.
func allowedAlg(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512":
		return true
	}
	return false
}

// RSA key sizes accepted: below is breakable, above only costs us CPU.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// jwk is one usable signing key of an issuer.
type jwk struct {
	kid, alg string // alg may be ""
	key      crypto.PublicKey
}

// keySet is the signing keys of one issuer's JWK Set.
type keySet struct {
	keys    []jwk
	skipped int // members that were not usable signing keys
}

// errUnknownKid is the one lookup failure a refresh may cure.
var errUnknownKid = errors.New("kid not in the issuer's JWK Set")

// lookup returns the key for kid that suits alg. A token without a kid is
// accepted only when the set holds exactly one key. The errors are
// errUnknownKid, or a reason the key found does not suit alg.
func (s *keySet) lookup(kid, alg string) (crypto.PublicKey, error) {
	var candidates []jwk
	if kid == "" {
		if len(s.keys) != 1 {
			return nil, fmt.Errorf("token has no kid and the issuer's JWK Set has %d signing keys", len(s.keys))
		}
		candidates = s.keys
	} else {
		for _, k := range s.keys {
			if k.kid == kid {
				candidates = append(candidates, k)
			}
		}
		if len(candidates) == 0 {
			return nil, errUnknownKid
		}
	}
	var why error
	for _, k := range candidates {
		if k.alg != "" && k.alg != alg {
			why = fmt.Errorf("key is for alg %q, token uses %q", clip(k.alg), alg)
			continue
		}
		pub, err := suitable(alg, k.key)
		if err != nil {
			why = err
			continue
		}
		return pub, nil
	}
	return nil, why
}

// parseJWKS reads a JWK Set. Members that are not usable public signing
// keys (other key types, use other than "sig", key_ops without "verify",
// an alg that is not an accepted signature algorithm, private or
// symmetric material, or members that do not parse) are skipped, as RFC
// 7517 §5 asks; the set itself must be a JSON object with a "keys" array.
func parseJWKS(data []byte) (*keySet, error) {
	doc, err := jwtparse.Object(data)
	if err != nil {
		return nil, errors.New("JWK Set is not a JSON object")
	}
	var members []json.RawMessage
	if raw, ok := doc["keys"]; !ok || len(raw) == 0 || raw[0] != '[' {
		return nil, errors.New(`JWK Set has no "keys" array`)
	} else if err := json.Unmarshal(raw, &members); err != nil {
		return nil, errors.New(`JWK Set "keys" is not an array`)
	}
	s := &keySet{}
	for _, m := range members {
		k, ok := parseJWK(m)
		if !ok {
			s.skipped++
			continue
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// parseJWK reads one member of a JWK Set, reporting ok=false for anything
// but a public RSA or EC signing key.
func parseJWK(data json.RawMessage) (jwk, bool) {
	m, err := jwtparse.Object(data)
	if err != nil {
		return jwk{}, false
	}
	kty, _, err1 := m.StringMember("kty")
	use, _, err2 := m.StringMember("use")
	alg, _, err3 := m.StringMember("alg")
	kid, _, err4 := m.StringMember("kid")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return jwk{}, false
	}
	if kty != "RSA" && kty != "EC" {
		return jwk{}, false
	}
	if use != "" && use != "sig" {
		return jwk{}, false
	}
	if alg != "" && !allowedAlg(alg) {
		return jwk{}, false
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := m[private]; ok {
			return jwk{}, false
		}
	}
	if raw, ok := m["key_ops"]; ok {
		var ops []string
		if err := json.Unmarshal(raw, &ops); err != nil {
			return jwk{}, false
		}
		verify := false
		for _, op := range ops {
			verify = verify || op == "verify"
		}
		if !verify {
			return jwk{}, false
		}
	}
	// go-jose decodes the key material (and checks that an EC point is on
	// its curve, and that an x5c chain matches the key). Its decoding
	// matches member names case-insensitively, so look again at what it
	// understood.
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(data); err != nil {
		return jwk{}, false
	}
	if k.Use != use || k.Algorithm != alg || k.KeyID != kid {
		return jwk{}, false
	}
	switch k.Key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	default:
		return jwk{}, false
	}
	return jwk{kid: kid, alg: alg, key: k.Key}, true
}

// suitable returns key as the public key that verifies alg, or why it
// cannot: a key of another type, curve or size.
func suitable(alg string, key crypto.PublicKey) (crypto.PublicKey, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k != nil {
			key = &k.PublicKey
		}
	case *ecdsa.PrivateKey:
		if k != nil {
			key = &k.PublicKey
		}
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := key.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return nil, fmt.Errorf("alg %s needs an RSA key", alg)
		}
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return nil, fmt.Errorf("RSA key of %d bits, want %d to %d", n, minRSABits, maxRSABits)
		}
		return k, nil
	case "ES256", "ES384", "ES512":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok || k == nil || k.Curve == nil {
			return nil, fmt.Errorf("alg %s needs an EC key", alg)
		}
		if want := curveFor(alg); k.Curve != want {
			return nil, fmt.Errorf("alg %s needs curve %s, key is on %s", alg, want.Params().Name, k.Curve.Params().Name)
		}
		//lint:ignore SA1019 the coordinates are only tested for nil, which would make Bytes and Verify panic
		if k.X == nil || k.Y == nil {
			return nil, errors.New("EC key has no point")
		}
		if _, err := k.Bytes(); err != nil { // the point is on the curve
			return nil, fmt.Errorf("invalid EC key: %v", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("alg %q is not supported", clip(alg))
}

func curveFor(alg string) elliptic.Curve {
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	default:
		return elliptic.P521()
	}
}

// verifySignature checks sig over input with key, which suitable has
// already matched to alg.
func verifySignature(alg string, key crypto.PublicKey, input, sig []byte) error {
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		pub, _ := key.(*rsa.PublicKey)
		return jwtparse.VerifyRSA(alg, pub, input, sig)
	case strings.HasPrefix(alg, "ES"):
		_, digest, err := jwtparse.Digest(alg, input)
		if err != nil {
			return err
		}
		// RFC 7518 §3.4: R and S, each left-padded to the curve's size.
		pub := key.(*ecdsa.PublicKey)
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return errors.New("ECDSA signature has the wrong length")
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(pub, digest, r, s) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	}
	return errors.New("unsupported alg")
}
