package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	signingDir      = "signing"
	signingKeyBits  = 2048
	signingValidity = 5 * 365 * 24 * time.Hour // as Entra's token-signing certificates
)

// SigningKey is one token-signing key: RSA 2048 (RS256 is what every Entra
// client expects), with a self-signed certificate so that JWKS can publish
// x5c as Entra does. KeyID is the base64url (no padding) SHA-1 thumbprint of
// the certificate DER, which Entra uses as both kid and x5t.
type SigningKey struct {
	KeyID   string
	Key     *rsa.PrivateKey
	Cert    *x509.Certificate
	Created time.Time
}

// X5T returns the base64url SHA-1 thumbprint of the certificate, the JWS
// "x5t" header; it equals KeyID.
func (k SigningKey) X5T() string {
	sum := sha1.Sum(k.Cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// X5TS256 returns the base64url SHA-256 thumbprint of the certificate, the
// JWS "x5t#S256" header.
func (k SigningKey) X5TS256() string {
	sum := sha256.Sum256(k.Cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// KeySet holds the token-signing keys. It is safe for concurrent use, because
// the token service reads it on every request while rotation will change it.
// Keys live under DIR/signing/, one PEM file (0600) each holding the PKCS#8
// private key and the certificate, so rotation is adding a file: the newest
// key is Current() and signs; all are Published() so tokens signed by an older
// key still verify until it is retired.
type KeySet struct {
	dir  string
	mu   sync.RWMutex
	keys []SigningKey // newest first
}

// LoadOrCreateKeySet loads DIR/signing/*.pem, creating one key if there are
// none. The directory is 0700. A file that cannot be parsed is an error, not
// skipped: a signing key that silently disappears breaks token validation.
func LoadOrCreateKeySet(dir string) (*KeySet, error) {
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	ks := &KeySet{dir: filepath.Join(dir, signingDir)}
	if err := ensurePrivateDir(ks.dir); err != nil {
		return nil, err
	}
	keys, err := loadSigningKeys(ks.dir)
	if err != nil {
		return nil, err
	}
	ks.keys = keys
	if len(ks.keys) == 0 {
		k, err := newSigningKey(time.Now())
		if err != nil {
			return nil, err
		}
		if err := ks.add(k); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

func loadSigningKeys(dir string) ([]SigningKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	var keys []SigningKey
	seen := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".pem") || e.IsDir() {
			continue // temporary files and anything that is not a key
		}
		path := filepath.Join(dir, name)
		k, err := readSigningKey(path)
		if err != nil {
			return nil, err
		}
		if other, dup := seen[k.KeyID]; dup {
			return nil, fmt.Errorf("pki: signing key %s is in both %s and %s; remove one", k.KeyID, other, path)
		}
		seen[k.KeyID] = path
		keys = append(keys, k)
	}
	sortNewestFirst(keys)
	return keys, nil
}

func readSigningKey(path string) (SigningKey, error) {
	data, err := readPrivateFile(path)
	if err != nil {
		return SigningKey{}, fmt.Errorf("pki: read signing key: %w", err)
	}
	blocks, err := pemBlocks(data, path)
	if err != nil {
		return SigningKey{}, err
	}
	var k SigningKey
	for _, b := range blocks {
		switch b.Type {
		case "PRIVATE KEY":
			if k.Key != nil {
				return SigningKey{}, fmt.Errorf("pki: %s holds more than one private key", path)
			}
			s, err := parsePrivateKey(b, path)
			if err != nil {
				return SigningKey{}, err
			}
			rk, ok := s.(*rsa.PrivateKey)
			if !ok {
				return SigningKey{}, fmt.Errorf("pki: %s: signing key is %T, want RSA", path, s)
			}
			k.Key = rk
		case "CERTIFICATE":
			if k.Cert != nil {
				return SigningKey{}, fmt.Errorf("pki: %s holds more than one certificate", path)
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return SigningKey{}, fmt.Errorf("pki: %s: %w", path, err)
			}
			k.Cert = c
		default:
			return SigningKey{}, fmt.Errorf("pki: %s: unexpected %q block", path, b.Type)
		}
	}
	if k.Key == nil || k.Cert == nil {
		return SigningKey{}, fmt.Errorf("pki: %s must hold a PRIVATE KEY and its CERTIFICATE", path)
	}
	if k.Key.N.BitLen() < signingKeyBits {
		return SigningKey{}, fmt.Errorf("pki: %s: RSA key is %d bits, want at least %d", path, k.Key.N.BitLen(), signingKeyBits)
	}
	if !samePublicKey(k.Key, k.Cert.PublicKey) {
		return SigningKey{}, fmt.Errorf("pki: %s: the certificate is not for this key", path)
	}
	k.KeyID = k.X5T()
	k.Created = k.Cert.NotBefore
	return k, nil
}

// newSigningKey makes a key and its self-signed certificate, dated created.
func newSigningKey(created time.Time) (SigningKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, signingKeyBits)
	if err != nil {
		return SigningKey{}, fmt.Errorf("pki: generate signing key: %w", err)
	}
	// Certificates carry whole seconds; Created is read back from NotBefore.
	created = created.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"tenantbridge"}, CommonName: "tenantbridge token signing"},
		NotBefore:             created,
		NotAfter:              created.Add(signingValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return SigningKey{}, fmt.Errorf("pki: create signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return SigningKey{}, fmt.Errorf("pki: create signing certificate: %w", err)
	}
	k := SigningKey{Key: key, Cert: cert, Created: cert.NotBefore}
	k.KeyID = k.X5T()
	return k, nil
}

// add writes k to disk as DIR/signing/<kid>.pem and then publishes it: a key is
// never in use before it is durable. This is the step rotation builds on.
func (ks *KeySet) add(k SigningKey) error {
	keyPEM, err := marshalPrivateKey(k.Key)
	if err != nil {
		return err
	}
	data := append(keyPEM, certPEM(k.Cert.Raw)...)
	path := filepath.Join(ks.dir, k.KeyID+".pem")
	if err := createFileAtomic(path, data, privateFileMode); err != nil {
		return err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.keys = append(ks.keys, k)
	sortNewestFirst(ks.keys)
	return nil
}

func sortNewestFirst(keys []SigningKey) {
	slices.SortFunc(keys, func(a, b SigningKey) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.KeyID, b.KeyID) // deterministic tie-break
	})
}

// Current returns the key that signs new tokens: the newest.
func (ks *KeySet) Current() SigningKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	if len(ks.keys) == 0 {
		return SigningKey{}
	}
	return ks.keys[0]
}

// Published returns every key that verifiers should accept, newest first.
func (ks *KeySet) Published() []SigningKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return slices.Clone(ks.keys)
}

// Lookup finds a published key by kid, for verifying a token we issued.
func (ks *KeySet) Lookup(kid string) (SigningKey, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, k := range ks.keys {
		if k.KeyID == kid {
			return k, true
		}
	}
	return SigningKey{}, false
}

type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	Kid    string   `json:"kid"`
	X5t    string   `json:"x5t"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X5c    []string `json:"x5c"`
	Issuer string   `json:"issuer,omitempty"`
}

// JWKS returns the JSON Web Key Set document as Entra publishes it, so that
// MSAL, Microsoft.IdentityModel and go-oidc accept it unchanged:
// {"keys":[{"kty":"RSA","use":"sig","kid":..,"x5t":..,"n":..,"e":"AQAB",
// "x5c":["<std base64 DER>"],"issuer":<issuer>}]}, newest key first. issuer
// may be empty, and then the field is omitted.
func (ks *KeySet) JWKS(issuer string) []byte {
	keys := ks.Published()
	doc := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		doc.Keys = append(doc.Keys, jwk{
			Kty:    "RSA",
			Use:    "sig",
			Kid:    k.KeyID,
			X5t:    k.X5T(),
			N:      base64.RawURLEncoding.EncodeToString(k.Key.N.Bytes()),
			E:      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.Key.E)).Bytes()),
			X5c:    []string{base64.StdEncoding.EncodeToString(k.Cert.Raw)},
			Issuer: issuer,
		})
	}
	// Only strings and slices of strings: Marshal cannot fail.
	b, _ := json.Marshal(doc)
	return b
}
