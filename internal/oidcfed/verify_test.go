package oidcfed

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestVerifyAlgorithms(t *testing.T) {
	keys := []testKey{
		rsaKey(0, "rs256", jose.RS256),
		rsaKey(1, "ps256", jose.PS256),
		rsaKey(2, "rs512", jose.RS512),
		ecKey(0, "es256", jose.ES256),
		ecKey(1, "es384", jose.ES384),
		ecKey(2, "es512", jose.ES512),
	}
	f := newFakeIssuer(t, keys...)
	clk := newClock()
	v := newTestVerifier(f, clk)
	for _, k := range keys {
		t.Run(string(k.alg), func(t *testing.T) {
			raw := k.sign(t, claimsFor(f.URL, clk.Now()), nil)
			got, err := v.Verify(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			want := Assertion{
				Issuer:    f.URL,
				Subject:   "system:serviceaccount:prod:worker",
				Audiences: []string{"api://AzureADTokenExchange"},
				Expires:   testNow.Add(time.Hour),
				NotBefore: testNow,
				IssuedAt:  testNow,
				ID:        "c0ffee",
				KeyID:     k.kid,
				Algorithm: string(k.alg),
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
	// One issuer, one fetch.
	wantHits(t, f, 1, 1)
}

func TestVerifyClaims(t *testing.T) {
	k := rsaKey(0, "k1", jose.RS256)
	f := newFakeIssuer(t, k)
	clk := newClock()
	v := newTestVerifier(f, clk)
	now := clk.Now()
	skew := defaultClockSkew

	tests := []struct {
		name   string
		edit   func(c map[string]any)
		want   error
		checks func(t *testing.T, a Assertion)
	}{
		{name: "aud string", edit: func(c map[string]any) { c["aud"] = "a" },
			checks: func(t *testing.T, a Assertion) {
				if !reflect.DeepEqual(a.Audiences, []string{"a"}) {
					t.Errorf("aud = %q", a.Audiences)
				}
			}},
		{name: "aud array", edit: func(c map[string]any) { c["aud"] = []string{"a", "b"} },
			checks: func(t *testing.T, a Assertion) {
				if !reflect.DeepEqual(a.Audiences, []string{"a", "b"}) {
					t.Errorf("aud = %q", a.Audiences)
				}
			}},
		{name: "no nbf iat jti", edit: func(c map[string]any) { delete(c, "nbf"); delete(c, "iat"); delete(c, "jti") },
			checks: func(t *testing.T, a Assertion) {
				if !a.NotBefore.IsZero() || !a.IssuedAt.IsZero() || a.ID != "" {
					t.Errorf("got %+v", a)
				}
			}},
		{name: "fractional exp", edit: func(c map[string]any) { c["exp"] = float64(now.Unix()) + 600.5 },
			checks: func(t *testing.T, a Assertion) {
				if want := now.Add(600*time.Second + 500*time.Millisecond); !a.Expires.Equal(want) {
					t.Errorf("exp = %v, want %v", a.Expires, want)
				}
			}},
		{name: "expired within skew", edit: func(c map[string]any) { c["exp"] = now.Add(-skew + time.Second).Unix() }},
		{name: "nbf within skew", edit: func(c map[string]any) { c["nbf"] = now.Add(skew - time.Second).Unix() }},
		{name: "expired", edit: func(c map[string]any) { c["exp"] = now.Add(-skew - time.Second).Unix() }, want: ErrExpired},
		{name: "expired exactly at skew", edit: func(c map[string]any) { c["exp"] = now.Add(-skew).Unix() }, want: ErrExpired},
		{name: "nbf in future", edit: func(c map[string]any) { c["nbf"] = now.Add(skew + time.Second).Unix() }, want: ErrNotYetValid},
		{name: "missing sub", edit: func(c map[string]any) { delete(c, "sub") }, want: ErrMalformed},
		{name: "empty sub", edit: func(c map[string]any) { c["sub"] = "" }, want: ErrMalformed},
		{name: "missing iss", edit: func(c map[string]any) { delete(c, "iss") }, want: ErrMalformed},
		{name: "missing aud", edit: func(c map[string]any) { delete(c, "aud") }, want: ErrMalformed},
		{name: "empty aud array", edit: func(c map[string]any) { c["aud"] = []string{} }, want: ErrMalformed},
		{name: "aud number", edit: func(c map[string]any) { c["aud"] = 5 }, want: ErrMalformed},
		{name: "aud array of numbers", edit: func(c map[string]any) { c["aud"] = []int{5} }, want: ErrMalformed},
		{name: "missing exp", edit: func(c map[string]any) { delete(c, "exp") }, want: ErrMalformed},
		{name: "exp string", edit: func(c map[string]any) { c["exp"] = fmt.Sprint(now.Add(time.Hour).Unix()) }, want: ErrMalformed},
		{name: "exp huge", edit: func(c map[string]any) { c["exp"] = 1e300 }, want: ErrMalformed},
		{name: "exp negative", edit: func(c map[string]any) { c["exp"] = -1 }, want: ErrMalformed},
		{name: "iss number", edit: func(c map[string]any) { c["iss"] = 1 }, want: ErrMalformed},
		{name: "ISS is not iss", edit: func(c map[string]any) { c["ISS"] = c["iss"]; delete(c, "iss") }, want: ErrMalformed},
		{name: "jti number", edit: func(c map[string]any) { c["jti"] = 1 }, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claimsFor(f.URL, now)
			tt.edit(c)
			a, err := v.Verify(context.Background(), k.sign(t, c, nil))
			if tt.want != nil {
				wantKind(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.checks != nil {
				tt.checks(t, a)
			}
		})
	}
}

// encodeJWS builds a compact JWS from its parts, for tokens go-jose will
// not make.
func encodeJWS(header, claims any, sig []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

func TestVerifyRefusesForgeries(t *testing.T) {
	k := rsaKey(0, "k1", jose.RS256)
	other := rsaKey(1, "k1", jose.RS256) // same kid, other key
	f := newFakeIssuer(t, k)
	clk := newClock()
	v := newTestVerifier(f, clk)
	claims := claimsFor(f.URL, clk.Now())
	good := k.sign(t, claims, nil)
	parts := strings.Split(good, ".")

	pubDER, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(secret []byte) string {
		h, _ := json.Marshal(map[string]string{"alg": "HS256", "kid": "k1", "typ": "JWT"})
		c, _ := json.Marshal(claims)
		input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(input))
		return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	tamperedClaims := claimsFor(f.URL, clk.Now())
	tamperedClaims["sub"] = "system:serviceaccount:prod:admin"
	tamperedPayload, _ := json.Marshal(tamperedClaims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) + "." + parts[2]
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	truncated := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig[:len(sig)-3])

	// A signature valid for the same input, moved onto a token with
	// another header (kid spelled differently).
	hdr2, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1", "typ": "jwt"})
	reheadered := base64.RawURLEncoding.EncodeToString(hdr2) + "." + parts[1] + "." + parts[2]

	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"alg none", encodeJWS(map[string]string{"alg": "none", "kid": "k1"}, claims, nil), ErrAlgorithm},
		{"alg none empty sig", strings.TrimSuffix(encodeJWS(map[string]string{"alg": "none"}, claims, nil), "."), ErrMalformed},
		{"alg None", encodeJWS(map[string]string{"alg": "None", "kid": "k1"}, claims, []byte("x")), ErrAlgorithm},
		{"HS256 with the public key PEM", hs256(pubPEM), ErrAlgorithm},
		{"HS256 with the public key DER", hs256(pubDER), ErrAlgorithm},
		{"EdDSA", encodeJWS(map[string]string{"alg": "EdDSA", "kid": "k1"}, claims, []byte("x")), ErrAlgorithm},
		{"alg missing", encodeJWS(map[string]string{"kid": "k1"}, claims, []byte("x")), ErrMalformed},
		{"alg number", encodeJWS(map[string]any{"alg": 256, "kid": "k1"}, claims, []byte("x")), ErrMalformed},
		{"other key, same kid", other.sign(t, claims, nil), ErrSignature},
		{"tampered payload", tampered, ErrSignature},
		{"header swapped", reheadered, ErrSignature},
		{"signature truncated", truncated, ErrSignature},
		{"signature of other token", parts[0] + "." + parts[1] + "." + strings.Split(k.sign(t, tamperedClaims, nil), ".")[2], ErrSignature},
		{"two segments", parts[0] + "." + parts[1], ErrMalformed},
		{"JWE shape", good + ".a.b", ErrMalformed},
		{"padding", good + "=", ErrMalformed},
		{"newline inside", parts[0] + ".\n" + parts[1] + "." + parts[2], ErrMalformed},
		{"std base64", strings.NewReplacer("-", "+", "_", "/").Replace(good), ErrMalformed},
		{"header not JSON", "e30x." + parts[1] + "." + parts[2], ErrMalformed},
		{"header null", base64.RawURLEncoding.EncodeToString([]byte("null")) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"crit", other.sign(t, claims, map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1}), ErrMalformed},
		{"empty", "   ", ErrMalformed},
		{"too long", good + strings.Repeat("A", maxTokenBytes), ErrMalformed},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := v.Verify(context.Background(), tt.raw)
			wantKind(t, err, tt.want)
			if a.Issuer != "" {
				t.Errorf("assertion returned with error: %+v", a)
			}
			// The error never quotes the token.
			for _, p := range strings.Split(strings.TrimSpace(tt.raw), ".") {
				if len(p) > 16 && strings.Contains(err.Error(), p) {
					t.Errorf("error text contains a token segment: %v", err)
				}
			}
		})
	}
	// Sanity: the original verifies, also with the newline a projected
	// token file ends with.
	if _, err := v.Verify(context.Background(), good+"\n"); err != nil {
		t.Fatal(err)
	}
}

func TestKeySelection(t *testing.T) {
	clk := newClock()
	rs := rsaKey(0, "rsa", jose.RS256)
	es := ecKey(0, "ec", jose.ES256)

	t.Run("no kid, one key", func(t *testing.T) {
		f := newFakeIssuer(t, rs)
		v := newTestVerifier(f, clk)
		noKid := testKey{alg: jose.RS256, priv: rs.priv}
		if _, err := v.Verify(context.Background(), noKid.sign(t, claimsFor(f.URL, clk.Now()), nil)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no kid, two keys", func(t *testing.T) {
		f := newFakeIssuer(t, rs, es)
		v := newTestVerifier(f, clk)
		noKid := testKey{alg: jose.RS256, priv: rs.priv}
		_, err := v.Verify(context.Background(), noKid.sign(t, claimsFor(f.URL, clk.Now()), nil))
		wantKind(t, err, ErrKeyNotFound)
		wantHits(t, f, 1, 1)
	})
	t.Run("kid names a key of another type", func(t *testing.T) {
		f := newFakeIssuer(t, es)
		v := newTestVerifier(f, clk)
		// An RS256 token whose kid names the EC key.
		liar := testKey{kid: "ec", alg: jose.RS256, priv: rs.priv}
		_, err := v.Verify(context.Background(), liar.sign(t, claimsFor(f.URL, clk.Now()), nil))
		wantKind(t, err, ErrKeyNotFound)
		wantHits(t, f, 1, 1) // no refresh: the kid is known
	})
	t.Run("ES384 token for a P-256 key", func(t *testing.T) {
		jwk := es.jwk()
		jwk.Algorithm = ""
		f := newFakeIssuer(t)
		f.publish(jwk)
		v := newTestVerifier(f, clk)
		liar := testKey{kid: "ec", alg: jose.ES384, priv: testECKeys()[1]}
		_, err := v.Verify(context.Background(), liar.sign(t, claimsFor(f.URL, clk.Now()), nil))
		wantKind(t, err, ErrKeyNotFound)
	})
	t.Run("JWK alg differs from header alg", func(t *testing.T) {
		f := newFakeIssuer(t, rs) // published for RS256
		v := newTestVerifier(f, clk)
		ps := testKey{kid: "rsa", alg: jose.PS256, priv: rs.priv}
		_, err := v.Verify(context.Background(), ps.sign(t, claimsFor(f.URL, clk.Now()), nil))
		wantKind(t, err, ErrKeyNotFound)
	})
	t.Run("JWK without alg serves any RSA alg", func(t *testing.T) {
		jwk := rs.jwk()
		jwk.Algorithm = ""
		f := newFakeIssuer(t)
		f.publish(jwk)
		v := newTestVerifier(f, clk)
		for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS384, jose.RS512} {
			k := testKey{kid: "rsa", alg: alg, priv: rs.priv}
			if _, err := v.Verify(context.Background(), k.sign(t, claimsFor(f.URL, clk.Now()), nil)); err != nil {
				t.Fatalf("%s: %v", alg, err)
			}
		}
	})
	t.Run("use enc", func(t *testing.T) {
		jwk := rs.jwk()
		jwk.Use = "enc"
		f := newFakeIssuer(t)
		f.publish(jwk)
		v := newTestVerifier(f, clk)
		_, err := v.Verify(context.Background(), rs.sign(t, claimsFor(f.URL, clk.Now()), nil))
		wantKind(t, err, ErrKeyNotFound)
	})
	t.Run("RSA key too small", func(t *testing.T) {
		small, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		k := testKey{kid: "small", alg: jose.RS256, priv: small}
		f := newFakeIssuer(t, k)
		v := newTestVerifier(f, clk)
		_, err = v.Verify(context.Background(), k.sign(t, claimsFor(f.URL, clk.Now()), nil))
		wantKind(t, err, ErrKeyNotFound)
	})
	t.Run("duplicate kid, second key suits", func(t *testing.T) {
		esSameKid := es
		esSameKid.kid = "rsa"
		f := newFakeIssuer(t, esSameKid, rs)
		v := newTestVerifier(f, clk)
		if _, err := v.Verify(context.Background(), rs.sign(t, claimsFor(f.URL, clk.Now()), nil)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unusable members are skipped", func(t *testing.T) {
		f := newFakeIssuer(t)
		f.publish(json.RawMessage(`{"kty":"oct","kid":"rsa","k":"c2VjcmV0"}`))
		f.publish(json.RawMessage(`{"kty":"OKP","crv":"X25519","kid":"x","x":"AAAA"}`))
		f.publish(json.RawMessage(`"not an object"`))
		f.publish(rs.jwk())
		v := newTestVerifier(f, clk)
		if _, err := v.Verify(context.Background(), rs.sign(t, claimsFor(f.URL, clk.Now()), nil)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeyHeadersAreIgnored(t *testing.T) {
	clk := newClock()
	rs := rsaKey(0, "rsa", jose.RS256)
	attacker := rsaKey(1, "rsa", jose.RS256)
	f := newFakeIssuer(t, rs)
	trap := newFakeIssuer(t, attacker) // serves the attacker's keys
	v := newTestVerifier(f, clk)

	// Signed with the attacker's key, pointing at the attacker's keys in
	// every way a header can.
	raw := attacker.sign(t, claimsFor(f.URL, clk.Now()), map[jose.HeaderKey]any{
		"jku": trap.URL + "/jwks",
		"x5u": trap.URL + "/cert.pem",
		"jwk": attacker.jwk(),
	})
	hdrJSON, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	var hdr map[string]any
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil || hdr["jku"] == nil || hdr["x5u"] == nil || hdr["jwk"] == nil {
		t.Fatalf("test token lacks its key headers: %s", hdrJSON)
	}
	_, err := v.Verify(context.Background(), raw)
	wantKind(t, err, ErrSignature)
	if d, j := trap.hits(); d+j != 0 {
		t.Fatalf("the token's key URLs were fetched: %d requests", d+j)
	}
	// Garbage in those headers does not matter either.
	raw = rs.sign(t, claimsFor(f.URL, clk.Now()), map[jose.HeaderKey]any{"jwk": "garbage", "x5c": []int{1}})
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
}

func TestIssuerChecks(t *testing.T) {
	clk := newClock()
	k := rsaKey(0, "k1", jose.RS256)

	t.Run("discovery names another issuer", func(t *testing.T) {
		f := newFakeIssuer(t, k)
		f.set(func(f *fakeIssuer) {
			f.discovery = func(string) []byte {
				return []byte(`{"issuer":"https://evil.example","jwks_uri":"` + f.URL + `/jwks"}`)
			}
		})
		v := newTestVerifier(f, clk)
		_, err := v.Verify(context.Background(), k.sign(t, claimsFor(f.URL, clk.Now()), nil))
		wantKind(t, err, ErrIssuerUnreachable)
		wantHits(t, f, 1, 0)
	})
	t.Run("issuer differs only by trailing slash", func(t *testing.T) {
		f := newFakeIssuer(t, k)
		v := newTestVerifier(f, clk)
		_, err := v.Verify(context.Background(), k.sign(t, claimsFor(f.URL+"/tenant/", clk.Now()), nil))
		wantKind(t, err, ErrIssuerUnreachable) // discovery says f.URL+"/tenant"
	})
	t.Run("v1-style issuer with trailing slash", func(t *testing.T) {
		f := newFakeIssuer(t, k)
		iss := f.URL + "/72f988bf-86f1-41af-91ab-2d7cd011db47/"
		var gotPrefix string
		f.set(func(f *fakeIssuer) {
			f.discovery = func(prefix string) []byte {
				gotPrefix = prefix
				return []byte(`{"issuer":"` + iss + `","jwks_uri":"` + f.URL + `/jwks"}`)
			}
		})
		v := newTestVerifier(f, clk)
		a, err := v.Verify(context.Background(), k.sign(t, claimsFor(iss, clk.Now()), nil))
		if err != nil {
			t.Fatal(err)
		}
		if a.Issuer != iss || gotPrefix != "/72f988bf-86f1-41af-91ab-2d7cd011db47" {
			t.Fatalf("issuer %q, discovery at prefix %q", a.Issuer, gotPrefix)
		}
	})
	t.Run("issuers on one host are cached apart", func(t *testing.T) {
		f := newFakeIssuer(t, k)
		v := newTestVerifier(f, clk)
		for _, iss := range []string{f.URL + "/a", f.URL + "/b", f.URL + "/a"} {
			if _, err := v.Verify(context.Background(), k.sign(t, claimsFor(iss, clk.Now()), nil)); err != nil {
				t.Fatal(err)
			}
		}
		wantHits(t, f, 2, 2)
	})
	t.Run("http issuer refused", func(t *testing.T) {
		var hits int
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
		defer plain.Close()
		f := newFakeIssuer(t, k)
		v := newTestVerifier(f, clk)
		_, err := v.Verify(context.Background(), k.sign(t, claimsFor(plain.URL, clk.Now()), nil))
		wantKind(t, err, ErrIssuerUnreachable)
		if hits != 0 {
			t.Fatal("http issuer was fetched")
		}
	})
	t.Run("bad issuer URLs", func(t *testing.T) {
		f := newFakeIssuer(t, k)
		v := newTestVerifier(f, clk)
		u := strings.TrimPrefix(f.URL, "https://")
		for _, iss := range []string{
			"https://user:pw@" + u,
			"https://" + u + "?tenant=a",
			"https://" + u + "?",
			"https://" + u + "#frag",
			"https://" + u + "#",
			"https:" + u,
			"https:///path",
			"ftp://" + u,
			"https://" + u + "/a b",
			"not a url",
		} {
			_, err := v.Verify(context.Background(), k.sign(t, claimsFor(iss, clk.Now()), nil))
			wantKind(t, err, ErrIssuerUnreachable)
		}
		wantHits(t, f, 0, 0)
	})
	t.Run("http jwks_uri refused", func(t *testing.T) {
		f := newFakeIssuer(t, k)
		f.set(func(f *fakeIssuer) {
			f.discovery = func(string) []byte {
				return []byte(`{"issuer":"` + f.URL + `","jwks_uri":"` + strings.Replace(f.URL, "https", "http", 1) + `/jwks"}`)
			}
		})
		v := newTestVerifier(f, clk)
		_, err := v.Verify(context.Background(), k.sign(t, claimsFor(f.URL, clk.Now()), nil))
		wantKind(t, err, ErrIssuerUnreachable)
		wantHits(t, f, 1, 0)
	})
	t.Run("redirect to http refused", func(t *testing.T) {
		plainHits := 0
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plainHits++ }))
		defer plain.Close()
		redirector := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/.well-known/openid-configuration", http.StatusFound))
		defer redirector.Close()
		f := newFakeIssuer(t, k)
		v := newTestVerifier(f, clk)
		_, err := v.Verify(context.Background(), k.sign(t, claimsFor(redirector.URL, clk.Now()), nil))
		wantKind(t, err, ErrIssuerUnreachable)
		if plainHits != 0 {
			t.Fatal("followed a redirect to http")
		}
	})
	t.Run("VerifyFor refuses before fetching", func(t *testing.T) {
		f := newFakeIssuer(t, k)
		v := newTestVerifier(f, clk)
		raw := k.sign(t, claimsFor(f.URL, clk.Now()), nil)
		var asked string
		_, err := v.VerifyFor(context.Background(), raw, func(iss string) bool { asked = iss; return false })
		wantKind(t, err, ErrIssuerNotAllowed)
		wantHits(t, f, 0, 0)
		if asked != f.URL {
			t.Fatalf("allow asked about %q", asked)
		}
		if _, err := v.VerifyFor(context.Background(), raw, func(iss string) bool { return iss == f.URL }); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no client", func(t *testing.T) {
		v := NewVerifier(Config{Now: clk.Now})
		_, err := v.Verify(context.Background(), k.sign(t, claimsFor("https://issuer.example", clk.Now()), nil))
		wantKind(t, err, ErrIssuerUnreachable)
	})
}

func TestFetchFailures(t *testing.T) {
	clk := newClock()
	k := rsaKey(0, "k1", jose.RS256)
	tests := []struct {
		name string
		edit func(f *fakeIssuer)
	}{
		{"discovery 404", func(f *fakeIssuer) { f.discovery = nil; f.status = http.StatusNotFound }},
		{"discovery not JSON", func(f *fakeIssuer) { f.discovery = func(string) []byte { return []byte("<html>") } }},
		{"discovery without jwks_uri", func(f *fakeIssuer) {
			f.discovery = func(string) []byte { return []byte(`{"issuer":"` + f.URL + `"}`) }
		}},
		{"discovery issuer not a string", func(f *fakeIssuer) {
			f.discovery = func(string) []byte { return []byte(`{"issuer":["` + f.URL + `"],"jwks_uri":"` + f.URL + `/jwks"}`) }
		}},
		{"discovery too large", func(f *fakeIssuer) {
			f.discovery = func(string) []byte {
				return []byte(`{"issuer":"` + f.URL + `","jwks_uri":"` + f.URL + `/jwks","pad":"` + strings.Repeat("x", maxDiscoveryBytes) + `"}`)
			}
		}},
		{"JWKS not JSON", func(f *fakeIssuer) { f.jwksBody = []byte("nope") }},
		{"JWKS without keys", func(f *fakeIssuer) { f.jwksBody = []byte(`{"kys":[]}`) }},
		{"JWKS keys not an array", func(f *fakeIssuer) { f.jwksBody = []byte(`{"keys":{}}`) }},
		{"JWKS too large", func(f *fakeIssuer) {
			f.jwksBody = []byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSBytes) + `"}`)
		}},
		{"jwks_uri with userinfo", func(f *fakeIssuer) {
			f.discovery = func(string) []byte {
				return []byte(`{"issuer":"` + f.URL + `","jwks_uri":"` + strings.Replace(f.URL, "https://", "https://u:p@", 1) + `/jwks"}`)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIssuer(t, k)
			f.set(tt.edit)
			v := newTestVerifier(f, clk)
			_, err := v.Verify(context.Background(), k.sign(t, claimsFor(f.URL, clk.Now()), nil))
			wantKind(t, err, ErrIssuerUnreachable)
			if !strings.Contains(err.Error(), f.URL) {
				t.Errorf("error does not name the issuer: %v", err)
			}
		})
	}
	t.Run("empty JWKS", func(t *testing.T) {
		f := newFakeIssuer(t)
		v := newTestVerifier(f, clk)
		_, err := v.Verify(context.Background(), k.sign(t, claimsFor(f.URL, clk.Now()), nil))
		wantKind(t, err, ErrKeyNotFound)
	})
}

func TestUnknownKidRefresh(t *testing.T) {
	clk := newClock()
	k1 := rsaKey(0, "k1", jose.RS256)
	k2 := ecKey(0, "k2", jose.ES256)
	k3 := rsaKey(1, "k3", jose.PS256)
	f := newFakeIssuer(t, k1)
	v := newTestVerifier(f, clk) // refresh interval 1m
	ctx := context.Background()
	verify := func(k testKey) error {
		_, err := v.Verify(ctx, k.sign(t, claimsFor(f.URL, clk.Now()), nil))
		return err
	}

	if err := verify(k1); err != nil {
		t.Fatal(err)
	}
	wantHits(t, f, 1, 1)

	// k2 is unknown. The fetch just made counts against the interval: no
	// refetch yet.
	wantKind(t, verify(k2), ErrKeyNotFound)
	wantHits(t, f, 1, 1)

	// After the interval, an unknown kid causes exactly one refetch, and
	// then it is still unknown.
	clk.Advance(time.Minute)
	err := verify(k2)
	wantKind(t, err, ErrKeyNotFound)
	if !strings.Contains(err.Error(), `"k2"`) || !strings.Contains(err.Error(), f.URL) {
		t.Errorf("error does not name issuer and kid: %v", err)
	}
	wantHits(t, f, 2, 2)
	for range 5 {
		wantKind(t, verify(k2), ErrKeyNotFound)
	}
	wantHits(t, f, 2, 2)

	// The issuer rotates in k2: after the interval the next k2 token
	// refreshes once and verifies; k1 still verifies from the cache.
	f.publish(k2.jwk())
	clk.Advance(30 * time.Second)
	wantKind(t, verify(k2), ErrKeyNotFound) // rate limited
	wantHits(t, f, 2, 2)
	clk.Advance(30 * time.Second)
	if err := verify(k2); err != nil {
		t.Fatal(err)
	}
	wantHits(t, f, 3, 3)
	if err := verify(k1); err != nil {
		t.Fatal(err)
	}
	if err := verify(k2); err != nil {
		t.Fatal(err)
	}
	wantHits(t, f, 3, 3)

	// The issuer drops k1 and adds k3: the refresh for k3 replaces the
	// set, so k1 stops verifying.
	f.set(func(f *fakeIssuer) { f.keys = []any{k2.jwk(), k3.jwk()} })
	clk.Advance(time.Minute)
	if err := verify(k3); err != nil {
		t.Fatal(err)
	}
	wantHits(t, f, 4, 4)
	wantKind(t, verify(k1), ErrKeyNotFound)
	wantHits(t, f, 4, 4)
}

func TestRefreshFailureKeepsKeys(t *testing.T) {
	clk := newClock()
	k1 := rsaKey(0, "k1", jose.RS256)
	k2 := rsaKey(1, "k2", jose.RS256)
	f := newFakeIssuer(t, k1)
	v := newTestVerifier(f, clk)
	ctx := context.Background()
	if _, err := v.Verify(ctx, k1.sign(t, claimsFor(f.URL, clk.Now()), nil)); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fakeIssuer) { f.status = http.StatusServiceUnavailable })
	clk.Advance(time.Minute)
	// The refresh for an unknown kid fails: that is the issuer's fault.
	_, err := v.Verify(ctx, k2.sign(t, claimsFor(f.URL, clk.Now()), nil))
	wantKind(t, err, ErrIssuerUnreachable)
	// The keys already held still serve.
	if _, err := v.Verify(ctx, k1.sign(t, claimsFor(f.URL, clk.Now()), nil)); err != nil {
		t.Fatal(err)
	}
	wantHits(t, f, 2, 1)
}

func TestSingleflight(t *testing.T) {
	clk := newClock()
	k := ecKey(0, "k1", jose.ES256)
	f := newFakeIssuer(t, k)
	gate := make(chan struct{})
	f.set(func(f *fakeIssuer) { f.gate = gate })
	v := newTestVerifier(f, clk)
	raw := k.sign(t, claimsFor(f.URL, clk.Now()), nil)

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), raw)
			errs <- err
		})
	}
	// Hold the one discovery request until it has arrived, and a moment
	// longer so that the others pile up behind it. (Correctness does not
	// depend on the moment: late comers find the keys cached.)
	for f.discoveryHits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantHits(t, f, 1, 1)
}

func TestSingleflightUnknownKid(t *testing.T) {
	clk := newClock()
	k1 := rsaKey(0, "k1", jose.RS256)
	f := newFakeIssuer(t, k1)
	v := newTestVerifier(f, clk)
	if _, err := v.Verify(context.Background(), k1.sign(t, claimsFor(f.URL, clk.Now()), nil)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	var wg sync.WaitGroup
	for i := range 20 {
		k := testKey{kid: fmt.Sprintf("made-up-%d", i), alg: jose.RS256, priv: k1.priv}
		raw := k.sign(t, claimsFor(f.URL, clk.Now()), nil)
		wg.Go(func() {
			_, err := v.Verify(context.Background(), raw)
			if !errors.Is(err, ErrKeyNotFound) {
				t.Errorf("err = %v", err)
			}
		})
	}
	wg.Wait()
	wantHits(t, f, 2, 2)
}

func TestWaitHonoursContext(t *testing.T) {
	clk := newClock()
	k := rsaKey(0, "k1", jose.RS256)
	f := newFakeIssuer(t, k)
	gate := make(chan struct{})
	f.set(func(f *fakeIssuer) { f.gate = gate })
	v := newTestVerifier(f, clk)
	raw := k.sign(t, claimsFor(f.URL, clk.Now()), nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := v.Verify(ctx, raw)
		done <- err
	}()
	for f.discoveryHits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	err := <-done
	wantKind(t, err, ErrIssuerUnreachable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled inside", err)
	}
	// The fetch carries on for the next caller.
	close(gate)
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	wantHits(t, f, 1, 1)
}

func TestCacheTTL(t *testing.T) {
	k := rsaKey(0, "k1", jose.RS256)
	tests := []struct {
		name         string
		cacheTTL     time.Duration
		cacheControl string
		fresh        time.Duration // still cached this long after the fetch
	}{
		{"default 24h", 0, "", 24 * time.Hour},
		{"configured", 2 * time.Hour, "", 2 * time.Hour},
		{"max-age shortens", 0, "public, max-age=3600", time.Hour},
		{"max-age floor 5m", 0, "max-age=60", 5 * time.Minute},
		{"no-cache floor 5m", 0, "no-cache", 5 * time.Minute},
		{"max-age longer is ignored", time.Hour, "max-age=86400", time.Hour},
		{"configured below floor", 2 * time.Minute, "max-age=60", 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			f := newFakeIssuer(t, k)
			f.set(func(f *fakeIssuer) { f.cacheControl = tt.cacheControl })
			v := newTestVerifier(f, clk, func(c *Config) { c.CacheTTL = tt.cacheTTL })
			verify := func() {
				t.Helper()
				// Fresh claims each time, so that the token is valid at the
				// advanced clock.
				if _, err := v.Verify(context.Background(), k.sign(t, claimsFor(f.URL, clk.Now()), nil)); err != nil {
					t.Fatal(err)
				}
			}
			verify()
			clk.Advance(tt.fresh - time.Second)
			verify()
			wantHits(t, f, 1, 1)
			clk.Advance(time.Second)
			verify()
			wantHits(t, f, 2, 2)
		})
	}
}

func TestStaleWhileError(t *testing.T) {
	k := rsaKey(0, "k1", jose.RS256)
	k2 := rsaKey(1, "k2", jose.RS256)
	ttl := time.Hour

	t.Run("server down", func(t *testing.T) {
		clk := newClock()
		f := newFakeIssuer(t, k)
		v := newTestVerifier(f, clk, func(c *Config) { c.CacheTTL = ttl })
		verify := func(k testKey) error {
			_, err := v.Verify(context.Background(), k.sign(t, claimsFor(f.URL, clk.Now()), nil))
			return err
		}
		if err := verify(k); err != nil {
			t.Fatal(err)
		}
		f.srv.Close()

		// Expired, the refetch fails, the old keys serve.
		clk.Advance(ttl + time.Minute)
		if err := verify(k); err != nil {
			t.Fatal(err)
		}
		// A kid the old keys lack gets the fetch error.
		wantKind(t, verify(k2), ErrIssuerUnreachable)
		// Up to twice the TTL, with retries spaced by the backoff.
		clk.Advance(ttl - 2*time.Minute)
		if err := verify(k); err != nil {
			t.Fatal(err)
		}
		// Then no more.
		clk.Advance(2 * time.Minute)
		wantKind(t, verify(k), ErrIssuerUnreachable)
	})
	t.Run("server errors, then recovers", func(t *testing.T) {
		clk := newClock()
		f := newFakeIssuer(t, k)
		v := newTestVerifier(f, clk, func(c *Config) { c.CacheTTL = ttl })
		verify := func(k testKey) error {
			_, err := v.Verify(context.Background(), k.sign(t, claimsFor(f.URL, clk.Now()), nil))
			return err
		}
		if err := verify(k); err != nil {
			t.Fatal(err)
		}
		f.set(func(f *fakeIssuer) { f.status = http.StatusInternalServerError })
		clk.Advance(ttl)
		for range 3 {
			if err := verify(k); err != nil {
				t.Fatal(err)
			}
		}
		// One failed attempt; the others within the backoff do not retry.
		wantHits(t, f, 2, 1)
		clk.Advance(maxFailureBackoff)
		if err := verify(k); err != nil {
			t.Fatal(err)
		}
		wantHits(t, f, 3, 1)
		// Recovered: the next attempt (after the backoff) refreshes.
		f.set(func(f *fakeIssuer) { f.status = 0; f.keys = append(f.keys, k2.jwk()) })
		clk.Advance(maxFailureBackoff)
		if err := verify(k2); err != nil {
			t.Fatal(err)
		}
		wantHits(t, f, 4, 2)
	})
}

func TestColdFailureBackoff(t *testing.T) {
	clk := newClock()
	k := rsaKey(0, "k1", jose.RS256)
	f := newFakeIssuer(t, k)
	f.set(func(f *fakeIssuer) { f.status = http.StatusBadGateway })
	v := newTestVerifier(f, clk)
	verify := func() error {
		_, err := v.Verify(context.Background(), k.sign(t, claimsFor(f.URL, clk.Now()), nil))
		return err
	}
	for range 3 {
		err := verify()
		wantKind(t, err, ErrIssuerUnreachable)
		if !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), `kid "k1"`) {
			t.Errorf("err = %v", err)
		}
	}
	wantHits(t, f, 1, 0)
	f.set(func(f *fakeIssuer) { f.status = 0 })
	clk.Advance(min(time.Minute, maxFailureBackoff))
	if err := verify(); err != nil {
		t.Fatal(err)
	}
	wantHits(t, f, 2, 1)
}

func TestLocalKeys(t *testing.T) {
	clk := newClock()
	local := rsaKey(0, "local-1", jose.RS256)
	localEC := ecKey(0, "local-ec", jose.ES256)
	const ours = "https://login.tenantbridge.test/11111111-2222-3333-4444-555555555555/v2.0"
	var requests []string
	var mu sync.Mutex
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		requests = append(requests, r.URL.String())
		return nil, errors.New("no network in this test")
	})}
	lookups := 0
	v := NewVerifier(Config{
		Client: client,
		Now:    clk.Now,
		Local: func(issuer, kid string) (crypto.PublicKey, bool, bool) {
			lookups++
			if issuer != ours {
				return nil, false, false
			}
			switch kid {
			case "local-1":
				return local.priv, true, true // a private key serves by its public half
			case "local-ec":
				return localEC.priv.Public(), true, true
			}
			return nil, true, false
		},
	})
	ctx := context.Background()

	for _, k := range []testKey{local, localEC} {
		a, err := v.Verify(ctx, k.sign(t, claimsFor(ours, clk.Now()), nil))
		if err != nil {
			t.Fatal(err)
		}
		if a.Issuer != ours || a.KeyID != k.kid {
			t.Fatalf("got %+v", a)
		}
	}
	unknown := testKey{kid: "local-2", alg: jose.RS256, priv: local.priv}
	_, err := v.Verify(ctx, unknown.sign(t, claimsFor(ours, clk.Now()), nil))
	wantKind(t, err, ErrKeyNotFound)
	forged := testKey{kid: "local-1", alg: jose.RS256, priv: testRSAKeys()[1]}
	_, err = v.Verify(ctx, forged.sign(t, claimsFor(ours, clk.Now()), nil))
	wantKind(t, err, ErrSignature)
	wrongAlg := testKey{kid: "local-1", alg: jose.ES256, priv: localEC.priv}
	_, err = v.Verify(ctx, wrongAlg.sign(t, claimsFor(ours, clk.Now()), nil))
	wantKind(t, err, ErrKeyNotFound)
	if len(requests) != 0 {
		t.Fatalf("local issuer made requests: %q", requests)
	}

	// A foreign issuer goes to the network.
	_, err = v.Verify(ctx, local.sign(t, claimsFor("https://foreign.example", clk.Now()), nil))
	wantKind(t, err, ErrIssuerUnreachable)
	if len(requests) != 1 || requests[0] != "https://foreign.example/.well-known/openid-configuration" {
		t.Fatalf("requests = %q", requests)
	}
	if lookups != 6 {
		t.Fatalf("Local consulted %d times, want 6", lookups)
	}
}

func TestMaxIssuers(t *testing.T) {
	clk := newClock()
	k := rsaKey(0, "k1", jose.RS256)
	f := newFakeIssuer(t, k)
	v := newTestVerifier(f, clk, func(c *Config) { c.MaxIssuers = 2 })
	verify := func(path string) {
		t.Helper()
		clk.Advance(time.Second)
		if _, err := v.Verify(context.Background(), k.sign(t, claimsFor(f.URL+path, clk.Now()), nil)); err != nil {
			t.Fatal(err)
		}
	}
	verify("/a")
	verify("/b")
	verify("/a") // a is now the more recently used
	verify("/c") // forgets b
	wantHits(t, f, 3, 3)
	verify("/a")
	verify("/b")
	wantHits(t, f, 4, 4)
	v.mu.Lock()
	n := len(v.cache)
	v.mu.Unlock()
	if n != 2 {
		t.Fatalf("cache holds %d issuers", n)
	}
}

func TestCacheMaxAge(t *testing.T) {
	tests := []struct {
		header []string
		want   time.Duration
		ok     bool
	}{
		{nil, 0, false},
		{[]string{"public"}, 0, false},
		{[]string{"max-age=300"}, 300 * time.Second, true},
		{[]string{"public, max-age=60, must-revalidate"}, time.Minute, true},
		{[]string{`max-age="120"`}, 2 * time.Minute, true},
		{[]string{"max-age=600", "max-age=100"}, 100 * time.Second, true},
		{[]string{"max-age=-5"}, 0, false},
		{[]string{"max-age=abc"}, 0, false},
		{[]string{"no-store"}, 0, true},
		{[]string{"max-age=99999999999999999999"}, 0, false},
		{[]string{"max-age=9999999999999"}, 1 << 62, true},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.header {
			h.Add("Cache-Control", v)
		}
		got, ok := cacheMaxAge(h)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q: got %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLocalOddKeys(t *testing.T) {
	clk := newClock()
	const ours = "https://login.tenantbridge.test/t/v2.0"
	for _, tt := range []struct {
		name string
		key  crypto.PublicKey
		alg  jose.SignatureAlgorithm
		priv crypto.Signer
	}{
		{"nil key", nil, jose.RS256, testRSAKeys()[0]},
		{"nil RSA pointer", (*rsa.PublicKey)(nil), jose.RS256, testRSAKeys()[0]},
		{"RSA without modulus", &rsa.PublicKey{E: 65537}, jose.RS256, testRSAKeys()[0]},
		{"EC without point", &ecdsa.PublicKey{Curve: elliptic.P256()}, jose.ES256, testECKeys()[0]},
		{"Ed25519", ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)), jose.ES256, testECKeys()[0]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(Config{Now: clk.Now, Local: func(string, string) (crypto.PublicKey, bool, bool) {
				return tt.key, true, true
			}})
			k := testKey{kid: "k", alg: tt.alg, priv: tt.priv}
			_, err := v.Verify(context.Background(), k.sign(t, claimsFor(ours, clk.Now()), nil))
			wantKind(t, err, ErrKeyNotFound)
		})
	}
}
