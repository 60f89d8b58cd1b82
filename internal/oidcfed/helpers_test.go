package oidcfed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Keys are expensive to make, so the tests share a few.
var (
	testRSAKeys = sync.OnceValue(func() []*rsa.PrivateKey {
		keys := make([]*rsa.PrivateKey, 3)
		for i := range keys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys[i] = k
		}
		return keys
	})
	testECKeys = sync.OnceValue(func() []*ecdsa.PrivateKey {
		var keys []*ecdsa.PrivateKey
		for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521(), elliptic.P256()} {
			k, err := ecdsa.GenerateKey(c, rand.Reader)
			if err != nil {
				panic(err)
			}
			keys = append(keys, k)
		}
		return keys
	})
)

// testKey is a signing key with the kid and alg it is published under.
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func rsaKey(i int, kid string, alg jose.SignatureAlgorithm) testKey {
	return testKey{kid: kid, alg: alg, priv: testRSAKeys()[i]}
}

func ecKey(i int, kid string, alg jose.SignatureAlgorithm) testKey {
	return testKey{kid: kid, alg: alg, priv: testECKeys()[i]}
}

// jwk is the key as its issuer publishes it.
func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// sign makes a compact JWS of claims with k; extra adds header parameters.
func (k testKey) sign(t testing.TB, claims map[string]any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	for name, value := range extra {
		opts = opts.WithHeader(name, value)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// testNow is the clock's starting time.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: testNow} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// claimsFor returns claims valid at now from issuer.
func claimsFor(issuer string, now time.Time) map[string]any {
	return map[string]any{
		"iss": issuer,
		"sub": "system:serviceaccount:prod:worker",
		"aud": "api://AzureADTokenExchange",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"jti": "c0ffee",
	}
}

// fakeIssuer is an OpenID issuer over real TLS: a discovery document for
// every path prefix (the issuer is the server URL plus the prefix) and one
// JWK Set, counting requests.
type fakeIssuer struct {
	srv *httptest.Server
	URL string

	mu           sync.Mutex
	keys         []any                      // jose.JSONWebKey or json.RawMessage
	discovery    func(prefix string) []byte // replaces the discovery body
	jwksBody     []byte                     // replaces the JWK Set body
	status       int                        // non-zero: answer every request with it
	cacheControl string
	gate         chan struct{} // non-nil: discovery waits for it to close

	discoveryHits, jwksHits atomic.Int64
}

func newFakeIssuer(t testing.TB, keys ...testKey) *fakeIssuer {
	f := &fakeIssuer{keys: []any{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.URL = f.srv.URL
	for _, k := range keys {
		f.publish(k.jwk())
	}
	return f
}

// publish adds a key (a jose.JSONWebKey, or raw JSON) to the JWK Set.
func (f *fakeIssuer) publish(k any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = append(f.keys, k)
}

func (f *fakeIssuer) set(fn func(f *fakeIssuer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeIssuer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	status, cc, gate, disc, keys, jwksBody := f.status, f.cacheControl, f.gate, f.discovery, f.keys, f.jwksBody
	f.mu.Unlock()
	const wellKnown = "/.well-known/openid-configuration"
	switch {
	case strings.HasSuffix(r.URL.Path, wellKnown):
		f.discoveryHits.Add(1)
		if gate != nil {
			<-gate
		}
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		prefix := strings.TrimSuffix(r.URL.Path, wellKnown)
		body, _ := json.Marshal(map[string]string{"issuer": f.URL + prefix, "jwks_uri": f.URL + "/jwks"})
		if disc != nil {
			body = disc(prefix)
		}
		w.Header().Set("Content-Type", "application/json")
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		_, _ = w.Write(body)
	case r.URL.Path == "/jwks":
		f.jwksHits.Add(1)
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		body, err := json.Marshal(map[string]any{"keys": keys})
		if err != nil {
			panic(err)
		}
		if jwksBody != nil {
			body = jwksBody
		}
		w.Header().Set("Content-Type", "application/json")
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		_, _ = w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeIssuer) hits() (discovery, jwks int64) {
	return f.discoveryHits.Load(), f.jwksHits.Load()
}

// newTestVerifier returns a verifier that trusts the test servers, on clk,
// with a one-minute refresh interval.
func newTestVerifier(f *fakeIssuer, clk *clock, mutate ...func(*Config)) *Verifier {
	cfg := Config{Client: f.srv.Client(), Now: clk.Now, RefreshInterval: time.Minute}
	for _, m := range mutate {
		m(&cfg)
	}
	return NewVerifier(cfg)
}

// wantKind fails unless err is an *Error of kind.
func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want %v", err, kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not an *Error", err)
	}
}

// wantHits fails unless f was asked for discovery and the JWK Set as often
// as given.
func wantHits(t *testing.T, f *fakeIssuer, discovery, jwks int64) {
	t.Helper()
	if d, j := f.hits(); d != discovery || j != jwks {
		t.Fatalf("fetches: discovery %d, JWKS %d; want %d, %d", d, j, discovery, jwks)
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
