package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type jwksDoc struct {
	Keys []map[string]any `json:"keys"`
}

func parseJWKS(t *testing.T, b []byte) jwksDoc {
	t.Helper()
	var doc jwksDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("JWKS does not parse: %v\n%s", err, b)
	}
	return doc
}

func b64url(t *testing.T, v any) []byte {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%v is not a string", v)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q is not base64url without padding: %v", s, err)
	}
	return b
}

func TestKeySetJWKS(t *testing.T) {
	ks, err := LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cur := ks.Current()
	if cur.Key.N.BitLen() != 2048 {
		t.Errorf("signing key is %d bits", cur.Key.N.BitLen())
	}
	const issuer = "https://login.microsoftonline.com/{tenantid}/v2.0"
	doc := parseJWKS(t, ks.JWKS(issuer))
	if len(doc.Keys) != 1 {
		t.Fatalf("%d keys, want 1", len(doc.Keys))
	}
	k := doc.Keys[0]
	for field, want := range map[string]string{"kty": "RSA", "use": "sig", "kid": cur.KeyID, "x5t": cur.KeyID, "e": "AQAB", "issuer": issuer} {
		if k[field] != want {
			t.Errorf("%s = %v, want %q", field, k[field], want)
		}
	}

	// kid/x5t is the SHA-1 thumbprint of the certificate in x5c.
	x5c, ok := k["x5c"].([]any)
	if !ok || len(x5c) != 1 {
		t.Fatalf("x5c = %v", k["x5c"])
	}
	der, err := base64.StdEncoding.DecodeString(x5c[0].(string))
	if err != nil {
		t.Fatalf("x5c is not standard base64: %v", err)
	}
	sum := sha1.Sum(der)
	if got := base64.RawURLEncoding.EncodeToString(sum[:]); got != cur.KeyID || got != cur.X5T() {
		t.Errorf("kid %s, X5T %s, thumbprint of x5c %s", cur.KeyID, cur.X5T(), got)
	}
	sum256 := sha256.Sum256(der)
	if cur.X5TS256() != base64.RawURLEncoding.EncodeToString(sum256[:]) {
		t.Error("X5TS256 is not the SHA-256 thumbprint")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("x5c certificate is not self-signed: %v", err)
	}

	// n and e rebuild the public key, and it verifies what Current() signs.
	pub := &rsa.PublicKey{
		N: new(big.Int).SetBytes(b64url(t, k["n"])),
		E: int(new(big.Int).SetBytes(b64url(t, k["e"])).Int64()),
	}
	if !pub.Equal(&cur.Key.PublicKey) || !pub.Equal(cert.PublicKey) {
		t.Fatal("n/e do not match the signing key or the certificate")
	}
	digest := sha256.Sum256([]byte("header.payload"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, cur.Key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("signature by Current() does not verify with the JWKS key: %v", err)
	}
	other := sha256.Sum256([]byte("header.payload2"))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, other[:], sig); err == nil {
		t.Fatal("signature verifies for other data")
	}

	// Without an issuer the field is absent, not empty.
	doc = parseJWKS(t, ks.JWKS(""))
	if _, ok := doc.Keys[0]["issuer"]; ok {
		t.Error("issuer present with an empty argument")
	}
}

func TestKeySetSeveralKeys(t *testing.T) {
	dir := t.TempDir()
	ks, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := ks.Current()
	// An older key and a newer one, as rotation will leave them.
	older, err := newSigningKey(time.Now().Add(-48 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	newer, err := newSigningKey(time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []SigningKey{older, newer} {
		if err := ks.add(k); err != nil {
			t.Fatal(err)
		}
	}
	check := func(ks *KeySet) {
		t.Helper()
		pub := ks.Published()
		if len(pub) != 3 || pub[0].KeyID != newer.KeyID || pub[1].KeyID != first.KeyID || pub[2].KeyID != older.KeyID {
			t.Fatalf("Published order wrong: %v", pub)
		}
		// newer activates in an hour: published already, but the key that
		// signs is the newest that has activated.
		if ks.Current().KeyID != first.KeyID {
			t.Errorf("Current = %s, want the newest active key %s", ks.Current().KeyID, first.KeyID)
		}
		for _, k := range []SigningKey{first, older, newer} {
			got, ok := ks.Lookup(k.KeyID)
			if !ok || !got.Key.Equal(k.Key) {
				t.Errorf("Lookup(%s) = %v", k.KeyID, ok)
			}
		}
		if _, ok := ks.Lookup("nope"); ok {
			t.Error("Lookup of an unknown kid succeeded")
		}
		doc := parseJWKS(t, ks.JWKS("x"))
		if len(doc.Keys) != 3 || doc.Keys[0]["kid"] != newer.KeyID {
			t.Errorf("JWKS has %d keys, first %v", len(doc.Keys), doc.Keys[0]["kid"])
		}
	}
	check(ks)
	// Published returns a copy.
	ks.Published()[0] = SigningKey{}
	check(ks)
	// The same from disk.
	ks2, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	check(ks2)
	if _, err := os.Stat(filepath.Join(dir, "signing", newer.KeyID+".pem")); err != nil {
		t.Errorf("key file not named by kid: %v", err)
	}
}

func TestKeySetConcurrent(t *testing.T) {
	clock := newFakeClock(time.Now())
	ks, err := LoadOrCreateKeySetWithClock(t.TempDir(), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := newSigningKey(clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				k := ks.Current()
				if _, ok := ks.Lookup(k.KeyID); !ok {
					t.Error("Current key not found by Lookup")
					return
				}
				_ = ks.JWKS("")
			}
		})
	}
	if err := ks.add(extra); err != nil {
		t.Error(err)
	}
	wg.Wait()
	if ks.Current().KeyID == extra.KeyID {
		t.Error("added key is current before it activates")
	}
	clock.Advance(time.Hour)
	if ks.Current().KeyID != extra.KeyID {
		t.Error("added newer key is not current once it activates")
	}
}

func TestKeySetBadFiles(t *testing.T) {
	for name, content := range map[string]func(t *testing.T) []byte{
		"garbage": func(*testing.T) []byte { return []byte("not a key") },
		"key without certificate": func(t *testing.T) []byte {
			k, err := newSigningKey(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := marshalPrivateKey(k.Key)
			return b
		},
		"certificate of another key": func(t *testing.T) []byte {
			a, _ := newSigningKey(time.Now())
			b, _ := newSigningKey(time.Now())
			kp, _ := marshalPrivateKey(a.Key)
			return append(kp, certPEM(b.Cert.Raw)...)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreateKeySet(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "signing", "bad.pem"), content(t), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreateKeySet(dir); err == nil || !strings.Contains(err.Error(), "bad.pem") {
				t.Fatalf("err = %v, want an error naming bad.pem", err)
			}
		})
	}
	t.Run("other files ignored", func(t *testing.T) {
		dir := t.TempDir()
		ks, err := LoadOrCreateKeySet(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"README", ".x.pem.tmp-123", ".hidden.pem"} {
			os.WriteFile(filepath.Join(dir, "signing", n), []byte("x"), 0o600)
		}
		ks2, err := LoadOrCreateKeySet(dir)
		if err != nil || ks2.Current().KeyID != ks.Current().KeyID {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSecrets(t *testing.T) {
	t.Run("created and reused", func(t *testing.T) {
		t.Setenv("TENANTBRIDGE_KEK", "")
		os.Unsetenv("TENANTBRIDGE_KEK")
		dir := t.TempDir()
		s1, err := LoadOrCreateSecrets(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(s1.HashKey) != 32 || len(s1.KEK) != 32 || bytes.Equal(s1.HashKey, s1.KEK) {
			t.Fatalf("keys: %d, %d bytes, equal=%v", len(s1.HashKey), len(s1.KEK), bytes.Equal(s1.HashKey, s1.KEK))
		}
		onDisk, err := os.ReadFile(filepath.Join(dir, "keys", "kek.key"))
		if err != nil || !bytes.Equal(onDisk, s1.KEK) {
			t.Errorf("kek.key does not hold the KEK: %v", err)
		}
		s2, err := LoadOrCreateSecrets(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s1.HashKey, s2.HashKey) || !bytes.Equal(s1.KEK, s2.KEK) {
			t.Error("secrets not reused")
		}
	})

	t.Run("env KEK", func(t *testing.T) {
		dir := t.TempDir()
		kek := bytes.Repeat([]byte{0x42}, 32)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
			t.Setenv("TENANTBRIDGE_KEK", " "+enc.EncodeToString(kek)+"\n")
			s, err := LoadOrCreateSecrets(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s.KEK, kek) {
				t.Error("env KEK not used")
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "keys", "kek.key")); err == nil {
			t.Error("kek.key written although the KEK comes from the environment")
		}
	})

	t.Run("env KEK malformed", func(t *testing.T) {
		secret := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x42}, 16))
		for _, v := range []string{"", "!!!not base64!!!", secret, base64.StdEncoding.EncodeToString(make([]byte, 33))} {
			t.Setenv("TENANTBRIDGE_KEK", v)
			_, err := LoadOrCreateSecrets(t.TempDir())
			if err == nil {
				t.Errorf("TENANTBRIDGE_KEK=%q accepted", v)
				continue
			}
			if !strings.Contains(err.Error(), "TENANTBRIDGE_KEK") || (v != "" && strings.Contains(err.Error(), v)) {
				t.Errorf("error %q should name the variable and not echo its value", err)
			}
		}
	})

	t.Run("env KEK differs from file", func(t *testing.T) {
		dir := t.TempDir()
		os.Unsetenv("TENANTBRIDGE_KEK")
		if _, err := LoadOrCreateSecrets(dir); err != nil {
			t.Fatal(err)
		}
		t.Setenv("TENANTBRIDGE_KEK", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)))
		if _, err := LoadOrCreateSecrets(dir); err == nil || !strings.Contains(err.Error(), "differs") {
			t.Fatalf("err = %v", err)
		}
		// The same key from both places is fine.
		file, _ := os.ReadFile(filepath.Join(dir, "keys", "kek.key"))
		t.Setenv("TENANTBRIDGE_KEK", base64.StdEncoding.EncodeToString(file))
		if _, err := LoadOrCreateSecrets(dir); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("truncated key file is not replaced", func(t *testing.T) {
		t.Setenv("TENANTBRIDGE_KEK", "")
		os.Unsetenv("TENANTBRIDGE_KEK")
		dir := t.TempDir()
		if _, err := LoadOrCreateSecrets(dir); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "keys", "kek.key")
		if err := os.WriteFile(p, []byte("short"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateSecrets(dir); err == nil {
			t.Fatal("short kek.key accepted")
		}
		if b, _ := os.ReadFile(p); string(b) != "short" {
			t.Error("bad kek.key was overwritten")
		}
	})
}
