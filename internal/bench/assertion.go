package bench

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// assertionLifetime is how long a client assertion is valid (exp - nbf),
// as MSAL makes them.
const assertionLifetime = 10 * time.Minute

// certificate is a self-signed RSA certificate and its key, made in memory
// for the run: the application's certificate credential.
type certificate struct {
	key *rsa.PrivateKey
	der []byte
}

// newCertificate makes an RSA-2048 self-signed certificate valid from an
// hour ago for a day.
func newCertificate(now time.Time) (*certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tenantbridge bench"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &certificate{key: key, der: der}, nil
}

// signer makes PS256 client assertions (RFC 7523 §2.2) as MSAL does: the
// certificate named by x5t#S256 (standard base64 of the SHA-256 of its DER),
// iss = sub = the client id, aud = the token endpoint, a fresh jti, nbf now
// and exp ten minutes later.
type signer struct {
	key      *rsa.PrivateKey
	header   string // base64url of the JOSE header, the same for every assertion
	clientID string
	audience string
	now      func() time.Time
}

func newSigner(cert *certificate, clientID, tokenEndpoint string) (*signer, error) {
	sum := sha256.Sum256(cert.der)
	h, err := json.Marshal(map[string]string{"alg": "PS256", "typ": "JWT", "x5t#S256": base64.StdEncoding.EncodeToString(sum[:])})
	if err != nil {
		return nil, err
	}
	return &signer{key: cert.key, header: base64.RawURLEncoding.EncodeToString(h), clientID: clientID, audience: tokenEndpoint, now: time.Now}, nil
}

// sign appends a new assertion to dst and returns it. It is safe for
// concurrent use.
func (s *signer) sign(dst []byte) ([]byte, error) {
	now := s.now()
	claims := struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Iss string `json:"iss"`
		Jti string `json:"jti"`
		Nbf int64  `json:"nbf"`
		Sub string `json:"sub"`
	}{s.audience, now.Add(assertionLifetime).Unix(), s.clientID, uuid.NewString(), now.Unix(), s.clientID}
	payload, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	start := len(dst)
	dst = append(dst, s.header...)
	dst = append(dst, '.')
	dst = base64.RawURLEncoding.AppendEncode(dst, payload)
	digest := sha256.Sum256(dst[start:])
	sig, err := rsa.SignPSS(rand.Reader, s.key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		return nil, fmt.Errorf("signing a client assertion: %w", err)
	}
	dst = append(dst, '.')
	return base64.RawURLEncoding.AppendEncode(dst, sig), nil
}

// expiry reads a JWT's exp without verifying anything.
func expiry(claims map[string]any) (time.Time, bool) {
	switch v := claims["exp"].(type) {
	case float64:
		return time.Unix(int64(v), 0), true
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return time.Unix(n, 0), err == nil
	}
	return time.Time{}, false
}
