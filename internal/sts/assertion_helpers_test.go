package sts_test

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// RSA keys are slow to make; tests share a few.
var (
	testKeysMu sync.Mutex
	testKeys   = map[string]*rsa.PrivateKey{}
)

// testRSAKey returns the shared 2048-bit key with the name.
func testRSAKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	testKeysMu.Lock()
	defer testKeysMu.Unlock()
	if k, ok := testKeys[name]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	testKeys[name] = k
	return k
}

// testCert is a self-signed certificate and its key.
type testCert struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

// newTestCert makes a self-signed certificate valid from notBefore to notAfter.
func newTestCert(t testing.TB, keyName string, notBefore, notAfter time.Time) testCert {
	t.Helper()
	key := testRSAKey(t, keyName)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "client " + keyName},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	return testCert{cert: cert, key: key}
}

func (c testCert) x5tS256() string {
	sum := sha256.Sum256(c.cert.Raw)
	return base64.StdEncoding.EncodeToString(sum[:]) // as MSAL sends it
}

func (c testCert) x5t() string {
	sum := sha1.Sum(c.cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// register adds the certificate to an application as a key credential.
func (e *env) registerCert(tenantID, appObjectID string, c testCert) directory.KeyCredential {
	e.t.Helper()
	kc, err := directory.NewKeyCredential(c.cert.Raw, "", time.Time{}, time.Time{})
	must(e.t, err)
	kc, err = e.dir.AddApplicationKey(e.ctx, tenantID, appObjectID, kc)
	must(e.t, err)
	return kc
}

// signJWT builds a compact JWS. alg is put in the header unless the
// header sets it; key is an *rsa.PrivateKey (RS256, PS256) or []byte
// (HS256); alg "none" gives an empty signature.
func signJWT(t testing.TB, alg string, key any, header, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": alg, "typ": "JWT"}
	for k, v := range header {
		h[k] = v
	}
	hb, err := json.Marshal(h)
	must(t, err)
	cb, err := json.Marshal(claims)
	must(t, err)
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch alg {
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "RS512":
		d := sha512.Sum512([]byte(input))
		sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA512, d[:])
	case "HS256":
		m := hmac.New(sha256.New, key.([]byte))
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case "none":
	default:
		t.Fatalf("signJWT: alg %s", alg)
	}
	must(t, err)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// certAssertion is a certificate assertion as MSAL builds it (PS256,
// x5t#S256, aud = token endpoint, iss = sub = client id, jti, nbf, exp),
// changed by mutate.
func certAssertion(t testing.TB, c testCert, clientID, aud string, mutate func(header, claims map[string]any)) string {
	t.Helper()
	now := time.Now()
	header := map[string]any{"x5t#S256": c.x5tS256()}
	claims := map[string]any{"aud": aud, "iss": clientID, "sub": clientID, "jti": uuid.NewString(),
		"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	alg := "PS256"
	if mutate != nil {
		mutate(header, claims)
		if a, ok := header["alg"].(string); ok {
			alg = a
		}
	}
	var key any = c.key
	if alg == "HS256" {
		key = c.cert.Raw // HMAC keyed with the public certificate
	}
	return signJWT(t, alg, key, header, claims)
}

// assertionForm is a client credentials request with a client assertion.
func assertionForm(clientID, assertion, scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
}

// testIssuer is an external OpenID Connect issuer (a Kubernetes cluster,
// a CI system) serving discovery and a JWK Set over TLS.
type testIssuer struct {
	srv     *httptest.Server
	url     string
	key     *rsa.PrivateKey
	kid     string
	fetches atomic.Int64 // JWKS fetches
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	is := &testIssuer{key: testRSAKey(t, "issuer"), kid: "issuer-key-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oidc/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.url, "jwks_uri": is.url + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /oidc/keys", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": is.kid,
			"n": base64.RawURLEncoding.EncodeToString(is.key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(is.key.E)).Bytes()),
		}}})
	})
	is.srv = httptest.NewTLSServer(mux)
	t.Cleanup(is.srv.Close)
	is.url = is.srv.URL + "/oidc"
	return is
}

// token is a service-account-style token for subject and audience.
func (is *testIssuer) token(t testing.TB, subject, audience string, mutate func(claims map[string]any)) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{"iss": is.url, "sub": subject, "aud": []string{audience},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if mutate != nil {
		mutate(claims)
	}
	return signJWT(t, "RS256", is.key, map[string]any{"kid": is.kid}, claims)
}

// clientOptions points an azidentity credential at the test server.
func (e *env) clientOptions() azcore.ClientOptions {
	return azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: e.srv.URL}, Transport: e.srv.Client()}
}

// wantAAD checks an Entra error response: status, OAuth error and AADSTS code.
func wantAAD(t testing.TB, what string, resp *http.Response, doc map[string]any, status int, oauth string, code int) {
	t.Helper()
	codes, _ := doc["error_codes"].([]any)
	desc, _ := doc["error_description"].(string)
	if resp.StatusCode != status || doc["error"] != oauth || len(codes) != 1 || codes[0] != float64(code) {
		t.Errorf("%s: %d %v %v, want %d %s [%d]\n%s", what, resp.StatusCode, doc["error"], doc["error_codes"], status, oauth, code, desc)
	}
}

// description returns the error_description of a response.
func description(doc map[string]any) string {
	s, _ := doc["error_description"].(string)
	return s
}

func sha1Of(b []byte) [20]byte   { return sha1.Sum(b) }
func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }

var zeroTime time.Time

func itoa(n int) string { return strconv.Itoa(n) }
