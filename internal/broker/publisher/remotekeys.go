package publisher

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// The broker verifies a customer tenant's tokens as any relying party
// does: the issuer's OpenID discovery document names its jwks_uri, the
// JWK Set there holds the keys (Entra: {authority}/{tenant}/v2.0/.well-known/
// openid-configuration). Both are fetched over HTTPS through the broker's
// transport (on tenantbridge, the one that reaches it by Azure's names),
// cached for an hour, refetched at most once a minute when a token names an
// unknown key (Entra rolls its keys), and kept serving for a second hour
// while refetching fails. Only RS256 is accepted (Entra signs RS256).

const (
	clockSkew         = 2 * time.Minute
	keysTTL           = time.Hour
	keysMinRefresh    = time.Minute
	maxMetadataBytes  = 512 << 10
	maxCachedIssuers  = 4096
	metadataTimeout   = 10 * time.Second
	minRSAModulusBits = 2048
)

// metadataError: the issuer's discovery document or JWK Set could not be
// read (a transient failure: the caller may retry).
type metadataError struct{ err error }

func (e *metadataError) Error() string { return "issuer metadata: " + e.err.Error() }
func (e *metadataError) Unwrap() error { return e.err }

// subjectClaims are the claims the exchange checks.
type subjectClaims struct {
	Issuer, Subject, ObjectID, TenantID string
	Audiences                           []string
	Expires, NotBefore                  time.Time
}

func (c *subjectClaims) hasAudience(want ...string) bool {
	for _, a := range c.Audiences {
		for _, w := range want {
			if a == w {
				return true
			}
		}
	}
	return false
}

// remoteKeys caches issuers' keys.
type remoteKeys struct {
	do  func(*http.Request) (*http.Response, error)
	now func() time.Time

	mu      sync.Mutex
	issuers map[string]*issuerKeys
}

type issuerKeys struct {
	mu      sync.Mutex // held while fetching: one fetch per issuer at a time
	keys    map[string]*rsa.PublicKey
	fetched time.Time
	tried   time.Time
}

func newRemoteKeys(t policy.Transporter, now func() time.Time) *remoteKeys {
	r := &remoteKeys{now: now, issuers: map[string]*issuerKeys{}}
	if t != nil {
		r.do = t.Do
	} else {
		r.do = (&http.Client{Timeout: 2 * metadataTimeout}).Do
	}
	return r
}

// jwtHeader and jwtClaims are the parts of a compact JWS the exchange reads.
type jwtHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Crit []string `json:"crit"`
}

type jwtClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Oid string          `json:"oid"`
	Tid string          `json:"tid"`
	Aud json.RawMessage `json:"aud"`
	Exp json.Number     `json:"exp"`
	Nbf json.Number     `json:"nbf"`
}

// parseJWS splits and decodes a compact JWS without trusting it.
func parseJWS(raw string) (h jwtHeader, c jwtClaims, input string, sig []byte, err error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return h, c, "", nil, errors.New("not a compact JWS")
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return h, c, "", nil, errors.New("not base64url")
	}
	if err := strictJSON(hb, &h); err != nil {
		return h, c, "", nil, fmt.Errorf("header: %w", err)
	}
	if err := strictJSON(cb, &c); err != nil {
		return h, c, "", nil, fmt.Errorf("claims: %w", err)
	}
	return h, c, parts[0] + "." + parts[1], sig, nil
}

// strictJSON decodes exactly one JSON object.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

func numericDate(n json.Number) (time.Time, error) {
	if n == "" {
		return time.Time{}, nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, errors.New("not a NumericDate")
	}
	return time.Unix(int64(f), 0), nil
}

// verify checks raw's signature with the key of wantIssuer that its kid
// names, and returns its claims. The token's own iss must be wantIssuer
// exactly, before anything is fetched.
func (r *remoteKeys) verify(ctx context.Context, raw, wantIssuer string) (*subjectClaims, error) {
	h, c, input, sig, err := parseJWS(raw)
	switch {
	case err != nil:
		return nil, err
	case h.Alg != "RS256":
		return nil, fmt.Errorf("alg %q (RS256 only)", clipText(h.Alg))
	case len(h.Crit) > 0:
		return nil, errors.New("crit header parameters are not understood")
	case h.Kid == "":
		return nil, errors.New("no kid")
	case c.Iss != wantIssuer:
		return nil, fmt.Errorf("issuer %q is not the installation's tenant", clipText(c.Iss))
	}
	exp, err1 := numericDate(c.Exp)
	nbf, err2 := numericDate(c.Nbf)
	if err := errors.Join(err1, err2); err != nil || exp.IsZero() {
		return nil, errors.New("exp or nbf is not a NumericDate")
	}
	var aud []string
	if len(c.Aud) > 0 && c.Aud[0] == '"' {
		var one string
		if json.Unmarshal(c.Aud, &one) == nil {
			aud = []string{one}
		}
	} else if json.Unmarshal(c.Aud, &aud) != nil {
		return nil, errors.New("aud is neither a string nor an array of strings")
	}
	key, err := r.key(ctx, wantIssuer, h.Kid)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte(input))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig) != nil {
		return nil, errors.New("the signature does not verify")
	}
	return &subjectClaims{Issuer: c.Iss, Subject: c.Sub, ObjectID: c.Oid, TenantID: c.Tid, Audiences: aud, Expires: exp, NotBefore: nbf}, nil
}

// key returns issuer's key kid, fetching the issuer's keys when they are
// missing, older than keysTTL, or lack kid (at most once per
// keysMinRefresh).
func (r *remoteKeys) key(ctx context.Context, issuer, kid string) (*rsa.PublicKey, error) {
	r.mu.Lock()
	e, ok := r.issuers[issuer]
	if !ok {
		if len(r.issuers) >= maxCachedIssuers {
			for k := range r.issuers { // forget one at random
				delete(r.issuers, k)
				break
			}
		}
		e = &issuerKeys{}
		r.issuers[issuer] = e
	}
	r.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := r.now()
	if k, ok := e.keys[kid]; ok && now.Sub(e.fetched) < keysTTL {
		return k, nil
	}
	if e.keys != nil && now.Sub(e.fetched) < keysTTL && now.Sub(e.tried) < keysMinRefresh {
		return nil, fmt.Errorf("kid %q is not among the issuer's keys", clipText(kid))
	}
	e.tried = now
	keys, err := r.fetch(ctx, issuer)
	if err != nil {
		if k, ok := e.keys[kid]; ok && now.Sub(e.fetched) < 2*keysTTL {
			return k, nil // stale, while the issuer is unreachable
		}
		return nil, &metadataError{err}
	}
	e.keys, e.fetched = keys, now
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("kid %q is not among the issuer's keys", clipText(kid))
}

// fetch reads issuer's discovery document and JWK Set.
func (r *remoteKeys) fetch(ctx context.Context, issuer string) (map[string]*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := r.getJSON(ctx, issuer+discoveryPath, &doc); err != nil {
		return nil, err
	}
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("the discovery document names issuer %q", clipText(doc.Issuer))
	}
	if !strings.HasPrefix(doc.JWKSURI, "https://") {
		return nil, errors.New("jwks_uri is not an https URL")
	}
	var set struct {
		Keys []struct {
			Kty, Use, Alg, Kid, N, E string
		} `json:"keys"`
	}
	if err := r.getJSON(ctx, doc.JWKSURI, &set); err != nil {
		return nil, err
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Kid == "" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			continue
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSAModulusBits || pub.E < 3 {
			continue
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("the JWK Set holds no RS256 key")
	}
	return keys, nil
}

func (r *remoteKeys) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if req.URL.Scheme != "https" {
		return fmt.Errorf("%s is not an https URL", clipText(u))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return err
	}
	if len(b) > maxMetadataBytes {
		return fmt.Errorf("GET %s: larger than %d bytes", u, maxMetadataBytes)
	}
	return json.Unmarshal(b, out)
}
