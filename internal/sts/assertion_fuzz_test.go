package sts

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// FuzzParseClientAssertion: the parser of untrusted assertions never
// panics, and what it accepts has the shape the verifiers rely on.
func FuzzParseClientAssertion(f *testing.F) {
	for _, seed := range []string{
		"", "a.b.c", "..", "eyJ.eyJ.sig",
		// {"alg":"PS256","typ":"JWT","x5t#S256":"…"} . {"aud":…,"exp":…,"iss":"c","jti":"j","nbf":1,"sub":"c"} . sig
		"eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCIsIng1dCNTMjU2IjoiQUFBQSJ9.eyJhdWQiOiJodHRwczovL2gvdC9vYXV0aDIvdjIuMC90b2tlbiIsImV4cCI6MTcwMDAwMDAwMCwiaXNzIjoiYyIsImp0aSI6ImoiLCJuYmYiOjEsInN1YiI6ImMifQ.AAAA",
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJjIiwic3ViIjoiYyIsImF1ZCI6ImEiLCJleHAiOjF9.",
		"eyJhbGciOiJIUzI1NiIsImNyaXQiOlsiYjY0Il19.eyJpc3MiOiJjIn0.AA",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := parseClientAssertion(raw)
		if err != nil {
			return
		}
		if a.alg == "" || a.issuer == "" || a.subject == "" || len(a.audiences) == 0 || len(a.signature) == 0 || a.expires.IsZero() {
			t.Fatalf("accepted an assertion missing a required part: %+v", a)
		}
		if strings.Count(a.raw, ".") != 2 || len(a.raw) > maxAssertionBytes || !strings.HasPrefix(a.raw, string(a.signingInput)+".") {
			t.Fatalf("accepted %q with signing input %q", a.raw, a.signingInput)
		}
	})
}

// fuzzCert is a certificate and key for FuzzVerifyCertificateAssertion.
type fuzzCert struct {
	der []byte
	key *rsa.PrivateKey
}

func newFuzzCert(t testing.TB) fuzzCert {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return fuzzCert{der: der, key: key}
}

// FuzzVerifyCertificateAssertion builds assertions from fuzzed parts: the
// header's alg, which certificate the header names (and how), extra header
// members (a kid, say), the claims, and how the assertion is signed. Only
// an assertion signed by the registered certificate's key, with the alg
// the signature really uses (PS256 or RS256), naming that certificate by
// x5t#S256, x5t or x5c, may pass. In particular never alg none, never an
// HMAC keyed with public material, never a thumbprint or kid that names
// one key over a signature of another.
func FuzzVerifyCertificateAssertion(f *testing.F) {
	registered, stranger := newFuzzCert(f), newFuzzCert(f)
	kc, err := directory.NewKeyCredential(registered.der, "", time.Time{}, time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	creds := []directory.KeyCredential{kc}
	claims := `{"aud":"https://h/t/oauth2/v2.0/token","iss":"c","sub":"c","jti":"j","nbf":1,"exp":253402300799}`
	for _, s := range []struct {
		alg            string
		extra          string
		naming, signer uint8
	}{
		{"PS256", `{}`, 0, 1}, {"RS256", `{}`, 1, 0}, {"RS256", `{}`, 2, 0}, {"PS256", `{"kid":"x"}`, 0, 1},
		{"none", `{}`, 0, 5}, {"HS256", `{}`, 0, 3}, {"HS256", `{}`, 1, 4}, {"PS256", `{}`, 3, 2},
		{"PS256", `{}`, 4, 1}, {"RS256", `{}`, 6, 0}, {"PS256", `{"x5t#S256":"A"}`, 0, 0}, {"RS256", `{}`, 0, 1},
	} {
		f.Add(s.alg, []byte(s.extra), []byte(claims), s.naming, s.signer)
	}
	f.Fuzz(func(t *testing.T, alg string, extra, payload []byte, naming, signer uint8) {
		header := map[string]any{}
		var members map[string]json.RawMessage
		if json.Unmarshal(extra, &members) == nil {
			for k, v := range members {
				header[k] = v
			}
		}
		for _, k := range []string{"alg", "x5t", "x5t#S256", "x5c"} {
			delete(header, k)
		}
		header["alg"] = alg
		s1, s256 := sha1.Sum(registered.der), sha256.Sum256(registered.der)
		o256 := sha256.Sum256(stranger.der)
		naming %= 7
		switch naming {
		case 0:
			header["x5t#S256"] = base64.StdEncoding.EncodeToString(s256[:])
		case 1:
			header["x5t"] = base64.RawURLEncoding.EncodeToString(s1[:])
		case 2:
			header["x5c"] = []string{base64.StdEncoding.EncodeToString(registered.der)}
		case 3:
			header["x5t#S256"] = base64.StdEncoding.EncodeToString(o256[:])
		case 4:
			header["x5c"] = []string{base64.StdEncoding.EncodeToString(stranger.der)}
			header["x5t#S256"] = base64.StdEncoding.EncodeToString(s256[:])
		case 5:
		case 6:
			header["kid"] = base64.RawURLEncoding.EncodeToString(s1[:])
		}
		hb, err := json.Marshal(header)
		if err != nil {
			return
		}
		input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(payload)
		digest := sha256.Sum256([]byte(input))
		var sig []byte
		signer %= 7
		switch signer {
		case 0:
			sig, _ = rsa.SignPKCS1v15(rand.Reader, registered.key, crypto.SHA256, digest[:])
		case 1:
			sig, _ = rsa.SignPSS(rand.Reader, registered.key, crypto.SHA256, digest[:], nil)
		case 2:
			sig, _ = rsa.SignPSS(rand.Reader, stranger.key, crypto.SHA256, digest[:], nil)
		case 3, 4:
			secret := registered.der
			if signer == 4 {
				secret = registered.key.N.Bytes()
			}
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(input))
			sig = m.Sum(nil)
		case 5:
		case 6:
			sig = payload
		}
		a, err := parseClientAssertion(input + "." + base64.RawURLEncoding.EncodeToString(sig))
		if err != nil {
			return
		}
		got, e := verifyCertificateAssertion(a, "c", creds, time.Now())
		if e != nil {
			if e.Code != codeAssertionSignature && e.Code != codeMalformedJWT {
				t.Fatalf("refused with AADSTS%d: %v", e.Code, e)
			}
			return
		}
		realAlg := map[uint8]string{0: "RS256", 1: "PS256"}[signer]
		if got.KeyID != kc.KeyID || a.alg != realAlg || naming > 2 {
			t.Fatalf("accepted alg %q (signed as %q), naming %d, signer %d", a.alg, realAlg, naming, signer)
		}
	})
}

// FuzzMatchFederatedCredential: a match is exact in issuer and subject,
// and in audience up to the token exchange audience's two names.
func FuzzMatchFederatedCredential(f *testing.F) {
	f.Add("https://i", "s", "api://AzureADTokenExchange", "https://i", "s", directory.TokenExchangeAppID)
	f.Add("https://i", "S", "a", "https://i", "s", "a")
	f.Add("https://i/", "s", "a", "https://i", "s", "a")
	f.Fuzz(func(t *testing.T, ficIss, ficSub, ficAud, iss, sub, aud string) {
		fics := []directory.FederatedIdentityCredential{{ID: "1", Name: "n", Issuer: ficIss, Subject: ficSub, Audiences: []string{ficAud}}}
		got, e := matchFederatedCredential(fics, iss, sub, []string{aud})
		if e != nil {
			return
		}
		sameAud := aud == ficAud || (aud == directory.TokenExchangeAppID && ficAud == directory.TokenExchangeAudience) ||
			(strings.EqualFold(aud, directory.TokenExchangeAudience) && ficAud == directory.TokenExchangeAppID) ||
			(strings.EqualFold(aud, directory.TokenExchangeAppID) && ficAud == directory.TokenExchangeAudience)
		if got.ID != "1" || iss != ficIss || sub != ficSub || !sameAud {
			t.Fatalf("matched %q %q %q against %q %q %q", iss, sub, aud, ficIss, ficSub, ficAud)
		}
	})
}
