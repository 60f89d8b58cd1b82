package oidcfed

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

var errKinds = []error{ErrMalformed, ErrAlgorithm, ErrIssuerUnreachable, ErrIssuerNotAllowed, ErrKeyNotFound, ErrSignature, ErrExpired, ErrNotYetValid}

// FuzzVerify checks that no input panics, that every refusal is an *Error
// of one of the kinds, and that whatever verifies also verifies under an
// independent implementation (go-jose) with the issuer's key: nothing
// verifies without a valid signature. Keys come from Local, so the fuzzer
// makes no network requests.
func FuzzVerify(f *testing.F) {
	const iss = "https://login.tenantbridge.test/tenant-a/v2.0"
	keys := []testKey{
		rsaKey(0, "rsa", jose.RS256),
		rsaKey(1, "ps", jose.PS256),
		ecKey(0, "ec", jose.ES256),
		ecKey(2, "ec521", jose.ES512),
	}
	pubs := map[string]crypto.PublicKey{}
	for _, k := range keys {
		pubs[k.kid] = k.priv.Public()
	}
	v := NewVerifier(Config{
		Now: func() time.Time { return testNow },
		Local: func(issuer, kid string) (crypto.PublicKey, bool, bool) {
			if issuer != iss {
				return nil, false, false
			}
			k, ok := pubs[kid]
			return k, true, ok
		},
	})

	claims := claimsFor(iss, testNow)
	arrayAud := claimsFor(iss, testNow)
	arrayAud["aud"] = []string{"a", "b"}
	for _, k := range keys {
		for _, c := range []map[string]any{claims, arrayAud} {
			raw := k.sign(f, c, nil)
			f.Add(raw)
			f.Add(raw + "\n")
			parts := strings.Split(raw, ".")
			// Mutations: a flipped character in each segment, swapped
			// segments, a dropped signature.
			for i := range parts {
				p := []byte(parts[i])
				p[len(p)/2] ^= 1
				m := append([]string(nil), parts...)
				m[i] = string(p)
				f.Add(strings.Join(m, "."))
			}
			f.Add(parts[1] + "." + parts[0] + "." + parts[2])
			f.Add(parts[0] + "." + parts[1] + ".")
		}
	}
	enc := base64.RawURLEncoding.EncodeToString
	payload, _ := json.Marshal(claims)
	f.Add(enc([]byte(`{"alg":"none"}`)) + "." + enc(payload) + ".")
	f.Add(enc([]byte(`{"alg":"HS256","kid":"rsa"}`)) + "." + enc(payload) + "." + enc([]byte("mac")))
	f.Add(enc([]byte(`{"alg":"RS256","kid":"rsa","crit":["b64"],"b64":false}`)) + "." + enc(payload) + "." + enc([]byte("sig")))
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")

	f.Fuzz(func(t *testing.T, raw string) {
		a, err := v.Verify(context.Background(), raw)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			known := false
			for _, kind := range errKinds {
				known = known || errors.Is(err, kind)
			}
			if !known {
				t.Fatalf("error of no kind: %v", err)
			}
			if a.Issuer != "" || a.Subject != "" {
				t.Fatalf("assertion with error: %+v", a)
			}
			return
		}
		jws, err := jose.ParseSignedCompact(strings.TrimSpace(raw), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(a.Algorithm)})
		if err != nil {
			t.Fatalf("verified, but go-jose cannot parse it: %v", err)
		}
		verified, err := jws.Verify(pubs[a.KeyID])
		if err != nil {
			t.Fatalf("verified, but go-jose finds the signature invalid: %v", err)
		}
		var c struct {
			Iss, Sub string
		}
		if err := json.Unmarshal(verified, &c); err != nil || c.Iss != a.Issuer || c.Sub != a.Subject {
			t.Fatalf("claims differ: %s vs %+v", verified, a)
		}
	})
}

// FuzzParseJWKS checks that no JWK Set panics the parser or the lookup,
// and that only public RSA and EC keys come out of it.
func FuzzParseJWKS(f *testing.F) {
	var members []any
	for _, k := range []testKey{rsaKey(0, "rsa", jose.RS256), ecKey(0, "ec", jose.ES256), ecKey(1, "", "")} {
		members = append(members, k.jwk())
	}
	set, _ := json.Marshal(map[string]any{"keys": members})
	f.Add(set, "rsa", "RS256")
	f.Add(set, "ec", "ES256")
	f.Add(set, "", "ES384")
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"x"}]}`), "x", "HS256")
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"e"}]}`), "e", "ES256")
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r","use":"sig","key_ops":["verify"]}]}`), "r", "RS256")
	f.Add([]byte(`{"keys":null}`), "", "")
	f.Add([]byte(`[]`), "", "")

	f.Fuzz(func(t *testing.T, data []byte, kid, alg string) {
		s, err := parseJWKS(data)
		if err != nil {
			return
		}
		for _, k := range s.keys {
			switch k.key.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey:
			default:
				t.Fatalf("key of type %T", k.key)
			}
			if k.alg != "" && !allowedAlg(k.alg) {
				t.Fatalf("key for alg %q", k.alg)
			}
		}
		if !allowedAlg(alg) {
			return
		}
		key, err := s.lookup(kid, alg)
		if err == nil {
			if _, err := suitable(alg, key); err != nil {
				t.Fatalf("lookup returned an unsuitable key: %v", err)
			}
			_ = verifySignature(alg, key, data, []byte(kid))
		}
	})
}

// FuzzCacheMaxAge checks the Cache-Control reader on any header value.
func FuzzCacheMaxAge(f *testing.F) {
	for _, s := range []string{"max-age=60", "public, max-age=86400", "no-store", `max-age="1"`, "max-age=99999999999999999999", ",,="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{}
		h.Set("Cache-Control", s)
		if d, _ := cacheMaxAge(h); d < 0 {
			t.Fatalf("negative max-age %v", d)
		}
	})
}
