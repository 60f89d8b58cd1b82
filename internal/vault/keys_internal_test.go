package vault

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
)

// FuzzImportJWK: the import body parser never panics, and a key it accepts
// renders with public members only.
func FuzzImportJWK(f *testing.F) {
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d, _ := ek.Bytes()
	pub, _ := ek.PublicKey.Bytes()
	good, _ := json.Marshal(importKeyParams{Key: &jwk{Kty: "EC", Crv: "P-256", D: b64(d), X: b64(pub[1:33]), Y: b64(pub[33:])}})
	f.Add(string(good))
	f.Add(`{"key":{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB","p":"Aw","q":"BQ","dp":"AQ","dq":"AQ","qi":"AQ"}}`)
	f.Add(`{"key":{"kty":"RSA-HSM","n":"AQAB"},"Hsm":true,"attributes":{"exportable":true}}`)
	f.Add(`{"key":{"kty":"EC","crv":"P-521","d":"","x":"","y":""},"tags":{"a":null},"release_policy":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		var p importKeyParams
		if httpx.DecodeJSON([]byte(body), &p) != nil {
			return
		}
		priv, k, err := parseImport(p)
		if err != nil {
			return
		}
		pj, err := publicJWK(priv)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(pj)
		if pj.D != "" || pj.P != "" || pj.Q != "" || strings.Contains(string(out), `"d"`) || k.KeyType != pj.Kty {
			t.Fatalf("public JWK %s of %s", out, k.KeyType)
		}
	})
}

// FuzzKeyPath: the path parser never panics and names valid keys only.
func FuzzKeyPath(f *testing.F) {
	for _, p := range []string{"/keys", "/keys/", "/keys/a/create", "/keys/a//sign", "/keys/a/0123456789abcdef0123456789abcdef/wrapkey",
		"/deletedkeys/a/recover", "/keys/restore", "/keys/a/b/c/d/e"} {
		f.Add("POST", p)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		r := parseKeyPath(method, path)
		if r.op != opNone && !r.badName && !r.badMethod && r.name != "" && !secretName.MatchString(r.name) {
			t.Fatalf("%s %s: invalid name %q accepted", method, path, r.name)
		}
	})
}

// The parser's routes, the latest version spelt three ways included.
func TestParseKeyPath(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		op           op
		name, ver    string
	}{
		{"GET", "/keys", opList, "", ""},
		{"GET", "/keys/k/", opGet, "k", ""},
		{"GET", "/keys/k/abc", opGet, "k", "abc"},
		{"PATCH", "/keys/k/", opUpdate, "k", ""},
		{"POST", "/keys/k/sign", opSign, "k", ""},
		{"POST", "/keys/k//sign", opSign, "k", ""},
		{"POST", "/keys/k/v1/UNWRAPKEY", opUnwrap, "k", "v1"},
		{"POST", "/keys/k/create", opCreate, "k", ""},
		{"PUT", "/keys/k", opImport, "k", ""},
		{"POST", "/keys/restore", opRestore, "", ""},
		{"DELETE", "/deletedkeys/k", opPurge, "k", ""},
		{"POST", "/deletedkeys/k/recover", opRecover, "k", ""},
	} {
		r := parseKeyPath(tc.method, tc.path)
		if r.op != tc.op || r.name != tc.name || r.version != tc.ver || r.badName || r.badMethod {
			t.Errorf("%s %s = %+v", tc.method, tc.path, r)
		}
	}
	if r := parseKeyPath("GET", "/keys/k/sign"); r.op != opGet || r.version != "sign" {
		t.Errorf("GET /keys/k/sign = %+v (a version named sign, not found later)", r)
	}
	if r := parseKeyPath("POST", "/keys/bad_name/create"); !r.badName {
		t.Errorf("bad name accepted: %+v", r)
	}
}
