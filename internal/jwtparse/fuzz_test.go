package jwtparse

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that no input panics Parse, that every refusal is an
// *Error of one of the kinds, and that whatever parses has exactly one
// spelling: the decoded header and payload re-encode to the signing input,
// and with the decoded signature to the token. An alg filter changes only
// which tokens are refused, with ErrAlgorithm.
func FuzzParse(f *testing.F) {
	sig := []byte("sig")
	for _, seed := range []string{
		compact(goodHeader, goodClaims, sig),
		compact(goodHeader, goodClaims, sig) + "\n",
		compact(`{"alg":"PS256","x5t#S256":"AAAA","x5c":["AAAA"]}`, `{"iss":"c","sub":"c","aud":["a","b"],"exp":1.5,"idtyp":"app"}`, sig),
		compact(`{"alg":"none"}`, goodClaims, nil),
		compact(`{"alg":"HS256","kid":"k"}`, goodClaims, sig),
		compact(`{"alg":"RS256","crit":["b64"],"b64":false}`, goodClaims, sig),
		compact(`{"alg":"RS256","ALG":"none"}`, `{"iss":"i","ISS":"j","sub":"s","aud":"a","exp":1}`, sig),
		compact(`{"alg":"RS256"}`, `{"iss":"i","sub":"s","aud":"a","exp":253402300799.999}`, sig),
		compact(`{"alg":"RS256"}`, `{"iss":"i","sub":"s","aud":"a","exp":"1"}`, sig),
		compact(`{"alg":"RS256"}`, `{"iss":"i\u0000","sub":"s","aud":[""],"exp":1e3}`, sig),
		"", "..", "a.b.c", "e30.e30.AA", "e30=.e30.AA", "eyJ.eyJ.sig",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := Parse(raw, Options{MaxAudiences: 16})
		rsOnly, errRS := Parse(raw, Options{MaxAudiences: 16, Algorithm: func(alg string) bool { return alg == "RS256" }})
		switch {
		case err == nil && errRS == nil:
			if !reflect.DeepEqual(tok, rsOnly) {
				t.Fatalf("an alg filter changed the token: %+v vs %+v", tok, rsOnly)
			}
		case err == nil:
			if !errors.Is(errRS, ErrAlgorithm) || tok.Alg == "RS256" {
				t.Fatalf("alg %q refused with %v", tok.Alg, errRS)
			}
		case errRS == nil:
			t.Fatalf("parsed only with an alg filter: %v", err)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrMalformed) || errors.Is(err, ErrAlgorithm) {
				t.Fatalf("error %T: %v", err, err)
			}
			if e.Part < PartForm || e.Part > PartSignature || e.Detail == "" {
				t.Fatalf("error %+v", e)
			}
			return
		}

		input := enc(tok.headerJSON) + "." + enc(tok.payloadJSON)
		if string(tok.SigningInput) != input {
			t.Fatalf("signing input %q re-encodes as %q", tok.SigningInput, input)
		}
		if tok.Raw != input+"."+enc(tok.Signature) || tok.Raw != strings.TrimSpace(raw) || len(tok.Raw) > DefaultMaxBytes {
			t.Fatalf("token %q re-encodes as %q.%q", tok.Raw, input, enc(tok.Signature))
		}
		if len(tok.Signature) == 0 || tok.Alg == "" {
			t.Fatalf("parsed without alg or signature: %+v", tok)
		}
		h, _ := Object(tok.headerJSON)
		p, _ := Object(tok.payloadJSON)
		if !reflect.DeepEqual(h, tok.Header) || !reflect.DeepEqual(p, tok.Payload) {
			t.Fatalf("members differ from the JSON: %v %v", tok.Header, tok.Payload)
		}
		if _, crit := tok.Header["crit"]; crit {
			t.Fatal("parsed a crit header")
		}
		c := tok.Claims
		if c.Issuer == "" || c.Subject == "" || len(c.Audiences) == 0 || len(c.Audiences) > 16 || c.Expires.IsZero() {
			t.Fatalf("parsed without a required claim: %+v", c)
		}
		for _, aud := range c.Audiences {
			if aud == "" {
				t.Fatal("parsed an empty aud")
			}
		}
		for _, d := range []struct {
			name string
			t    time.Time
		}{{"exp", c.Expires}, {"nbf", c.NotBefore}, {"iat", c.IssuedAt}} {
			if tm, ok, _ := tok.Payload.NumericDate(d.name); !tm.Equal(d.t) || ok && (tm.Year() > 9999 || tm.Unix() < 0) {
				t.Fatalf("%s %v", d.name, d.t)
			}
		}
	})
}
