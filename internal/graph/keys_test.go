package graph_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// certKey is a certificate and its private key.
type certKey struct {
	der []byte
	key crypto.Signer
	alg jose.SignatureAlgorithm
}

func newCertKey(t *testing.T, rsaKey bool, notBefore, notAfter time.Time) certKey {
	t.Helper()
	var key crypto.Signer
	alg := jose.ES256
	var err error
	if rsaKey {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		alg = jose.RS256
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "graph-test"},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	must(t, err)
	return certKey{der: der, key: key, alg: alg}
}

// proof is Graph's addKey proof of possession, as Graph's sample builds it.
func (c certKey) proof(t *testing.T, iss, aud string, nbf time.Time, life time.Duration) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: c.alg, Key: c.key}, (&jose.SignerOptions{}).WithType("JWT"))
	must(t, err)
	raw, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: iss, Audience: jwt.Audience{aud},
		NotBefore: jwt.NewNumericDate(nbf), Expiry: jwt.NewNumericDate(nbf.Add(life))}).Serialize()
	must(t, err)
	return raw
}

func keyCredential(der []byte) map[string]any {
	return map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(der)}
}

const aadGraph = "00000002-0000-0000-c000-000000000000"

// TestApplicationKeys: the first certificate comes through PATCH
// keyCredentials (and POST); addKey and removeKey demand a proof of
// possession signed by a valid certificate of the application, with
// Graph's claims and lifetime; an application rolls its own keys without
// any Graph permission, and no one else's.
func TestApplicationKeys(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	tok := e.adminToken(e.contoso)
	now := time.Now()
	first := newCertKey(t, true, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	id := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "certs",
		"spa": map[string]any{"redirectUris": []string{"https://spa.contoso.test/"}}}).expect(t, 201).str("id")

	// addKey on an application without a certificate is refused: the
	// first one is added with Update application.
	second := newCertKey(t, false, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	e.call(tok, "POST", "/v1.0/applications/"+id+"/addKey", map[string]any{"keyCredential": keyCredential(second.der),
		"passwordCredential": nil, "proof": first.proof(t, id, aadGraph, now, 10*time.Minute)}).expect(t, 400, "Request_BadRequest")
	e.call(tok, "PATCH", "/v1.0/applications/"+id, map[string]any{"keyCredentials": []any{keyCredential(first.der)}}).expect(t, 204)
	got := e.call(tok, "GET", "/v1.0/applications/"+id, nil).expect(t, 200)
	keys := got.doc["keyCredentials"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["key"] != nil || keys[0].(map[string]any)["displayName"] != "CN=graph-test" {
		t.Fatalf("keyCredentials after PATCH = %v", keys)
	}
	firstKeyID := keys[0].(map[string]any)["keyId"].(string)
	if spa := got.doc["spa"].(map[string]any)["redirectUris"].([]any); len(spa) != 1 {
		t.Fatalf("spa = %v", got.doc["spa"])
	}
	// PATCH keyCredentials again, keeping the first by its keyId: no change.
	e.call(tok, "PATCH", "/v1.0/applications/"+id, map[string]any{"keyCredentials": []any{map[string]any{"keyId": firstKeyID, "key": nil,
		"type": "AsymmetricX509Cert", "usage": "Verify"}}}).expect(t, 204)
	for _, bad := range []any{
		[]any{keyCredential(first.der), keyCredential(first.der)},
		[]any{map[string]any{"keyId": "6a1f3c1e-0000-4000-8000-000000000000", "type": "AsymmetricX509Cert", "usage": "Verify"}},
		[]any{keyCredential([]byte("not a certificate"))},
		[]any{keyCredential(newCertKey(t, false, now.Add(-48*time.Hour), now.Add(-24*time.Hour)).der)},
	} {
		e.call(tok, "PATCH", "/v1.0/applications/"+id, map[string]any{"keyCredentials": bad}).expect(t, 400, "Request_BadRequest")
	}
	e.call(tok, "PATCH", "/v1.0/applications/"+id, map[string]any{"passwordCredentials": []any{}}).expect(t, 400, "Request_BadRequest")

	body := func(c certKey, proof string) map[string]any {
		return map[string]any{"keyCredential": keyCredential(c.der), "passwordCredential": nil, "proof": proof}
	}
	// Bad proofs: wrong audience, issuer, lifetime, time, signer; none.
	stranger := newCertKey(t, true, now.Add(-time.Hour), now.Add(time.Hour))
	for name, p := range map[string]string{
		"audience":  first.proof(t, id, "https://graph.microsoft.com", now, 10*time.Minute),
		"issuer":    first.proof(t, "00000000-0000-0000-0000-000000000001", aadGraph, now, 10*time.Minute),
		"lifetime":  first.proof(t, id, aadGraph, now, time.Hour),
		"expired":   first.proof(t, id, aadGraph, now.Add(-time.Hour), 10*time.Minute),
		"future":    first.proof(t, id, aadGraph, now.Add(time.Hour), 10*time.Minute),
		"signer":    stranger.proof(t, id, aadGraph, now, 10*time.Minute),
		"malformed": "not-a-jwt",
		"empty":     "",
	} {
		if r := e.call(tok, "POST", "/v1.0/applications/"+id+"/addKey", body(second, p)); r.status != 400 || r.errorCode() != "Request_BadRequest" {
			t.Errorf("proof %s: %d %s", name, r.status, r.raw)
		}
	}
	added := e.call(tok, "POST", "/v1.0/applications/"+id+"/addKey", body(second, first.proof(t, id, aadGraph, now, 10*time.Minute))).expect(t, 200)
	sameKeys(t, "keyCredential", added.doc, []string{"customKeyIdentifier", "displayName", "endDateTime", "key", "keyId",
		"startDateTime", "type", "usage"}, "@odata.context")
	if thumb, err := base64.StdEncoding.DecodeString(added.str("customKeyIdentifier")); err != nil || len(thumb) != 20 {
		t.Errorf("customKeyIdentifier %q is not a base64 SHA-1 thumbprint", added.str("customKeyIdentifier"))
	}
	// The same certificate twice, signing keys and passwords are refused.
	e.call(tok, "POST", "/v1.0/applications/"+id+"/addKey", body(second, second.proof(t, id, aadGraph, now, 10*time.Minute))).expect(t, 400, "Request_BadRequest")
	sign := body(newCertKey(t, false, now.Add(-time.Hour), now.Add(time.Hour)), first.proof(t, id, aadGraph, now, 10*time.Minute))
	sign["keyCredential"].(map[string]any)["usage"] = "Sign"
	e.call(tok, "POST", "/v1.0/applications/"+id+"/addKey", sign).expect(t, 400, "Request_BadRequest")
	withPassword := body(newCertKey(t, false, now.Add(-time.Hour), now.Add(time.Hour)), first.proof(t, id, aadGraph, now, 10*time.Minute))
	withPassword["passwordCredential"] = map[string]any{"secretText": "x"}
	e.call(tok, "POST", "/v1.0/applications/"+id+"/addKey", withPassword).expect(t, 400, "Request_BadRequest")
	e.call(tok, "POST", "/v1.0/applications/"+id+"/addKey", map[string]any{"keyCredential": map[string]any{"type": "AsymmetricX509Cert",
		"usage": "Verify", "key": "!!!"}, "proof": first.proof(t, id, aadGraph, now, 10*time.Minute)}).expect(t, 400, "Request_BadRequest")

	// The application rolls its own keys with no Graph permission at all.
	app := e.call(tok, "GET", "/v1.0/applications/"+id, nil).expect(t, 200)
	secret := e.call(tok, "POST", "/v1.0/applications/"+id+"/addPassword", nil).expect(t, 200).str("secretText")
	e.call(tok, "POST", "/v1.0/servicePrincipals", map[string]any{"appId": app.str("appId")}).expect(t, 201)
	self := e.graphToken(e.contoso.Tenant.ID, app.str("appId"), secret)
	e.call(self, "GET", "/v1.0/applications/"+id, nil).expect(t, 403, "Authorization_RequestDenied")
	third := newCertKey(t, true, now.Add(-time.Hour), now.Add(30*24*time.Hour))
	e.call(self, "POST", "/v1.0/applications/"+id+"/addKey", body(third, second.proof(t, id, aadGraph, now, 10*time.Minute))).expect(t, 200)
	e.call(self, "POST", "/v1.0/applications/"+id+"/removeKey", map[string]any{"keyId": firstKeyID,
		"proof": third.proof(t, id, aadGraph, now, 10*time.Minute)}).expect(t, 204)
	// … but not another application's.
	other := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "other"}).expect(t, 201).str("id")
	e.call(self, "POST", "/v1.0/applications/"+other+"/addKey", body(newCertKey(t, true, now.Add(-time.Hour), now.Add(time.Hour)),
		third.proof(t, other, aadGraph, now, 10*time.Minute))).expect(t, 403, "Authorization_RequestDenied")
	// removeKey needs the proof too.
	e.call(tok, "POST", "/v1.0/applications/"+id+"/removeKey", map[string]any{"keyId": added.str("keyId"), "proof": "x"}).expect(t, 400, "Request_BadRequest")
	e.call(tok, "POST", "/v1.0/applications/"+id+"/removeKey", map[string]any{"keyId": added.str("keyId"),
		"proof": second.proof(t, id, aadGraph, now, 10*time.Minute)}).expect(t, 204)
	if n := len(e.call(tok, "GET", "/v1.0/applications/"+id, nil).doc["keyCredentials"].([]any)); n != 1 {
		t.Fatalf("%d key credentials after removeKey", n)
	}
	// A new application may come with its certificate.
	withCert := e.call(tok, "POST", "/v1.0/applications", map[string]any{"displayName": "born-with-cert",
		"keyCredentials": []any{keyCredential(newCertKey(t, false, now.Add(-time.Hour), now.Add(time.Hour)).der)}}).expect(t, 201)
	if n := len(withCert.doc["keyCredentials"].([]any)); n != 1 {
		t.Fatalf("created with %d key credentials", n)
	}
}
