package jwtparse

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var enc = base64.RawURLEncoding.EncodeToString

// compact joins a header, a payload and a signature as a compact JWS.
func compact(header, payload string, sig []byte) string {
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc(sig)
}

const (
	goodHeader = `{"alg":"RS256","kid":"k1","typ":"JWT"}`
	goodClaims = `{"iss":"https://issuer.test","sub":"s","aud":"a","exp":1700000000,"nbf":1699990000.5,"iat":1699990000,"jti":"j","extra":true}`
)

func TestParse(t *testing.T) {
	raw := compact(goodHeader, goodClaims, []byte("sig"))
	tok, err := Parse(" \n"+raw+"\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{
		Issuer: "https://issuer.test", Subject: "s", Audiences: []string{"a"},
		Expires:   time.Unix(1700000000, 0).UTC(),
		NotBefore: time.Unix(1699990000, 5e8).UTC(),
		IssuedAt:  time.Unix(1699990000, 0).UTC(),
		ID:        "j",
	}
	if !reflect.DeepEqual(tok.Claims, want) {
		t.Errorf("claims %+v, want %+v", tok.Claims, want)
	}
	if tok.Raw != raw || tok.Alg != "RS256" || tok.KeyID != "k1" || string(tok.Signature) != "sig" {
		t.Errorf("token %+v", tok)
	}
	if string(tok.SigningInput) != raw[:strings.LastIndex(raw, ".")] {
		t.Errorf("signing input %q", tok.SigningInput)
	}
	if string(tok.Header["typ"]) != `"JWT"` || string(tok.Payload["extra"]) != "true" {
		t.Errorf("members %v %v", tok.Header, tok.Payload)
	}

	// Optional members absent or null; aud an array.
	tok, err = Parse(compact(`{"alg":"ES256","kid":null}`, `{"iss":"i","sub":"s","aud":["a","b"],"exp":1,"nbf":null,"jti":null}`, []byte{0}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.KeyID != "" || !tok.Claims.NotBefore.IsZero() || !tok.Claims.IssuedAt.IsZero() || tok.Claims.ID != "" || len(tok.Claims.Audiences) != 2 {
		t.Errorf("token %+v", tok)
	}
}

func TestParseErrors(t *testing.T) {
	sig := []byte("sig")
	good := compact(goodHeader, goodClaims, sig)
	parts := strings.Split(good, ".")
	withHeader := func(h string) string { return compact(h, goodClaims, sig) }
	withClaims := func(c string) string { return compact(goodHeader, c, sig) }
	only := func(alg string) bool { return alg == "RS256" }

	tests := []struct {
		name   string
		raw    string
		opts   Options
		kind   error
		part   Part
		detail string
	}{
		{"empty", " \t\n", Options{}, ErrMalformed, PartForm, "empty"},
		{"too long", good, Options{MaxBytes: len(good) - 1}, ErrMalformed, PartForm, "longer than"},
		{"default limit", good + strings.Repeat("A", DefaultMaxBytes), Options{}, ErrMalformed, PartForm, "longer than 16384 bytes"},
		{"newline inside", parts[0] + ".\n" + parts[1] + "." + parts[2], Options{}, ErrMalformed, PartForm, "unexpected character at offset"},
		{"padding", good + "=", Options{}, ErrMalformed, PartForm, "unexpected character"},
		{"std base64", strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+", Options{}, ErrMalformed, PartForm, "unexpected character"},
		{"two segments", parts[0] + "." + parts[1], Options{}, ErrMalformed, PartForm, "2 segments, want 3"},
		{"JWE shape", good + ".a.b", Options{}, ErrMalformed, PartForm, "5 segments, want 3"},
		{"header not base64url", "e." + parts[1] + "." + parts[2], Options{}, ErrMalformed, PartHeader, "header is not base64url"},
		{"header trailing bits", "e31." + parts[1] + "." + parts[2], Options{}, ErrMalformed, PartHeader, "header is not base64url"},
		{"header not JSON", "e30x." + parts[1] + "." + parts[2], Options{}, ErrMalformed, PartHeader, "header is not a JSON object"},
		{"header null", withHeader("null"), Options{}, ErrMalformed, PartHeader, "header is not a JSON object"},
		{"header array", withHeader(`[]`), Options{}, ErrMalformed, PartHeader, "header is not a JSON object"},
		{"alg missing", withHeader(`{"kid":"k"}`), Options{}, ErrMalformed, PartHeader, "header alg is missing or not a string"},
		{"alg empty", withHeader(`{"alg":""}`), Options{}, ErrMalformed, PartHeader, "header alg is missing"},
		{"alg number", withHeader(`{"alg":256}`), Options{}, ErrMalformed, PartHeader, "header alg is missing"},
		{"alg in other case", withHeader(`{"ALG":"RS256"}`), Options{}, ErrMalformed, PartHeader, "header alg is missing"},
		{"alg refused", withHeader(`{"alg":"none"}`), Options{Algorithm: only}, ErrAlgorithm, PartHeader, `alg "none"`},
		{"alg refused before kid", withHeader(`{"alg":"HS256","kid":1,"crit":[]}`), Options{Algorithm: only}, ErrAlgorithm, PartHeader, `alg "HS256"`},
		{"kid number", withHeader(`{"alg":"RS256","kid":1}`), Options{}, ErrMalformed, PartHeader, "header kid is not a string"},
		{"crit", withHeader(`{"alg":"RS256","crit":["b64"],"b64":false}`), Options{}, ErrMalformed, PartHeader, "header has crit extensions"},
		{"crit null", withHeader(`{"alg":"RS256","crit":null}`), Options{}, ErrMalformed, PartHeader, "header has crit extensions"},
		{"payload not base64url", parts[0] + ".e." + parts[2], Options{}, ErrMalformed, PartPayload, "payload is not base64url"},
		{"payload not JSON", withClaims(`{`), Options{}, ErrMalformed, PartClaims, "payload is not a JSON object"},
		{"payload string", withClaims(`"iss"`), Options{}, ErrMalformed, PartClaims, "payload is not a JSON object"},
		{"iss missing", withClaims(`{"sub":"s","aud":"a","exp":1}`), Options{}, ErrMalformed, PartClaims, "iss is missing or not a string"},
		{"iss in other case", withClaims(`{"ISS":"i","sub":"s","aud":"a","exp":1}`), Options{}, ErrMalformed, PartClaims, "iss is missing"},
		{"iss empty", withClaims(`{"iss":"","sub":"s","aud":"a","exp":1}`), Options{}, ErrMalformed, PartClaims, "iss is missing"},
		{"sub number", withClaims(`{"iss":"i","sub":1,"aud":"a","exp":1}`), Options{}, ErrMalformed, PartClaims, "sub is missing or not a string"},
		{"aud missing", withClaims(`{"iss":"i","sub":"s","exp":1}`), Options{}, ErrMalformed, PartClaims, "aud is missing or not a string or array of strings"},
		{"aud null", withClaims(`{"iss":"i","sub":"s","aud":null,"exp":1}`), Options{}, ErrMalformed, PartClaims, "aud is missing"},
		{"aud empty array", withClaims(`{"iss":"i","sub":"s","aud":[],"exp":1}`), Options{}, ErrMalformed, PartClaims, "aud is missing"},
		{"aud number in array", withClaims(`{"iss":"i","sub":"s","aud":["a",1],"exp":1}`), Options{}, ErrMalformed, PartClaims, "aud is missing"},
		{"aud empty string", withClaims(`{"iss":"i","sub":"s","aud":"","exp":1}`), Options{}, ErrMalformed, PartClaims, "aud has an empty value"},
		{"aud too many", withClaims(`{"iss":"i","sub":"s","aud":["a","b","c"],"exp":1}`), Options{MaxAudiences: 2}, ErrMalformed, PartClaims, "aud is missing"},
		{"exp missing", withClaims(`{"iss":"i","sub":"s","aud":"a"}`), Options{}, ErrMalformed, PartClaims, "exp is missing or not a number"},
		{"exp string", withClaims(`{"iss":"i","sub":"s","aud":"a","exp":"1"}`), Options{}, ErrMalformed, PartClaims, "exp is missing or not a number"},
		{"exp negative", withClaims(`{"iss":"i","sub":"s","aud":"a","exp":-1}`), Options{}, ErrMalformed, PartClaims, "exp is missing or not a number"},
		{"exp after 9999", withClaims(`{"iss":"i","sub":"s","aud":"a","exp":253402300800}`), Options{}, ErrMalformed, PartClaims, "exp is missing"},
		{"exp huge", withClaims(`{"iss":"i","sub":"s","aud":"a","exp":1e400}`), Options{}, ErrMalformed, PartClaims, "exp is missing"},
		{"nbf bool", withClaims(`{"iss":"i","sub":"s","aud":"a","exp":1,"nbf":true}`), Options{}, ErrMalformed, PartClaims, "nbf is not a number"},
		{"iat string", withClaims(`{"iss":"i","sub":"s","aud":"a","exp":1,"iat":"1"}`), Options{}, ErrMalformed, PartClaims, "iat is not a number"},
		{"jti number", withClaims(`{"iss":"i","sub":"s","aud":"a","exp":1,"jti":1}`), Options{}, ErrMalformed, PartClaims, "jti is not a string"},
		{"signature empty", parts[0] + "." + parts[1] + ".", Options{}, ErrMalformed, PartSignature, "signature is missing or not base64url"},
		{"signature trailing bits", parts[0] + "." + parts[1] + ".AB", Options{}, ErrMalformed, PartSignature, "signature is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Parse(tt.raw, tt.opts)
			if tok != nil {
				t.Fatalf("parsed: %+v", tok)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T: %v", err, err)
			}
			if !errors.Is(err, tt.kind) || e.Part != tt.part || !strings.Contains(e.Detail, tt.detail) {
				t.Errorf("got %v (part %d), want %v in part %d with %q", err, e.Part, tt.kind, tt.part, tt.detail)
			}
			if !strings.HasPrefix(err.Error(), tt.kind.Error()+": ") {
				t.Errorf("error text %q", err)
			}
		})
	}
}

// TestErrorNames: the issuer and kid an error carries are those read
// before the failure.
func TestErrorNames(t *testing.T) {
	tests := []struct {
		raw         string
		kid, issuer string
	}{
		{compact(`{"alg":"RS256","kid":"k","crit":[]}`, goodClaims, []byte("s")), "k", ""},
		{compact(`{"alg":"RS256","kid":"k"}`, `{"iss":"i","sub":""}`, []byte("s")), "k", "i"},
		{compact(`{"alg":"RS256","kid":"k"}`, `{"iss":"","sub":"s"}`, []byte("s")), "k", ""},
		{compact(`{"alg":"RS256"}`, goodClaims, nil), "", "https://issuer.test"},
	}
	for _, tt := range tests {
		var e *Error
		if _, err := Parse(tt.raw, Options{}); !errors.As(err, &e) || e.KeyID != tt.kid || e.Issuer != tt.issuer {
			t.Errorf("%v: kid %q issuer %q, want %q %q", err, e.KeyID, e.Issuer, tt.kid, tt.issuer)
		}
	}
	// A refused alg is quoted, clipped.
	long := strings.Repeat("x", 1000)
	_, err := Parse(compact(`{"alg":"`+long+`"}`, goodClaims, []byte("s")), Options{Algorithm: func(string) bool { return false }})
	if !errors.Is(err, ErrAlgorithm) || len(err.Error()) > 2*maxQuoted {
		t.Errorf("error %q", err)
	}
}

func TestMembers(t *testing.T) {
	if _, err := Object([]byte(`null`)); err == nil {
		t.Error("null is an object")
	}
	if _, err := Object([]byte(`{"a":1} x`)); err == nil {
		t.Error("trailing data accepted")
	}
	m, err := Object([]byte(`{"s":"v","n":null,"i":1,"Aud":"x","d":1.25,"neg":-0.5,"nan":"NaN","arr":["a"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok, err := m.StringMember("s"); s != "v" || !ok || err != nil {
		t.Errorf("s: %q %v %v", s, ok, err)
	}
	for _, name := range []string{"n", "absent", "S"} {
		if s, ok, err := m.StringMember(name); s != "" || ok || err != nil {
			t.Errorf("%s: %q %v %v", name, s, ok, err)
		}
	}
	if _, _, err := m.StringMember("i"); err == nil || err.Error() != "i is not a string" {
		t.Errorf("i: %v", err)
	}
	if got, err := m.Audiences("arr", 1); err != nil || !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("arr: %v %v", got, err)
	}
	if _, err := m.Audiences("aud", 0); err == nil {
		t.Error("aud matched Aud")
	}
	if d, ok, err := m.NumericDate("d"); !ok || err != nil || !d.Equal(time.Unix(1, 25e7)) || d.Location() != time.UTC {
		t.Errorf("d: %v %v %v", d, ok, err)
	}
	if _, _, err := m.NumericDate("neg"); err == nil || err.Error() != "neg is out of range" {
		t.Errorf("neg: %v", err)
	}
	if _, _, err := m.NumericDate("nan"); err == nil || err.Error() != "nan is not a number" {
		t.Errorf("nan: %v", err)
	}
	if d, ok, err := m.NumericDate("n"); !d.IsZero() || ok || err != nil {
		t.Errorf("n: %v %v %v", d, ok, err)
	}
	last, ok, err := Members{"t": json.RawMessage("253402300799")}.NumericDate("t")
	if !ok || err != nil || last.Year() != 9999 {
		t.Errorf("end of 9999: %v %v %v", last, ok, err)
	}
}

func TestVerifyRSA(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	input := []byte("header.payload")
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"} {
		h, digest, err := Digest(alg, input)
		if err != nil {
			t.Fatal(err)
		}
		var sigs [][]byte
		if alg[:2] == "RS" {
			sig, err := rsa.SignPKCS1v15(rand.Reader, key, h, digest)
			if err != nil {
				t.Fatal(err)
			}
			sigs = append(sigs, sig)
		} else {
			// The salt as long as the hash (RFC 7518, MSAL) or the longest.
			for _, salt := range []int{rsa.PSSSaltLengthEqualsHash, rsa.PSSSaltLengthAuto} {
				sig, err := rsa.SignPSS(rand.Reader, key, h, digest, &rsa.PSSOptions{SaltLength: salt})
				if err != nil {
					t.Fatal(err)
				}
				sigs = append(sigs, sig)
			}
		}
		for _, sig := range sigs {
			if err := VerifyRSA(alg, &key.PublicKey, input, sig); err != nil {
				t.Errorf("%s: %v", alg, err)
			}
			if err := VerifyRSA(alg, &key.PublicKey, []byte("header.payloaD"), sig); err == nil {
				t.Errorf("%s: verified over other input", alg)
			}
			// The same key and hash, the other padding.
			other := map[byte]string{'R': "PS", 'P': "RS"}[alg[0]] + alg[2:]
			if err := VerifyRSA(other, &key.PublicKey, input, sig); err == nil {
				t.Errorf("%s signature verified as %s", alg, other)
			}
		}
	}
	for _, alg := range []string{"ES256", "HS256", "none", "", "RS1"} {
		if err := VerifyRSA(alg, &key.PublicKey, input, []byte("sig")); err == nil {
			t.Errorf("alg %q verified", alg)
		}
	}
	if err := VerifyRSA("RS256", nil, input, []byte("sig")); err == nil {
		t.Error("nil key verified")
	}
	if h, d, err := Digest("ES512", input); err != nil || h != crypto.SHA512 || len(d) != 64 {
		t.Errorf("ES512: %v %d %v", h, len(d), err)
	}
}
